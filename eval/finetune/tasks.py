"""Sequence classification, multiple choice and token classification (NER/PICO) as the LinkBERT authors set
them up (``src/seqcls``, ``src/mc``, ``src/tokcls``): label schema from the training split, features, model head,
and the metric. Extractive QA lives in ``qa.py``."""

from __future__ import annotations

import numpy as np

from linkbert.eval.finetune import metrics
from linkbert.eval.finetune.readers import DataError, where

# Names the authors' scripts use for the same metrics.
METRIC_ALIASES = {"PRF1": "f1", "prf1": "f1", "pearsonr": "pearson", "hoc": "f1", "acc": "accuracy"}


def load(auto_class, model_dir: str, **config):
    return auto_class.from_pretrained(model_dir, local_files_only=True, **config)


class SeqClsTask:
    """``{id, sentence1, sentence2, label}`` or ``{id, sentence, label}``: classes (sorted label strings), a float
    (regression head, Pearson), or a 0/1 list (multi-label, HoC's document-pooled micro-F1)."""

    family = "seqcls"
    outputs = ("logits",)

    def __init__(self, splits: dict[str, list[dict]], metric: str | None = None):
        train = splits["train"]
        first = train[0]["label"]
        if isinstance(first, list):
            self.kind, self.num_labels, self.labels = "multilabel", len(first), None
        elif isinstance(first, float):
            self.kind, self.num_labels, self.labels = "regression", 1, None
        else:
            self.kind = "classes"
            self.labels = sorted({str(r["label"]) for r in train})
            self.num_labels = len(self.labels)
        self.index = {label: i for i, label in enumerate(self.labels or [])}
        for name, records in splits.items():
            for record in records:
                self._check(name, record)
        default = {"classes": "accuracy", "regression": "pearson", "multilabel": "f1"}[self.kind]
        self.metric = METRIC_ALIASES.get(metric, metric) if metric else default
        allowed = {"classes": ("accuracy", "f1", "macro_f1"), "regression": ("pearson",), "multilabel": ("f1",)}
        if self.metric not in allowed[self.kind]:
            raise ValueError(f"--metric {metric}: a {self.kind} task reports {', '.join(allowed[self.kind])}")
        if self.kind == "classes" and self.metric == "f1" and "0" not in self.index:
            raise DataError(f"{train[0]['_file']}: --metric f1 excludes the negative class, the label \"0\", "
                            f"which the training split does not have (labels: {', '.join(self.labels)})")
        self.keys = ("sentence1", "sentence2") if "sentence1" in train[0] else ("sentence", None)

    def _check(self, split: str, record: dict) -> None:
        label = record["label"]
        if self.kind == "multilabel":
            if not isinstance(label, list) or len(label) != self.num_labels or any(v not in (0, 1) for v in label):
                raise DataError(f"{where(record)}: label must be a list of {self.num_labels} 0/1 values")
        elif self.kind == "regression":
            if isinstance(label, bool) or not isinstance(label, (int, float)):
                raise DataError(f"{where(record)}: label {label!r} is not a number (the training labels are floats)")
        elif str(label) not in self.index:
            raise DataError(f"{where(record)}: label {label!r} of the {split} split is not among the training "
                            f"labels ({', '.join(self.labels)})")

    def model(self, model_dir: str):
        from transformers import AutoModelForSequenceClassification

        problem = {"classes": "single_label_classification", "regression": "regression",
                   "multilabel": "multi_label_classification"}[self.kind]
        extra = {"id2label": dict(enumerate(self.labels)), "label2id": self.index} if self.labels else {}
        return load(AutoModelForSequenceClassification, model_dir, num_labels=self.num_labels, problem_type=problem,
                    **extra)

    def features(self, tokenizer, records: list[dict], max_len: int) -> list[dict]:
        first, second = self.keys
        texts = [r[first] for r in records]
        pairs = [r[second] for r in records] if second else None
        encoded = tokenizer(texts, pairs, truncation=True, max_length=max_len)
        feats = []
        for i, record in enumerate(records):
            label = record["label"]
            if self.kind == "classes":
                label = self.index[str(label)]
            elif self.kind == "regression":
                label = float(label)
            else:
                label = [float(v) for v in label]
            feats.append({**{k: encoded[k][i] for k in encoded}, "labels": label, "_kind": self.kind})
        return feats

    def predictions(self, outputs: dict[str, list[np.ndarray]]):
        logits = np.stack(outputs["logits"])
        if self.kind == "regression":
            return logits[:, 0]
        if self.kind == "multilabel":
            return (logits > 0).astype(int)
        return logits.argmax(-1)

    def evaluate(self, records: list[dict], features: list[dict], outputs: dict[str, list[np.ndarray]]) -> dict:
        preds = self.predictions(outputs)
        if self.kind == "regression":
            gold = np.array([float(r["label"]) for r in records])
            return {"pearson": metrics.pearson(preds, gold), "mse": float(((preds - gold) ** 2).mean())}
        if self.kind == "multilabel":
            scores = metrics.hoc_f1(preds.tolist(), [r["label"] for r in records], [r["id"] for r in records])
            return {k: scores[k] for k in ("precision", "recall", "f1")}
        gold = np.array([self.index[str(r["label"])] for r in records])
        result = {"accuracy": metrics.accuracy(preds, gold),
                  "macro_f1": metrics.macro_f1(preds, gold, self.num_labels)}
        if "0" in self.index:
            result.update(metrics.prf1_excluding(preds, gold, self.index["0"]))
        return result

    def decode(self, record: dict, prediction) -> object:
        if self.kind == "classes":
            return self.labels[int(prediction)]
        return prediction.tolist() if hasattr(prediction, "tolist") else prediction


