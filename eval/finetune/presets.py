"""The LinkBERT authors' per-task hyperparameters, from ``src/run_examples_{blurb_biolinkbert-base,
mrqa_linkbert-base,medqa_biolinkbert-base}.sh``. ``batch_size`` is per step on one device; ``grad_accum`` steps
make one update (MRQA 12 x 2 = 24, MedQA 4 x 8 = 32). ``warmup`` >= 1 is a number of steps, < 1 a fraction."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class Hyper:
    lr: float = 5e-5
    epochs: float = 3.0
    batch_size: int = 16
    grad_accum: int = 1
    max_seq_len: int = 512
    warmup: float = 0
    seed: int = 42  # TrainingArguments default, which the authors kept except for BIOSSES
    doc_stride: int = 128
    max_steps: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def override(self, **values) -> "Hyper":
        return replace(self, **{k: v for k, v in values.items() if v is not None})


@dataclass(frozen=True)
class Preset:
    name: str
    family: str
    metric: str
    task_dir: str  # the folder the authors' preprocess scripts write: DIR/<task_dir>/{train,dev,test}.json
    hyper: Hyper
    suite: str
    blurb_type: str | None = None


def _p(name, family, metric, task_dir, suite, blurb_type=None, **hyper) -> Preset:
    return Preset(name, family, metric, task_dir, Hyper(**hyper), suite, blurb_type)


PRESETS = {p.name: p for p in (
    # BLURB (run_examples_blurb_biolinkbert-base.sh)
    _p("bc5cdr-chem", "ner", "f1", "BC5CDR-chem_hf", "blurb", "ner", lr=5e-5, batch_size=32, epochs=20, warmup=0.1),
    _p("bc5cdr-disease", "ner", "f1", "BC5CDR-disease_hf", "blurb", "ner", lr=5e-5, batch_size=16, epochs=8,
       warmup=0.1),
    _p("ncbi-disease", "ner", "f1", "NCBI-disease_hf", "blurb", "ner", lr=5e-5, batch_size=32, epochs=20, warmup=0.1),
    _p("bc2gm", "ner", "f1", "BC2GM_hf", "blurb", "ner", lr=6e-5, batch_size=32, epochs=50, warmup=0.1),
    _p("jnlpba", "ner", "f1", "JNLPBA_hf", "blurb", "ner", lr=1e-5, batch_size=16, epochs=5, warmup=0.1),
    _p("ebmnlp", "ner", "macro_f1", "ebmnlp_hf", "blurb", "pico", lr=5e-5, batch_size=32, epochs=1),
    _p("chemprot", "seqcls", "f1", "chemprot_hf", "blurb", "relation", lr=3e-5, batch_size=32, epochs=10,
       max_seq_len=256),
    _p("ddi", "seqcls", "f1", "DDI_hf", "blurb", "relation", lr=2e-5, batch_size=32, epochs=5, max_seq_len=256),
    _p("gad", "seqcls", "f1", "GAD_hf", "blurb", "relation", lr=3e-5, batch_size=32, epochs=10, max_seq_len=256),
    _p("biosses", "seqcls", "pearson", "BIOSSES_hf", "blurb", "similarity", lr=1e-5, batch_size=16, epochs=30,
       seed=5),
    _p("hoc", "seqcls", "f1", "HoC_hf", "blurb", "document", lr=4e-5, batch_size=32, epochs=40),
    _p("pubmedqa", "seqcls", "accuracy", "pubmedqa_hf", "blurb", "qa", lr=2e-5, batch_size=16, epochs=30, warmup=100),
    _p("bioasq", "seqcls", "accuracy", "bioasq_hf", "blurb", "qa", lr=2e-5, batch_size=16, epochs=20, warmup=100),
    # MRQA (run_examples_mrqa_linkbert-base.sh): max length 384, doc stride 128
    _p("squad", "qa", "f1", "squad_hf", "mrqa", lr=3e-5, batch_size=12, grad_accum=1, epochs=2, max_seq_len=384),
    _p("newsqa", "qa", "f1", "newsqa_hf", "mrqa", lr=3e-5, batch_size=12, grad_accum=2, epochs=4, max_seq_len=384),
    _p("triviaqa", "qa", "f1", "triviaqa_hf", "mrqa", lr=3e-5, batch_size=12, grad_accum=2, epochs=4, max_seq_len=384),
    _p("searchqa", "qa", "f1", "searchqa_hf", "mrqa", lr=3e-5, batch_size=12, grad_accum=2, epochs=1, max_seq_len=384),
    _p("hotpot", "qa", "f1", "hotpot_hf", "mrqa", lr=3e-5, batch_size=12, grad_accum=2, epochs=4, max_seq_len=384),
    _p("naturalqa", "qa", "f1", "naturalqa_hf", "mrqa", lr=3e-5, batch_size=12, grad_accum=2, epochs=4,
       max_seq_len=384),
    # MedQA-USMLE (run_examples_medqa_biolinkbert-base.sh)
    _p("medqa_usmle", "mc", "accuracy", "medqa_usmle_hf", "medqa", lr=2e-5, batch_size=4, grad_accum=8, epochs=2,
       warmup=100),
)}

# Without a preset: HF Trainer's learning rate and epochs; QA keeps the MRQA window.
DEFAULTS = {"seqcls": Hyper(), "mc": Hyper(), "ner": Hyper(), "qa": Hyper(max_seq_len=384)}


def get(name: str) -> Preset:
    key = name.lower().removesuffix("_hf")
    if key not in PRESETS:
        raise ValueError(f"--preset {name}: unknown; presets are {', '.join(sorted(PRESETS))}")
    return PRESETS[key]


def suite(name: str) -> list[Preset]:
    return [p for p in PRESETS.values() if p.suite == name]


def markdown_table() -> str:
    rows = ["| preset | family | metric | folder | lr | batch x accum | epochs | max len | warm-up | seed |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for p in PRESETS.values():
        h = p.hyper
        warm = "-" if not h.warmup else (f"{int(h.warmup)} steps" if h.warmup >= 1 else f"ratio {h.warmup}")
        rows.append(f"| {p.name} | {p.family} | {p.metric} | {p.task_dir} | {h.lr:g} | {h.batch_size} x {h.grad_accum}"
                    f" | {h.epochs:g} | {h.max_seq_len} | {warm} | {h.seed} |")
    return "\n".join(rows)
