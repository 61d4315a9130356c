"""PubMedQA's official split (``pubmedqa/preprocess/split_dataset.py pqal``), re-derived from ``ori_pqal.json``.

The authors shuffle each label's PMIDs with Python's ``random`` seeded 0, cut 500 test / 500 CV stratified by
label, then cut the CV half into 10 stratified folds (moving one random PMID from each of the first nine folds
to the short last one). BLURB trains on folds 1-9 (450) and develops on fold 0 (50). Re-running that procedure
reproduces the 500 PMIDs of ``test_ground_truth.json`` exactly; we check that it does before using the split."""

from __future__ import annotations

import json
import math
import os
import random

from linkbert.eval.finetune.readers import DataError

LABELS = ("yes", "no", "maybe")


def _split_label(rng: random.Random, pmids: list[str], folds: int) -> list[list[str]]:
    rng.shuffle(pmids)
    size = math.ceil(len(pmids) / folds)
    return [pmids[i * size:(i + 1) * size] if i < folds - 1 else pmids[i * size:] for i in range(folds)]


def _split(rng: random.Random, dataset: dict[str, dict], folds: int) -> list[dict[str, dict]]:
    by_label: dict[str, list[str]] = {label: [] for label in LABELS}
    for pmid, info in dataset.items():
        by_label[info["final_decision"]].append(pmid)
    cut = {label: _split_label(rng, pmids, folds) for label, pmids in by_label.items()}
    output = [{pmid: dataset[pmid] for label in LABELS for pmid in cut[label][i]} for i in range(folds)]
    if len(output[-1]) != len(output[0]):
        for i in range(folds - 1):
            picked = rng.choice(list(output[i]))
            output[-1][picked] = output[i].pop(picked)
    return output


def official_split(data_dir: str) -> dict[str, list[dict]]:
    """train (450) / dev (50) / test (500) records in the LinkBERT seqcls format
    ``{id, sentence1: question, sentence2: contexts joined, label}``."""
    path = os.path.join(data_dir, "ori_pqal.json")
    truth_path = os.path.join(data_dir, "test_ground_truth.json")
    if not os.path.isfile(path):
        raise DataError(f"{data_dir}: no ori_pqal.json")
    with open(path, encoding="utf-8") as handle:
        try:
            dataset = json.load(handle)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
    for pmid, info in dataset.items():
        if info.get("final_decision") not in LABELS:
            raise DataError(f"{path}: PMID {pmid}: final_decision {info.get('final_decision')!r} is not yes/no/maybe")
    rng = random.Random(0)
    cv, test = _split(rng, dataset, 2)
    folds = _split(rng, cv, 10)
    if os.path.isfile(truth_path):
        with open(truth_path, encoding="utf-8") as handle:
            truth = json.load(handle)
        if set(truth) != set(test):
            raise DataError(f"{truth_path}: its {len(truth)} PMIDs are not the test half that the official split "
                            f"procedure gives for {path} (is ori_pqal.json the original?)")
        wrong = [pmid for pmid, label in truth.items() if dataset[pmid]["final_decision"] != label]
        if wrong:
            raise DataError(f"{truth_path}: PMID {wrong[0]} has label {truth[wrong[0]]!r}, ori_pqal.json says "
                            f"{dataset[wrong[0]]['final_decision']!r}")
    train = {pmid: info for fold in folds[1:] for pmid, info in fold.items()}
    parts = {"train": train, "dev": folds[0], "test": test}
    return {name: [_record(path, pmid, info) for pmid, info in part.items()] for name, part in parts.items()}


def _record(path: str, pmid: str, info: dict) -> dict:
    context = " ".join(c.strip() for c in info["CONTEXTS"] if c.strip())
    return {"id": pmid, "sentence1": info["QUESTION"].strip(), "sentence2": context,
            "label": info["final_decision"], "_file": path, "_line": f"PMID {pmid}"}
