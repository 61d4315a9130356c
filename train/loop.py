"""The training loop. Set-up (tokenizer, shards, model, DeepSpeed engine, resume) reads top to bottom
in ``train``; one optimizer step is ``train_step``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import time

import numpy as np
import torch

from linkbert import schemas
from linkbert.train import checkpoint, distributed, dsconfig, mixing, presets
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
from linkbert.train.export import (
    MODEL_CONFIG,
    RUN_INFO,
    TOKENIZER_DIR,
    export_checkpoint,
)
from linkbert.train.masking import Masker, MaskingConfig
from linkbert.train.metrics import MetricsWriter, StepAccumulator, peak_tflops
from linkbert.train.model import (
    LinkBertForPreTraining,
    count_parameters,
    dense_flops_per_token,
    disable_sbo,
    enable_sbo,
    from_checkpoint,
    from_scratch,
    set_dropout,
)

log = logging.getLogger("linkbert.train")


class NonFiniteLossError(RuntimeError):
    pass


def load_tokenizer(data_dir: str, init: str | None):
    """The data's tokenizer; with ``--init``, it must be the checkpoint's vocabulary too."""
    from transformers import AutoTokenizer

    path = os.path.join(data_dir, "tokenizer")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{path}: cannot load the tokenizer ({exc})") from exc
    if init and any(os.path.exists(os.path.join(init, name)) for name in ("vocab.txt", "tokenizer.json")):
        init_vocab = AutoTokenizer.from_pretrained(init, local_files_only=True).get_vocab()
        if schemas.tokenizer_fingerprint(init_vocab) != schemas.tokenizer_fingerprint(tokenizer.get_vocab()):
            raise SystemExit(f"--init {init}: its vocabulary differs from the data's tokenizer {path}; "
                             "tokenize the data with the checkpoint's vocabulary")
    return tokenizer


def build_model(preset: presets.Preset, init: str | None, tokenizer, no_drp: bool,
                hidden_dropout: float | None = None, attention_dropout: float | None = None,
                sbo: bool = False) -> LinkBertForPreTraining:
    if init:
        model = from_checkpoint(init, len(tokenizer.get_vocab()))
    else:
        model = from_scratch(preset.architecture, len(tokenizer.get_vocab()), tokenizer.pad_token_id)
    (enable_sbo if sbo else disable_sbo)(model)
    model.config.linkbert_drp = not no_drp  # an export says whether its relation head was trained
    if no_drp:
        for module in (model.bert.pooler, model.cls.document_relation):
            module.requires_grad_(False)
    set_dropout(model, hidden_dropout, attention_dropout)
    return model


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: no weight decay on biases and LayerNorm weights (as BERT)."""
    decay, no_decay = [], []
    for _, parameter in model.named_parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train_step(engine, batches, accumulation_steps: int, accumulator: StepAccumulator, loader_state: LoaderState,
               drp_weight: float, per_source: mixing.SourceMetrics | None = None) -> torch.Tensor:
    """One optimizer step over ``accumulation_steps`` micro-batches; returns the summed loss (detached)."""
    step_loss = torch.zeros((), dtype=torch.float64, device=engine.device)
    for _ in range(accumulation_steps):
        batch: Batch = next(batches)
        loader_state.advance(batch)
        batch = batch.to(engine.device, non_blocking=True)
        output = engine(
            input_ids=batch.input_ids,
            token_type_ids=batch.token_type_ids,
            attention_mask=batch.attention_mask,
            mlm_positions=batch.mlm_positions,
            mlm_labels=batch.mlm_labels,
            relation=batch.relation,
            drp_weight=drp_weight,
        )
        engine.backward(output.loss)
        engine.step()
        accumulator.add(output, batch.mlm_labels, batch.relation, batch.num_tokens)
        if per_source is not None:
            per_source.add(output, batch)
        step_loss += output.loss.detach()
    return step_loss


def loss_scale(engine) -> float:
    for name in ("cur_scale", "loss_scale"):
        value = getattr(engine.optimizer, name, None)
        if isinstance(value, (int, float, torch.Tensor)):
            return float(value)
    return 1.0


