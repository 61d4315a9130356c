"""Intrinsic evaluation: masked-LM and document relation prediction on held-out instance shards.

The held-out shards are read in file order and masked with a fixed seed, so two models evaluated on
the same data see exactly the same masked inputs.

A held-out instance's B may come from a training document (a linked partner usually is one, a random
B always is). ``mlm_acc`` and ``mlm_loss`` count only the masked tokens of held-out documents (A, and
B where ``b_heldout``); ``mlm_acc_all_tokens`` counts every masked token. Shards written before the
``b_heldout`` column existed have no such information: then both figures count every token and
``mlm_scope`` says ``all_tokens``.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.nn.functional as F

from linkbert import schemas
from linkbert.train.data import (
    InstanceStream,
    StreamConfig,
    open_shards,
    shard_paths,
    work_units,
)
from linkbert.train.masking import Masker, MaskingConfig
from linkbert.train.model import RELATIONS, LinkBertForPreTraining


def load_model(model_dir: str) -> tuple[LinkBertForPreTraining, bool]:
    """The model and whether its checkpoint carries a trained DRP head."""
    import transformers

    transformers.utils.logging.disable_progress_bar()
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        model, info = LinkBertForPreTraining.from_pretrained(model_dir, output_loading_info=True,
                                                             attn_implementation="sdpa", local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f"--model {model_dir}: not a loadable model directory ({str(exc).splitlines()[0]})") from exc
    finally:
        transformers.logging.set_verbosity(verbosity)
    has_drp = not any(name.startswith("cls.document_relation") for name in info["missing_keys"])
    has_drp = has_drp and getattr(model.config, "linkbert_drp", True)  # False: exported from a --no-drp run
    if any(name.startswith("cls.predictions.transform") for name in info["missing_keys"]):
        raise SystemExit(f"--model {model_dir}: has no MLM head (cls.predictions.*); export a pretraining model")
    return model.eval(), has_drp


@torch.no_grad()
def evaluate(model_dir: str, data_dir: str, max_instances: int | None = None, batch_size: int = 32,
             seed: int = 0, masking: str = "token", split: str = "heldout", max_seq_len: int | None = None) -> dict:
    """Metrics over the ``split`` shards; instances longer than ``max_seq_len`` (default: the length the
    model was trained at) are truncated as in training."""
    from transformers import AutoTokenizer

    if not os.path.isdir(model_dir):
        raise SystemExit(f"--model {model_dir}: no such directory (models are read from local paths only)")
    if not any(os.path.isfile(os.path.join(model_dir, name)) for name in ("vocab.txt", "tokenizer.json")):
        raise SystemExit(f"--model {model_dir}: cannot load its tokenizer (no vocab.txt or tokenizer.json there);"
                         " give an exported LinkBERT/BERT model directory (RUNDIR/hf)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - transformers raises OSError, ValueError, ImportError by tokenizer kind
        raise SystemExit(f"--model {model_dir}: cannot load its tokenizer ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}); a model directory needs vocab.txt or "
                         "tokenizer.json beside config.json") from exc
    fingerprint = schemas.tokenizer_fingerprint(tokenizer.get_vocab())
    shards = open_shards(shard_paths(data_dir, split), fingerprint)
    model, has_drp = load_model(model_dir)
    masker = Masker.from_tokenizer(MaskingConfig(masking), tokenizer)
    trained_length = getattr(model.config, "linkbert_max_seq_len", None) or model.config.max_position_embeddings
    max_seq_len = max_seq_len or trained_length
    if max_seq_len > model.config.max_position_embeddings:
        raise SystemExit(f"--max-seq-len {max_seq_len} exceeds the model's {model.config.max_position_embeddings} positions")
    config = StreamConfig(batch_size, seed=seed, shuffle=False, bucket_batches=0, max_seq_len=max_seq_len)
    stream = InstanceStream(shards, work_units(shards), masker, config, 0, 1, masker.is_special.size,
                            tokenizer.pad_token_id)
    b_heldout = _b_heldout(shard_paths(data_dir, split))
    mlm_loss_sum = mlm_correct = mlm_tokens = drp_loss_sum = instances = 0.0
    all_correct = all_tokens = 0.0
    correct = [0] * len(RELATIONS)
    count = [0] * len(RELATIONS)
    for batch in stream.epoch_batches(0):
        if max_instances is not None and instances >= max_instances:
            break
        if max_instances is not None and instances + batch.size > max_instances:
            batch = _head(batch, int(max_instances - instances))
        output = model(input_ids=batch.input_ids, token_type_ids=batch.token_type_ids,
                       attention_mask=batch.attention_mask, mlm_positions=batch.mlm_positions,
                       mlm_labels=batch.mlm_labels, relation=batch.relation)
        hits = output.mlm_logits.argmax(-1) == batch.mlm_labels
        all_correct += hits.sum().item()
        all_tokens += batch.mlm_labels.numel()
        own = _heldout_positions(batch, b_heldout)
        mlm_loss_sum += F.cross_entropy(output.mlm_logits.float()[own], batch.mlm_labels[own], reduction="sum").item()
        mlm_correct += hits[own].sum().item()
        mlm_tokens += int(own.sum())
        drp_loss_sum += F.cross_entropy(output.drp_logits.float(), batch.relation, reduction="sum").item()
        predicted = output.drp_logits.argmax(-1)
        for index in range(len(RELATIONS)):
            of_relation = batch.relation == index
            correct[index] += int((of_relation & (predicted == index)).sum())
            count[index] += int(of_relation.sum())
        instances += batch.size
    if stream.skipped_rows:
        logging.getLogger(__name__).warning("skipped %d invalid held-out rows", stream.skipped_rows)
    if not instances:
        raise SystemExit(f"{data_dir}: no {split} instances to evaluate")
    result = {
        "mlm_loss": mlm_loss_sum / max(mlm_tokens, 1),
        "mlm_acc": mlm_correct / max(mlm_tokens, 1),
        "mlm_tokens": int(mlm_tokens),
        "mlm_scope": "heldout_tokens" if b_heldout is not None else "all_tokens",
        "mlm_acc_all_tokens": all_correct / max(all_tokens, 1),
        "mlm_tokens_all": int(all_tokens),
        "drp_loss": drp_loss_sum / instances if has_drp else None,
        "drp_acc": sum(correct) / instances if has_drp else None,
        "drp_acc_per_relation": {name: (c / n if n and has_drp else None) for name, c, n in zip(RELATIONS, correct, count)},
        "drp_count_per_relation": dict(zip(RELATIONS, count)),
        "instances": int(instances),
        "skipped_rows": stream.skipped_rows,
        "split": split,
        "masking": masking,
        "max_seq_len": max_seq_len,
        "seed": seed,
        "model": model_dir,
        "data": data_dir,
    }
    return result


def _b_heldout(paths: list[str]):
    """Per global row of the shard set (the loader's ``row_ids``), whether B is held-out text; None
    when a shard predates the column."""
    import numpy as np
    import pyarrow.parquet as pq

    flags = []
    for path in paths:
        parquet = pq.ParquetFile(path)
        if "b_heldout" not in parquet.schema_arrow.names:
            return None
        column = parquet.read(columns=["b_heldout"]).column(0).to_pylist()
        flags.extend(bool(value) for value in column)
    return np.array(flags, dtype=bool)


def _heldout_positions(batch, b_heldout) -> torch.Tensor:
    """Mask over ``batch.mlm_positions``: the token belongs to a held-out document (A, or B when B is)."""
    if b_heldout is None:
        return torch.ones_like(batch.mlm_labels, dtype=torch.bool)
    width = batch.input_ids.shape[1]
    rows = batch.mlm_positions // width
    in_b = batch.token_type_ids.reshape(-1)[batch.mlm_positions] == 1
    b_is_heldout = torch.from_numpy(b_heldout[batch.row_ids.numpy()])[rows]
    return ~in_b | b_is_heldout


def _head(batch, n: int):
    """The first ``n`` sequences of a batch (masked positions re-indexed by row)."""
    width = batch.input_ids.shape[1]
    keep = batch.mlm_positions < n * width
    from dataclasses import replace

    return replace(batch, input_ids=batch.input_ids[:n], token_type_ids=batch.token_type_ids[:n],
                   attention_mask=batch.attention_mask[:n], mlm_positions=batch.mlm_positions[keep],
                   mlm_labels=batch.mlm_labels[keep], relation=batch.relation[:n], row_ids=batch.row_ids[:n],
                   num_tokens=int(batch.attention_mask[:n].sum()))
