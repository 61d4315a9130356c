"""Metrics as the LinkBERT authors compute them (``src/*/run_*.py``, ``utils_hoc.py``, SQuAD v1.1 official script).

All values are fractions in [0, 1]; tables multiply by 100."""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Sequence

import numpy as np


def accuracy(predictions: Sequence, labels: Sequence) -> float:
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if len(labels) == 0:
        raise ValueError("accuracy of an empty set")
    return float((predictions == labels).mean())


def macro_f1(predictions: Sequence[int], labels: Sequence[int], num_labels: int) -> float:
    """Unweighted mean of per-class F1 over all ``num_labels`` classes (PubMedQA's second metric)."""
    from sklearn.metrics import f1_score

    return float(f1_score(labels, predictions, labels=list(range(num_labels)), average="macro", zero_division=0))


def prf1_excluding(predictions: Sequence[int], labels: Sequence[int], negative: int) -> dict[str, float]:
    """Micro precision/recall/F1 over every class but ``negative`` (ChemProt, DDI, GAD): a true positive is a
    correct prediction of a non-negative class."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    tp = int(((predictions == labels) & (predictions != negative)).sum())
    predicted = int((predictions != negative).sum())
    gold = int((labels != negative).sum())
    precision = tp / predicted if predicted else 0.0
    recall = tp / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def pearson(predictions: Sequence[float], labels: Sequence[float]) -> float:
    """Pearson r; constant predictions (r undefined, scipy gives NaN) score 0.0 so that results stay JSON."""
    from scipy.stats import pearsonr

    predictions, labels = np.asarray(predictions, dtype=float), np.asarray(labels, dtype=float)
    if np.ptp(predictions) == 0 or np.ptp(labels) == 0:
        return 0.0
    return float(pearsonr(labels, predictions)[0])


def hoc_f1(predictions: Sequence[Sequence[int]], labels: Sequence[Sequence[int]], ids: Sequence[str]) -> dict[str, float]:
    """HoC: sentences (ids ``DOC_n``) are grouped by document, each document's hallmarks are the union of its
    sentences', and precision/recall/F1 are pooled over every (document, hallmark) cell that is positive."""
    if not (len(predictions) == len(labels) == len(ids)):
        raise ValueError(f"hoc_f1: {len(predictions)} predictions, {len(labels)} labels, {len(ids)} ids")
    gold: dict[str, np.ndarray] = {}
    pred: dict[str, np.ndarray] = {}
    for p, g, record_id in zip(predictions, labels, ids):
        doc = str(record_id).split("_")[0]
        g, p = np.asarray(g, dtype=bool), np.asarray(p, dtype=bool)
        gold[doc] = gold[doc] | g if doc in gold else g
        pred[doc] = pred[doc] | p if doc in pred else p
    g = np.stack([gold[d] for d in gold])
    p = np.stack([pred[d] for d in gold])
    tp, predicted, positive = int((g & p).sum()), int(p.sum()), int(g.sum())
    precision = tp / predicted if predicted else 0.0
    recall = tp / positive if positive else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "documents": len(gold)}


def entity_f1(predictions: list[list[str]], labels: list[list[str]]) -> dict[str, float]:
    """Entity-level micro P/R/F1 with seqeval's default (conlleval-compatible) chunking, plus token accuracy."""
    from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

    return {"precision": float(precision_score(labels, predictions, zero_division=0)),
            "recall": float(recall_score(labels, predictions, zero_division=0)),
            "f1": float(f1_score(labels, predictions, zero_division=0)),
            "accuracy": float(accuracy_score(labels, predictions))}


def entity_macro_f1(predictions: list[list[str]], labels: list[list[str]]) -> dict[str, float]:
    """EBM PICO (``--return_macro_metrics``): the mean over entity types of seqeval's per-type P/R/F1."""
    from seqeval.metrics import classification_report

    report = classification_report(labels, predictions, output_dict=True, zero_division=0)
    types = [name for name in report if not name.endswith(" avg")]
    if not types:
        return {"macro_precision": 0.0, "macro_recall": 0.0, "macro_f1": 0.0}
    return {"macro_precision": float(np.mean([report[t]["precision"] for t in types])),
            "macro_recall": float(np.mean([report[t]["recall"] for t in types])),
            "macro_f1": float(np.mean([report[t]["f1-score"] for t in types]))}


# --- SQuAD v1.1 official evaluation -------------------------------------------------------------------------

def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation, the articles a/an/the, and extra whitespace (SQuAD v1.1 ``evaluate-v1.1.py``)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match_score(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1_score_tokens(prediction: str, truth: str) -> float:
    pred_tokens, truth_tokens = normalize_answer(prediction).split(), normalize_answer(truth).split()
    common = collections.Counter(pred_tokens) & collections.Counter(truth_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: dict[str, str], answers: dict[str, list[str]]) -> dict[str, float]:
    """EM and F1 averaged over questions, each the max over that question's gold answers."""
    missing = [qid for qid in answers if qid not in predictions]
    if missing:
        raise ValueError(f"no prediction for {len(missing)} questions (first: {missing[0]!r})")
    em = [max(exact_match_score(predictions[q], a) for a in golds) for q, golds in answers.items()]
    f1 = [max(f1_score_tokens(predictions[q], a) for a in golds) for q, golds in answers.items()]
    return {"exact_match": float(np.mean(em)), "f1": float(np.mean(f1))}
