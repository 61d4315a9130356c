"""Pretraining recipes from the LinkBERT paper (and PubMedBERT's for the biomedical models).

A preset fixes the architecture (or that it continues from a BERT checkpoint) and the schedule:
peak learning rate, steps, warm-up, global batch, sequence length and masking (whole-word for the
biomedical models, as PubMedBERT trained them). ``resolve`` applies the
command-line overrides: a shorter ``--max-steps`` keeps the warm-up *fraction* (the schedule's
shape), and ``--global-batch-size`` / ``--micro-batch-size`` give a small-batch run of the recipe.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Architecture:
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512

BERT_BASE = Architecture(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
BERT_LARGE = Architecture(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)


@dataclass(frozen=True)
class Preset:
    name: str
    architecture: Architecture | None  # None: the architecture comes from the --init checkpoint
    needs_init: bool
    lr: float
    max_steps: int
    warmup_fraction: float
    global_batch_size: int
    micro_batch_size: int  # per device, the default on a GPU
    max_seq_len: int = 512  # the default --max-seq-len (capped at the model's positions)
    masking: str = "token"  # the default --masking
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    gradient_clipping: float = 1.0
    note: str = ""


PRESETS = {
    "tiny": Preset("tiny", Architecture(128, 2, 2, 512), False, lr=5e-3, max_steps=10_000, warmup_fraction=0.5,
                   global_batch_size=2048, micro_batch_size=128,
                   note="LinkBERT-tiny: from scratch, 4.4M parameters with a 30,522-token vocabulary"),
    "base": Preset("base", None, True, lr=3e-4, max_steps=40_000, warmup_fraction=0.1,
                   global_batch_size=2048, micro_batch_size=32,
                   note="LinkBERT-base: continued from a BERT-base checkpoint (--init)"),
    "large": Preset("large", None, True, lr=2e-4, max_steps=40_000, warmup_fraction=0.1,
                    global_batch_size=2048, micro_batch_size=16,
                    note="LinkBERT-large: continued from a BERT-large checkpoint (--init)"),
    "bio-base": Preset("bio-base", BERT_BASE, False, lr=6e-4, max_steps=62_500, warmup_fraction=0.1,
                       global_batch_size=8192, micro_batch_size=32, masking="wwm",
                       note="BioLinkBERT-base: from scratch on PubMed with an in-domain vocabulary (PubMedBERT recipe)"),
    "bio-large": Preset("bio-large", BERT_LARGE, False, lr=4e-4, max_steps=62_500, warmup_fraction=0.2,
                        global_batch_size=8192, micro_batch_size=16, masking="wwm",
                        note="BioLinkBERT-large: from scratch, 20% warm-up (PubMedBERT recipe)"),
}


@dataclass(frozen=True)
class Schedule:
    lr: float
    max_steps: int
    warmup_steps: int
    global_batch_size: int
    micro_batch_size: int
    gradient_accumulation_steps: int


def resolve(
    preset: Preset,
    world_size: int,
    lr: float | None = None,
    max_steps: int | None = None,
    warmup_steps: int | None = None,
    warmup_fraction: float | None = None,
    global_batch_size: int | None = None,
    micro_batch_size: int | None = None,
) -> Schedule:
    """The schedule a run uses: the preset's recipe with the given overrides, batch sizes checked."""
    steps = max_steps or preset.max_steps
    if steps <= 0:
        raise ValueError(f"--max-steps must be positive, got {steps}")
    fraction = preset.warmup_fraction if warmup_fraction is None else warmup_fraction
    warmup = warmup_steps if warmup_steps is not None else int(round(fraction * steps))
    if not 0 <= warmup <= steps:
        raise ValueError(f"warm-up of {warmup} steps does not fit in {steps} steps")
    global_batch = global_batch_size or preset.global_batch_size
    micro = micro_batch_size or min(preset.micro_batch_size, max(1, global_batch // world_size))
    if global_batch % (micro * world_size):
        raise ValueError(
            f"global batch {global_batch} is not a multiple of micro-batch {micro} x {world_size} device(s)"
        )
    return Schedule(lr or preset.lr, steps, warmup, global_batch, micro, global_batch // (micro * world_size))


def with_architecture(preset: Preset, layers: int | None = None, hidden_size: int | None = None,
                      heads: int | None = None, intermediate_size: int | None = None) -> Preset:
    """The preset with its from-scratch model shape changed (``--layers``, ``--hidden-size``, ``--heads``,
    ``--intermediate-size``); a preset that continues from a checkpoint takes its shape from there."""
    overrides = {name: value for name, value in (("num_hidden_layers", layers), ("hidden_size", hidden_size),
                                                 ("num_attention_heads", heads), ("intermediate_size", intermediate_size))
                 if value is not None}
    if not overrides:
        return preset
    if preset.architecture is None:
        raise ValueError(f"preset {preset.name} continues from a checkpoint (--init), whose shape it keeps: "
                         "--layers/--hidden-size/--heads/--intermediate-size are for from-scratch presets")
    architecture = replace(preset.architecture, **overrides)
    if architecture.hidden_size % architecture.num_attention_heads:
        raise ValueError(f"--hidden-size {architecture.hidden_size} is not a multiple of "
                         f"--heads {architecture.num_attention_heads}")
    return replace(preset, architecture=architecture)


def masking_and_length(preset: Preset, masking: str | None, max_seq_len: int | None, model_positions: int) -> tuple[str, int]:
    """``--masking`` and ``--max-seq-len`` as given, else the preset's (the length capped at the model's positions)."""
    return masking or preset.masking, max_seq_len or min(preset.max_seq_len, model_positions)


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None