def _write_run_files(args, run_dir: str, model, tokenizer, schedule, precision: str, fingerprint: str) -> None:
    model.config.to_json_file(os.path.join(run_dir, MODEL_CONFIG))
    tokenizer.save_pretrained(os.path.join(run_dir, TOKENIZER_DIR))
    info = {
        "data": os.path.abspath(args.data) if "," not in args.data else args.data,  # a mix: see mix.json
        "preset": args.preset,
        "architecture": None if args.init else {key: getattr(model.config, key) for key in (
            "num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size")},
        "init": args.init,
        "masking": args.masking,
        "max_seq_len": args.max_seq_len,
        "precision": precision,
        "drp": not args.no_drp,
        "drp_weight": args.drp_weight,
        "sbo": bool(getattr(args, "sbo", False)),
        "seed": args.seed,
        "tokenizer_fingerprint": fingerprint,
        "schedule": schedule.__dict__,
        "parameters": count_parameters(model),
    }
    with open(os.path.join(run_dir, RUN_INFO), "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2)


def client_state(step: int, topology: distributed.Topology, loader_state: LoaderState) -> dict:
    """What DeepSpeed does not checkpoint: every rank's data positions and RNG states."""
    return {
        "step": step,
        "world_size": topology.world_size,
        "streams_per_rank": loader_state.streams_per_rank,
        "loader": distributed.all_gather_object(loader_state.state_dict()),
        "rng": distributed.all_gather_object(checkpoint.rng_state()),
    }


def resume(engine, checkpoints: str, topology: distributed.Topology, streams_per_rank: int,
           state_cls: type[LoaderState] = LoaderState, resharded: bool = False):
    """Load the latest checkpoint into ``engine``: (start step, loader state, RNG state to restore or None)."""
    loaded = checkpoint.load(engine, checkpoints, resharded=resharded)
    if loaded is None:
        if topology.is_main:
            print(f"no checkpoint in {checkpoints}: starting from step 0", flush=True)
        return 0, state_cls(streams_per_rank), None
    tag, client = loaded
    if topology.is_main:
        print(f"resumed from {os.path.join(checkpoints, tag)} at step {client['step']}", flush=True)
    if client["world_size"] == topology.world_size and client["streams_per_rank"] == streams_per_rank:
        return client["step"], state_cls.from_state_dict(client["loader"][topology.rank]), client["rng"][topology.rank]
    log.warning("resuming %s with %d rank(s) x %d worker(s) instead of %d x %d: the data restarts at a new epoch "
                "and the run is not bit-identical to an uninterrupted one", tag, topology.world_size,
                streams_per_rank, client["world_size"], client["streams_per_rank"])
    if state_cls is not LoaderState:
        return client["step"], state_cls.restart(client["loader"], topology.rank, streams_per_rank), None
    next_epoch = 1 + max((p[0] for rank in client["loader"] for p in rank["positions"].values()), default=-1)
    positions = {topology.rank * streams_per_rank + i: StreamPosition(next_epoch) for i in range(streams_per_rank)}
    return client["step"], LoaderState(streams_per_rank, positions), None


def train(args: argparse.Namespace) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        preset = presets.with_architecture(presets.preset(args.preset), getattr(args, "layers", None),
                                           getattr(args, "hidden_size", None), getattr(args, "heads", None),
                                           getattr(args, "intermediate_size", None))
    except ValueError as exc:
        raise SystemExit(f"linkbert train: {exc}") from exc
    if preset.needs_init and not args.init:
        raise SystemExit(f"preset {preset.name} continues from a BERT checkpoint: pass --init PATH ({preset.note})")
    # Data first, before any process group: the shards must be tokenized with the model's vocabulary.
    mix_sources = mixing.parse_data(args.data)  # DIR, or DIR1[:W1],DIR2[:W2],... (train/mixing.py)
    tokenizer = load_tokenizer(mix_sources[0].path, args.init)
    fingerprint = schemas.tokenizer_fingerprint(tokenizer.get_vocab())
    mixture = mixing.Mixture.open(mix_sources, fingerprint) if len(mix_sources) > 1 else None
    shards = open_shards(shard_paths(mix_sources[0].path, "train"), fingerprint) if mixture is None else None
    state_cls = LoaderState if mixture is None else mixing.MixLoaderState

    topology = distributed.init()
    import deepspeed
    import transformers

    transformers.utils.logging.disable_progress_bar()

    if args.threads:
        torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    run_dir, checkpoints = args.output, os.path.join(args.output, "checkpoints")
    os.makedirs(checkpoints, exist_ok=True)
    schedule = presets.resolve(preset, topology.world_size, args.lr, args.max_steps, args.warmup_steps,
                               args.warmup_fraction, args.global_batch_size, args.micro_batch_size)
    model = build_model(preset, args.init, tokenizer, args.no_drp, args.hidden_dropout, args.attention_dropout,
                        getattr(args, "sbo", False))
    args.masking, args.max_seq_len = presets.masking_and_length(preset, args.masking, args.max_seq_len,
                                                                model.config.max_position_embeddings)
    max_seq_len = args.max_seq_len
    if not 8 <= max_seq_len <= model.config.max_position_embeddings:
        raise SystemExit(f"--max-seq-len {max_seq_len}: must be in [8, {model.config.max_position_embeddings}]")
    drp_weight = 0.0 if args.no_drp else args.drp_weight

    # DeepSpeed engine: precision, ZeRO stage, AdamW and the warm-up/decay schedule come from its config.
    on_cuda = topology.device.type == "cuda"
    precision = args.precision or ("fp16" if on_cuda else "fp32")
    config = dsconfig.build(dsconfig.load_base(precision, args.deepspeed_config), precision, preset, schedule,
                            topology.world_size, on_cuda, args.zero_stage, args.gradient_clipping)
    resharded = bool(args.resume) and checkpoint.resharded_resume(config, checkpoints, topology.world_size)
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=parameter_groups(model, preset.weight_decay),
                                           config=config)
    if topology.world_size == 1 and precision == "fp32" and engine.zero_optimization_stage() == 0:
        # One process, plain fp32: nothing to reduce, and the reduction would flatten every gradient.
        # (ZeRO and the bf16/fp16 optimizers collect gradients through this path, so they keep it.)
        engine.enable_backward_allreduce = False
    if topology.is_main:
        _write_run_files(args, run_dir, model, tokenizer, schedule, precision, fingerprint)
        if mixture is not None:
            mixture.write(run_dir)

    # Resume: weights, optimizer, scheduler (DeepSpeed) + data positions and RNG (client state).
    streams_per_rank = max(1, args.num_workers)
    start_step, loader_state, rng_to_restore = 0, state_cls(streams_per_rank), None
    if args.resume:
        start_step, loader_state, rng_to_restore = resume(engine, checkpoints, topology, streams_per_rank, state_cls,
                                                          resharded)

    masker = Masker.from_tokenizer(MaskingConfig(args.masking, args.mask_rate), tokenizer)
    stream_config = StreamConfig(schedule.micro_batch_size, seed=args.seed, shuffle_buffer=args.shuffle_buffer,
                                 bucket_batches=args.bucket_batches, max_seq_len=max_seq_len)
    if mixture is None:
        dataset = InstanceDataset(shards, masker, stream_config, masker.is_special.size, tokenizer.pad_token_id,
                                  topology.rank, topology.world_size, args.num_workers,
                                  loader_state.positions, loader_state.rotation)
    else:
        dataset = mixture.dataset(loader_state, masker, stream_config, masker.is_special.size, tokenizer.pad_token_id,
                                  topology.rank, topology.world_size, args.num_workers)
    batches = iter(build_loader(dataset, args.num_workers, pin_memory=on_cuda))

    if topology.is_main:
        print(f"training {args.preset} ({count_parameters(model):,} parameters) for {schedule.max_steps} steps: "
              f"global batch {schedule.global_batch_size} = {schedule.micro_batch_size} x "
              f"{schedule.gradient_accumulation_steps} accumulation x {topology.world_size} device(s), "
              f"peak lr {schedule.lr}, {schedule.warmup_steps} warm-up steps, {precision}, "
              f"at most {max_seq_len} tokens", flush=True)
        if mixture is not None:
            print(mixture.summary(), flush=True)
    writer = MetricsWriter(run_dir, topology.is_main, schedule.max_steps, start_step, not args.no_tensorboard,
                           not args.no_progress, dense_flops_per_token(model.config, max_seq_len, count_parameters(model)),
                           args.peak_tflops or peak_tflops(topology.device), topology.world_size)

    if rng_to_restore is not None:
        checkpoint.set_rng_state(rng_to_restore)
    accumulator = StepAccumulator(topology.device, drp=not args.no_drp)
    per_source = None if mixture is None else mixing.SourceMetrics(mixture.names, topology.device, not args.no_drp)
    consecutive_nonfinite, last_logged, record, started = 0, start_step, {}, time.perf_counter()
    for step in range(start_step + 1, schedule.max_steps + 1):
        step_loss = train_step(engine, batches, schedule.gradient_accumulation_steps, accumulator, loader_state,
                               drp_weight, per_source)
        consecutive_nonfinite = 0 if torch.isfinite(step_loss) else consecutive_nonfinite + 1
        if consecutive_nonfinite >= args.max_nonfinite:
            raise NonFiniteLossError(
                f"step {step}: the loss was not finite for {consecutive_nonfinite} consecutive steps "
                f"(lr {engine.get_lr()[0]:.3g}, loss scale {loss_scale(engine):g}); lower --lr, check the data, or "
                f"resume from an earlier checkpoint")
        if step % args.log_every == 0 or step == schedule.max_steps:
            record = accumulator.reduce()
            if per_source is not None:
                record.update(per_source.reduce())
            record.update(lr=engine.get_lr()[0], loss_scale=loss_scale(engine), skipped_steps=engine.skipped_steps)
            record = writer.log(step, record, step - last_logged)
            if per_source is not None and topology.is_main:
                (writer.bar.write if writer.bar is not None else print)(per_source.console_line(step, record))
            last_logged = step
        if step % args.save_every == 0 or step == schedule.max_steps:
            checkpoint.save(engine, checkpoints, step, client_state(step, topology, loader_state),
                            args.keep_checkpoints)
    writer.close()

    hf_dir = os.path.join(run_dir, "hf")
    if topology.is_main:
        export_checkpoint(run_dir, checkpoint.tag_for(schedule.max_steps), hf_dir)
        elapsed = time.perf_counter() - started
        print(f"done: {schedule.max_steps - start_step} steps in {elapsed:.1f}s", flush=True)
        print(f"  checkpoints: {checkpoints}", flush=True)
        print(f"  metrics:     {os.path.join(run_dir, 'metrics.jsonl')}", flush=True)
        print(f"  model:       {hf_dir}", flush=True)
        if record:
            summary = {k: record[k] for k in ("loss", "mlm_loss", "mlm_acc", "drp_loss", "drp_acc", "sbo_loss")
                       if record[k] is not None}
            print("  final: " + ", ".join(f"{k}={v:.4f}" for k, v in summary.items()), flush=True)
    distributed.barrier()
    return record
