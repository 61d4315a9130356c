"""GPU training throughput: BERT-base, sequence 512, fp16 with dynamic loss scaling, through DeepSpeed.

Builds the engine exactly as ``linkbert train`` does (``train.dsconfig`` on ``train/configs/fp16.json``,
``train.loop.train_step``) on synthetic full-length batches made by our loader, and prints tokens/s and
the MFU estimate (6N + 12·L·H·T FLOPs per token against the device's peak):

    train-gpu-base512: tokens/s=<median> mfu=<median> micro_batch=<B> device=<name>

Run on one GPU: ``.venv/bin/python bench/train_gpu.py [--micro-batch 32] [--steps 20] [--rounds 5]``;
``deepspeed --num_gpus N bench/train_gpu.py`` measures N GPUs (data parallel, ZeRO stage 1).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--micro-batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--zero-stage", type=int, default=1)
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
    from linkbert.train.model import count_parameters, flops_per_token, from_scratch

    topology = distributed.init()
    seq_len = 512
    hidden, layers, heads, intermediate = SHAPES["base"][:4]
    tokenizer = AutoTokenizer.from_pretrained(str(MINILM))
    preset = presets.Preset("bench-gpu", presets.Architecture(hidden, layers, heads, intermediate), False, lr=1e-4,
                            max_steps=100_000, warmup_fraction=0.01,
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
    for _ in range(3):  # warm-up: cuBLAS heuristics, allocator, loss-scale settling
        train_step(engine, batches, 1, accumulator, state, 1.0)
    peak = args.peak_tflops or peak_tflops(topology.device)
    per_token = flops_per_token(model.config, seq_len, count_parameters(model))
    rates, mfus = [], []
    for _ in range(args.rounds):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.steps):
            train_step(engine, batches, 1, accumulator, state, 1.0)
        torch.cuda.synchronize()
        rate = args.steps * args.micro_batch * seq_len * topology.world_size / (time.perf_counter() - start)
        rates.append(rate)
        if peak:
            mfus.append(rate * per_token / (peak * 1e12 * topology.world_size))
        accumulator.reduce()
    if topology.is_main:
        mfu = f"{statistics.median(mfus):.3f}" if mfus else "n/a (unknown peak: pass --peak-tflops)"
        print(f"train-gpu-base512: tokens/s={statistics.median(rates):.0f} mfu={mfu} "
              f"micro_batch={args.micro_batch} gpus={topology.world_size} device={torch.cuda.get_device_name()} "
              f"skipped_steps={engine.skipped_steps}", flush=True)


if __name__ == "__main__":
    main()
