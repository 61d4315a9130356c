"""Run under ``torchrun`` (or alone, as one process) by tests/test_train_distributed.py: the trainer's
own pieces in real ranks, to check what a 2-rank run does to data and gradients.

``coverage DATA OUT``: every rank reads one epoch through the trainer's loader (``InstanceDataset``
and ``build_loader``, two DataLoader workers per rank); rank 0 writes the row ids each rank saw.

``steps DATA OUT --global-batch G --steps N [--no-allreduce]``: the trainer's model (tiny preset,
dropout off) in a DeepSpeed engine configured as ``linkbert.train`` configures it (fp32, ZeRO 0,
AdamW, the schedule), fed fixed batches: step s uses rows [s G, (s + 1) G) of the train shards, rank
r the r-th of ``world_size`` equal slices of them, each row with the same three masked positions.
Rank 0 writes the gradients of the first step (after DeepSpeed's all-reduce), the reduced losses
and the parameters after N steps (``train_step`` for steps 2..N). ``--no-allreduce`` switches the
all-reduce off: the control that shows the comparison can fail.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pyarrow.parquet as pq
import torch

from linkbert.train import distributed, dsconfig, presets
from linkbert.train.data import (
    Batch,
    InstanceDataset,
    LoaderState,
    StreamConfig,
    StreamPosition,
    build_loader,
    open_shards,
    shard_paths,
)
from linkbert.train.loop import build_model, load_tokenizer, parameter_groups, train_step
from linkbert.train.masking import Masker, MaskingConfig
from linkbert.train.metrics import StepAccumulator
from linkbert import schemas

MASKED = (1, 2, 3)  # positions of A masked in every row: equal counts per rank keep the mean loss a mean


def coverage(args) -> None:
    topology = distributed.init()
    tokenizer = load_tokenizer(args.data, None)
    shards = open_shards(shard_paths(args.data, "train"), schemas.tokenizer_fingerprint(tokenizer.get_vocab()))
    masker = Masker.from_tokenizer(MaskingConfig("token", 0.15), tokenizer)
    config = StreamConfig(micro_batch_size=4, seed=0, shuffle_buffer=16)
    dataset = InstanceDataset(shards, masker, config, masker.is_special.size, tokenizer.pad_token_id,
                              topology.rank, topology.world_size, num_workers=2)
    seen, done = [], set()
    for batch in build_loader(dataset, num_workers=2):
        if batch.stream in done:
            continue
        seen += batch.row_ids.tolist()
        if batch.position == StreamPosition(1, 0, 0):  # the batch that ends the stream's epoch 0
            done.add(batch.stream)
        if len(done) == dataset.streams_per_rank:
            break
    gathered = distributed.all_gather_object(seen)
    if topology.is_main:
        total = sum(shard.num_rows for shard in shards)
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump({"world_size": topology.world_size, "rows": total, "seen": gathered}, handle)
    distributed.barrier()


def _batch(rows: list[tuple[np.ndarray, int, int]], mask_id: int, pad_id: int) -> Batch:
    width = -(-max(ids.size for ids, _, _ in rows) // 8) * 8
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    token_type_ids = np.zeros_like(input_ids)
    attention_mask = np.zeros_like(input_ids)
    positions, labels = [], []
    for i, (ids, b_start, _) in enumerate(rows):
        input_ids[i, :ids.size] = ids
        token_type_ids[i, b_start:ids.size] = 1
        attention_mask[i, :ids.size] = 1
        for position in MASKED:
            positions.append(i * width + position)
            labels.append(int(ids[position]))
            input_ids[i, position] = mask_id
    return Batch(torch.from_numpy(input_ids), torch.from_numpy(token_type_ids), torch.from_numpy(attention_mask),
                 torch.tensor(positions), torch.tensor(labels), torch.tensor([r for _, _, r in rows]),
                 torch.arange(len(rows)), int(sum(ids.size for ids, _, _ in rows)))


def steps(args) -> None:
    import deepspeed

    topology = distributed.init()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    tokenizer = load_tokenizer(args.data, None)
    preset = presets.preset("tiny")
    model = build_model(preset, None, tokenizer, no_drp=False, hidden_dropout=0.0, attention_dropout=0.0)
    world = topology.world_size
    schedule = presets.resolve(preset, world, lr=1e-3, max_steps=args.steps, warmup_steps=0,
                               global_batch_size=args.global_batch, micro_batch_size=args.global_batch // world)
    config = dsconfig.build(dsconfig.load_base("fp32"), "fp32", preset, schedule, world, False, zero_stage=0)
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=parameter_groups(model, preset.weight_decay),
                                           config=config)
    if world == 1 or args.no_allreduce:  # as linkbert.train does for one fp32 process (nothing to reduce)
        engine.enable_backward_allreduce = False

    table = pq.read_table(shard_paths(args.data, "train")[0], columns=["input_ids", "b_start", "relation"]).to_pylist()
    rows = [(np.array(r["input_ids"], dtype=np.int64), r["b_start"], r["relation"]) for r in table]
    micro = args.global_batch // world
    batches = []
    for step in range(args.steps):
        first = step * args.global_batch + topology.rank * micro
        batches.append(_batch(rows[first:first + micro], tokenizer.mask_token_id, tokenizer.pad_token_id))

    losses = []
    first = batches[0]
    output = engine(input_ids=first.input_ids, token_type_ids=first.token_type_ids, attention_mask=first.attention_mask,
                    mlm_positions=first.mlm_positions, mlm_labels=first.mlm_labels, relation=first.relation)
    engine.backward(output.loss)
    gradients = {name: p.grad.detach().clone() for name, p in engine.module.named_parameters() if p.grad is not None}
    engine.step()
    losses.append(float(torch.tensor(distributed.all_gather_object(float(output.loss))).mean()))
    remaining = iter(batches[1:])
    for _ in batches[1:]:
        accumulator = StepAccumulator(topology.device)
        train_step(engine, remaining, 1, accumulator, LoaderState(1), 1.0)
        record = accumulator.reduce()
        losses.append(record["loss"])
    if topology.is_main:
        torch.save({"world_size": world, "gradients": gradients, "losses": losses,
                    "parameters": {k: v.detach().clone() for k, v in engine.module.state_dict().items()}}, args.out)
    distributed.barrier()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("coverage", "steps"))
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--global-batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--no-allreduce", action="store_true")
    args = parser.parse_args(argv)
    {"coverage": coverage, "steps": steps}[args.mode](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
