"""GPU training throughput: BERT-base, sequence 512, fp16 with dynamic loss scaling, ours against a peer.

Ours: the engine exactly as ``linkbert train`` builds it (``train.dsconfig`` on ``train/configs/fp16.json``,
ZeRO stage 1, ``train.loop.train_step``). Peer, in the same process on the same batches: the loop a user
would write with plain ``transformers`` + ``torch.amp`` (``BertForPreTraining`` with its dense MLM head,
``autocast(float16)``, ``GradScaler``, fused ``torch.optim.AdamW``, ``clip_grad_norm_``). Each round times
``--steps`` steps of each side, the order alternating between rounds; medians over rounds:

    train-gpu: ours=<tok/s> peer=<tok/s> ratio=<median of per-round ours/peer> mfu=<ours> ...  (tokens/s per GPU)

MFU counts the FLOPs our step performs (``train.model.training_flops``: the MLM head and the last layer's
queries and feed-forward only at masked positions) against the device's dense fp16 peak;
``mfu_dense_equivalent`` credits every token with 6N + 12·L·H·T, as the peer's dense step computes.

Run on one GPU: ``.venv/bin/python bench/train_gpu.py [--micro-batch 32] [--steps 20] [--rounds 5]``;
``deepspeed --num_gpus N bench/train_gpu.py`` measures ours on N GPUs (the peer then runs on each alone).
Never part of CI: it needs a CUDA GPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402


def peer_step(tokenizer, architecture, batches, lr: float):
    """Plain transformers + torch.amp: dense MLM head at every position, fp16 autocast, dynamic loss scale."""
    import transformers
    from transformers import BertConfig, BertForPreTraining

    config = BertConfig(vocab_size=len(tokenizer), hidden_size=architecture.hidden_size,
                        num_hidden_layers=architecture.num_hidden_layers,
                        num_attention_heads=architecture.num_attention_heads,
                        intermediate_size=architecture.intermediate_size, attn_implementation="sdpa")
    model = BertForPreTraining(config).cuda().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01, fused=True)
    scaler = torch.amp.GradScaler("cuda")
    inputs = []
    for b in batches:
        labels = torch.full(b.input_ids.shape, -100, dtype=torch.long, device=b.input_ids.device)
        labels.view(-1)[b.mlm_positions] = b.mlm_labels
        inputs.append(dict(input_ids=b.input_ids, attention_mask=b.attention_mask, token_type_ids=b.token_type_ids,
                           labels=labels, next_sentence_label=(b.relation > 0).long()))
    counter = iter(range(10**9))

    def step():
        with torch.autocast("cuda", dtype=torch.float16):
            loss = model(**inputs[next(counter) % len(inputs)]).loss
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    step.describe = (f"transformers {transformers.__version__} BertForPreTraining (sdpa) + torch.amp fp16 autocast, "
                     f"GradScaler, torch.optim.AdamW(fused=True), clip_grad_norm_ 1.0; dense MLM head")
    return step


def timed(step, count: int) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(count):
        step()
    torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--micro-batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per round and side")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--zero-stage", type=int, default=1)
    parser.add_argument("--no-peer", action="store_true", help="time ours only")
    parser.add_argument("--peak-tflops", type=float, help="device peak (default: known GPUs)")
    parser.add_argument("--local_rank", type=int, default=None)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench/train_gpu.py needs a CUDA GPU (bench/train.py is the CPU benchmark)")

    import deepspeed
    from transformers import AutoTokenizer

    from bench.train import MINILM, SHAPES, dataset_for, write_shards
    from linkbert.train import distributed, dsconfig, presets
    from linkbert.train.data import LoaderState
    from linkbert.train.loop import parameter_groups, train_step
    from linkbert.train.metrics import StepAccumulator, peak_tflops
    from linkbert.train.model import count_parameters, dense_flops_per_token, from_scratch

    topology = distributed.init()
    seq_len = 512
    hidden, layers, heads, intermediate = SHAPES["base"][:4]
    tokenizer = AutoTokenizer.from_pretrained(str(MINILM), local_files_only=True)
    architecture = presets.Architecture(hidden, layers, heads, intermediate)
    preset = presets.Preset("bench-gpu", architecture, False, lr=1e-4, max_steps=100_000, warmup_fraction=0.01,
                            global_batch_size=args.micro_batch * topology.world_size,
                            micro_batch_size=args.micro_batch)
    schedule = presets.resolve(preset, topology.world_size)
    model = from_scratch(preset.architecture, len(tokenizer), tokenizer.pad_token_id)
    config = dsconfig.build(dsconfig.load_base("fp16"), "fp16", preset, schedule, topology.world_size, True,
                            args.zero_stage)
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=parameter_groups(model, 0.01),
                                           config=config)
    with tempfile.TemporaryDirectory() as workdir:
        data_dir = write_shards(Path(workdir), tokenizer, seq_len, rows=4 * args.micro_batch)
        stream = dataset_for(data_dir, tokenizer, args.micro_batch, num_workers=0).stream(0)
        cached = [b.to(topology.device) for _, b in zip(range(4), stream.batches())]
    batches = (cached[i % len(cached)] for i in range(10**9))
    accumulator, state = StepAccumulator(topology.device), LoaderState(1)

    def ours():
        train_step(engine, batches, 1, accumulator, state, 1.0)

    inner = getattr(engine.optimizer, "optimizer", engine.optimizer)
    sides = [("ours", ours)]
    if topology.is_main:
        print(f"  ours: LinkBertForPreTraining through DeepSpeed {deepspeed.__version__}, fp16 dynamic loss scaling, "
              f"ZeRO {engine.zero_optimization_stage()}, {type(inner).__name__}; MLM head and last layer at the "
              f"masked positions", flush=True)
    if not args.no_peer:
        peer = peer_step(tokenizer, architecture, cached, 1e-4)
        sides.append(("peer", peer))
        if topology.is_main:
            print(f"  peer: {peer.describe}", flush=True)
    for _, step in sides:
        for _ in range(3):  # warm-up: cuBLAS heuristics, allocator, loss-scale settling
            step()
    accumulator.reduce()
    peak = args.peak_tflops or peak_tflops(topology.device)
    dense_per_token = dense_flops_per_token(model.config, seq_len, count_parameters(model))
    tokens = args.steps * args.micro_batch * seq_len
    rates = {name: [] for name, _ in sides}
    flops = []
    for round_index in range(args.rounds):
        for name, step in (sides if round_index % 2 == 0 else sides[::-1]):
            seconds = timed(step, args.steps)
            rates[name].append(tokens / seconds)
            if name == "ours":
                flops.append(accumulator.reduce()["flops"] / seconds / topology.world_size)  # per device
    if not topology.is_main:
        return
    ours_rate = statistics.median(rates["ours"])
    line = f"train-gpu: ours={ours_rate:.0f}"
    if not args.no_peer:
        ratios = sorted(o / p for o, p in zip(rates["ours"], rates["peer"]))
        line += (f" peer={statistics.median(rates['peer']):.0f} ratio={statistics.median(ratios):.2f}"
                 f" (rounds {ratios[0]:.2f}-{ratios[-1]:.2f})")
    if peak:
        line += (f" mfu={statistics.median(flops) / (peak * 1e12):.3f}"
                 f" mfu_dense_equivalent={ours_rate * dense_per_token / (peak * 1e12):.3f}")
    else:
        line += " mfu=n/a (unknown peak: pass --peak-tflops)"
    line += (f" tflops={statistics.median(flops) / 1e12:.1f} micro_batch={args.micro_batch} gpus={topology.world_size}"
             f" device={torch.cuda.get_device_name()} skipped_steps={engine.skipped_steps}")
    print(line, flush=True)


if __name__ == "__main__":
    main()
