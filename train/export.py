"""Export to Hugging Face format: ``RUNDIR/hf/`` loads with ``AutoModel``, ``AutoModelForMaskedLM``,
``AutoTokenizer`` and the ``fill-mask`` pipeline; ``LinkBertForPreTraining`` also reads the DRP head.

A run directory holds what an export needs besides the weights: ``model_config.json`` (the BertConfig),
``tokenizer/`` and ``run.json`` (data, preset, schedule); the weights come from a DeepSpeed checkpoint.
"""

from __future__ import annotations

import json
import os

from transformers import AutoTokenizer, BertConfig

from linkbert.train import checkpoint
from linkbert.train.model import RELATIONS, LinkBertForPreTraining

MODEL_CONFIG = "model_config.json"
RUN_INFO = "run.json"
TOKENIZER_DIR = "tokenizer"
METRICS_FILE = "metrics.jsonl"


def export_checkpoint(run_dir: str, tag: str | None = None, output_dir: str | None = None) -> str:
    """Write ``output_dir`` (default ``run_dir/hf``) from checkpoint ``tag`` (default: latest)."""
    checkpoints = os.path.join(run_dir, "checkpoints")
    tag = tag or checkpoint.latest_tag(checkpoints)
    if tag is None:
        raise FileNotFoundError(f"{checkpoints}: no complete checkpoint to export")
    config = BertConfig.from_json_file(os.path.join(run_dir, MODEL_CONFIG))
    model = LinkBertForPreTraining(config)
    state = checkpoint.module_state_dict(checkpoints, tag)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # The tied decoder weight/bias are the same tensors as their sources; anything else is an error.
    missing = [name for name in missing if not name.startswith("cls.predictions.decoder.")]
    if missing or unexpected:
        raise RuntimeError(f"checkpoint {tag} does not fit the model: missing {missing}, unexpected {unexpected}")
    tokenizer = AutoTokenizer.from_pretrained(os.path.join(run_dir, TOKENIZER_DIR), local_files_only=True)
    output_dir = output_dir or os.path.join(run_dir, "hf")
    info = _run_info(run_dir)
    info["checkpoint"] = tag
    info["step"] = int(tag.removeprefix(checkpoint.TAG_PREFIX))
    info["hidden_dropout"] = config.hidden_dropout_prob
    info["attention_dropout"] = config.attention_probs_dropout_prob
    info["final_metrics"] = _last_metrics(run_dir, info["step"])
    save(model, tokenizer, output_dir, info)
    return output_dir


def save(model: LinkBertForPreTraining, tokenizer, output_dir: str, info: dict) -> None:
    os.makedirs(output_dir, exist_ok=True)
    model.config.linkbert_relations = list(RELATIONS)
    model.config.linkbert_drp = bool(info.get("drp", True))  # whether the relation head was trained
    if info.get("max_seq_len"):
        model.config.linkbert_max_seq_len = info["max_seq_len"]  # the length it was trained at
    model.save_pretrained(output_dir, safe_serialization=True)
    # save_pretrained names our class, which transformers does not know; tools that pick a class from
    # "architectures" get the standard one that loads every weight but the relation head.
    config_path = os.path.join(output_dir, "config.json")
    with open(config_path, encoding="utf-8") as handle:
        config = json.load(handle)
    config["architectures"] = ["BertForMaskedLM"]
    with open(config_path, "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2, sort_keys=True)
    tokenizer.save_pretrained(output_dir)
    with open(os.path.join(output_dir, "README.md"), "w", encoding="utf-8") as handle:
        handle.write(model_card(info))


def _run_info(run_dir: str) -> dict:
    path = os.path.join(run_dir, RUN_INFO)
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _last_metrics(run_dir: str, step: int) -> dict:
    """The last metrics record at or before ``step`` in ``metrics.jsonl``, if any."""
    path = os.path.join(run_dir, METRICS_FILE)
    last = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill
                if record.get("step", 0) <= step:
                    last = record
    return last


def model_card(info: dict) -> str:
    metrics = info.get("final_metrics") or {}
    schedule = info.get("schedule", {})
    rows = "\n".join(f"| {key} | {_format(value)} |" for key, value in metrics.items())
    return f"""---
library_name: transformers
tags: [bert, linkbert, fill-mask]
pipeline_tag: fill-mask
---
# LinkBERT encoder ({info.get('preset', 'custom')})

A BERT encoder pretrained with masked language modelling and 3-way document relation prediction
(LinkBERT, Yasunaga et al., ACL 2022) on `[CLS] A [SEP] B [SEP]` pairs whose segment B is the
contiguous next segment (0), a random segment (1) or a segment of a linked document (2).

- **Data**: `{info.get('data')}` (instance shards, tokenizer fingerprint `{info.get('tokenizer_fingerprint')}`)
- **Initialisation**: {info.get('init') or 'from scratch'}
- **Steps**: {info.get('step')} of {schedule.get('max_steps')} (checkpoint `{info.get('checkpoint')}`; global batch {schedule.get('global_batch_size')}, peak lr {schedule.get('lr')}, {schedule.get('warmup_steps')} warm-up steps, linear decay)
- **Sequences**: at most {info.get('max_seq_len')} tokens; masking {info.get('masking')} (15%, 80/10/10); precision {info.get('precision')}
- **Dropout in pretraining**: hidden {info.get('hidden_dropout')}, attention {info.get('attention_dropout')} (as stored in config.json; BERT fine-tuning usually sets 0.1)
- **Relation prediction**: {'trained, weight ' + str(info.get('drp_weight')) if info.get('drp', True) else 'off (--no-drp): the relation head is untrained'}
- **Span boundary objective** (SpanBERT): {'on (`cls.span_boundary`)' if info.get('sbo') else 'off'}

## Final training metrics

| metric | value |
|---|---|
{rows or '| (none logged) | |'}

## Use

```python
from transformers import AutoModel, AutoTokenizer, pipeline
model = AutoModel.from_pretrained("PATH")
fill = pipeline("fill-mask", model="PATH")
```

The document relation head is stored as `cls.document_relation` (classes {', '.join(RELATIONS)});
`train.model.LinkBertForPreTraining.from_pretrained("PATH")` loads it with the MLM head.
"""


def _format(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