class MultipleChoiceTask:
    """``{id, sent1, sent2, ending0..endingN, label}``: each choice is ``(sent1, sent2 + " " + ending_i)``."""

    family = "mc"
    outputs = ("logits",)
    metric = "accuracy"

    def __init__(self, splits: dict[str, list[dict]], metric: str | None = None):
        if metric and METRIC_ALIASES.get(metric, metric) != "accuracy":
            raise ValueError(f"--metric {metric}: multiple choice reports accuracy")
        first = splits["train"][0]
        self.endings = sorted((k for k in first if k.startswith("ending")), key=lambda k: int(k[6:]))
        if len(self.endings) < 2:
            raise DataError(f"{where(first)}: a multiple-choice record needs ending0, ending1, ...")
        for records in splits.values():
            for record in records:
                missing = [k for k in self.endings if k not in record]
                if missing:
                    raise DataError(f"{where(record)}: lacks {', '.join(missing)}")
                try:
                    label = int(record["label"])
                except (TypeError, ValueError):
                    label = -1
                if not 0 <= label < len(self.endings):
                    raise DataError(f"{where(record)}: label {record['label']!r} is not a choice index "
                                    f"0..{len(self.endings) - 1}")

    def model(self, model_dir: str):
        from transformers import AutoModelForMultipleChoice

        return load(AutoModelForMultipleChoice, model_dir)

    def features(self, tokenizer, records: list[dict], max_len: int) -> list[dict]:
        n = len(self.endings)
        firsts = [r["sent1"] for r in records for _ in range(n)]
        seconds = [f"{r.get('sent2', '')} {r[e]}".strip() for r in records for e in self.endings]
        encoded = tokenizer(firsts, seconds, truncation=True, max_length=max_len)
        return [{**{k: encoded[k][i * n:(i + 1) * n] for k in encoded}, "labels": int(r["label"]), "_kind": "mc"}
                for i, r in enumerate(records)]

    def predictions(self, outputs):
        return np.stack(outputs["logits"]).argmax(-1)

    def evaluate(self, records, features, outputs) -> dict:
        return {"accuracy": metrics.accuracy(self.predictions(outputs), [int(r["label"]) for r in records])}

    def decode(self, record, prediction):
        return int(prediction)


class NerTask:
    """``{id, tokens, ner_tags}`` with string BIO tags; the first sub-token of each word carries its tag (the
    others -100), and words cut off by ``max_seq_len`` are not scored, as in the authors' ``run_ner.py``."""

    family = "ner"
    outputs = ("logits",)

    def __init__(self, splits: dict[str, list[dict]], metric: str | None = None):
        for records in splits.values():
            for record in records:
                if not isinstance(record["tokens"], list) or len(record["tokens"]) != len(record["ner_tags"]):
                    raise DataError(f"{where(record)}: tokens and ner_tags must be lists of the same length")
        self.labels = sorted({tag for r in splits["train"] for tag in r["ner_tags"]})
        self.index = {tag: i for i, tag in enumerate(self.labels)}
        for name in ("dev", "test"):
            for record in splits[name]:
                unknown = [tag for tag in record["ner_tags"] if tag not in self.index]
                if unknown:
                    raise DataError(f"{where(record)}: tag {unknown[0]!r} of the {name} split is not among the "
                                    f"training tags ({', '.join(self.labels)})")
        self.metric = METRIC_ALIASES.get(metric, metric) if metric else "f1"
        if self.metric not in ("f1", "macro_f1"):
            raise ValueError(f"--metric {metric}: NER reports f1 (entity level) or macro_f1 (EBM PICO)")

    def model(self, model_dir: str):
        from transformers import AutoModelForTokenClassification

        return load(AutoModelForTokenClassification, model_dir, num_labels=len(self.labels),
                    id2label=dict(enumerate(self.labels)), label2id=self.index)

    def features(self, tokenizer, records: list[dict], max_len: int) -> list[dict]:
        encoded = tokenizer([r["tokens"] for r in records], is_split_into_words=True, truncation=True,
                            max_length=max_len)
        feats = []
        for i, record in enumerate(records):
            labels, previous = [], None
            for word in encoded.word_ids(i):
                labels.append(-100 if word is None or word == previous else self.index[record["ner_tags"][word]])
                previous = word
            feats.append({**{k: encoded[k][i] for k in encoded}, "labels": labels, "_kind": "tags"})
        return feats

    def tag_sequences(self, features, outputs) -> tuple[list[list[str]], list[list[str]]]:
        predicted, gold = [], []
        for feature, logits in zip(features, outputs["logits"]):
            keep = [j for j, label in enumerate(feature["labels"]) if label != -100]
            best = logits.argmax(-1)
            predicted.append([self.labels[int(best[j])] for j in keep])
            gold.append([self.labels[feature["labels"][j]] for j in keep])
        return predicted, gold

    def evaluate(self, records, features, outputs) -> dict:
        predicted, gold = self.tag_sequences(features, outputs)
        result = metrics.entity_f1(predicted, gold)
        result.update(metrics.entity_macro_f1(predicted, gold))
        return result

    def predictions(self, outputs):
        return outputs["logits"]

    def decode(self, record, prediction):
        return None  # filled by the runner from tag_sequences


FAMILIES = {"seqcls": SeqClsTask, "mc": MultipleChoiceTask, "ner": NerTask}
