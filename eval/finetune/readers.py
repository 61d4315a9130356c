"""Readers for the files the LinkBERT repo's ``scripts/preprocess_*.py`` write (JSON lines named ``.json``), and
for extractive QA also the official SQuAD v1.1 json and MRQA jsonl(.gz), told apart by content."""

from __future__ import annotations

import gzip
import json
import os

SPLITS = ("train", "dev", "test")
# The fields each family needs in every record.
FIELDS = {
    "seqcls": ("id", "label"),
    "qa": ("id", "question", "context", "answers"),
    "mc": ("id", "sent1", "label"),
    "ner": ("id", "tokens", "ner_tags"),
}


class DataError(ValueError):
    """A data file that cannot be read as its task needs; the message names the file (and line)."""


def find_split(data_dir: str, split: str) -> str:
    for name in (f"{split}.json", f"{split}.jsonl", f"{split}.jsonl.gz", f"{split}.json.gz"):
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            return path
    raise DataError(f"{data_dir}: no {split}.json (nor {split}.jsonl[.gz])")


def _open_text(path: str):
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_json_lines(path: str) -> list[dict]:
    """One JSON object per non-blank line; a line that is not an object is an error naming file and line."""
    records = []
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not a JSON object ({exc.msg})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            record["_line"] = number
            records.append(record)
    return records


def _check_fields(path: str, records: list[dict], task: str) -> None:
    for record in records:
        missing = [field for field in FIELDS[task] if field not in record]
        if task == "seqcls" and "sentence" not in record and "sentence1" not in record:
            missing.append("sentence or sentence1")
        if missing:
            raise DataError(f"{path}:{record.get('_line', '?')}: {task} record lacks {', '.join(missing)}")


# --- extractive QA ------------------------------------------------------------------------------------------

def _qa_record(path: str, where, qid, question, context, texts, starts) -> dict:
    if len(texts) != len(starts) or not texts:
        raise DataError(f"{path}:{where}: question {qid!r} needs as many answer texts as answer starts (>= 1)")
    for text, start in zip(texts, starts):
        if not 0 <= int(start) <= len(context) - len(text):
            raise DataError(f"{path}:{where}: answer {text!r} at character {start} lies outside the context "
                            f"({len(context)} characters)")
    return {"id": str(qid), "question": question, "context": context,
            "answers": {"text": list(texts), "answer_start": [int(s) for s in starts]}, "_line": where}


def _from_squad(path: str, document: dict) -> list[dict]:
    records = []
    for article in document["data"]:
        for paragraph in article.get("paragraphs", []):
            for qa in paragraph.get("qas", []):
                texts = [a["text"] for a in qa.get("answers", [])]
                starts = [a["answer_start"] for a in qa.get("answers", [])]
                records.append(_qa_record(path, f"qid {qa.get('id')}", qa.get("id"), qa["question"],
                                          paragraph["context"], texts, starts))
    return records


def _from_mrqa(path: str, lines: list[dict]) -> list[dict]:
    """MRQA jsonl: a header line, then one paragraph per line with its ``qas``; answers are the
    ``detected_answers`` (first char span each), as ``preprocess_mrqa.py`` takes them."""
    records = []
    for paragraph in lines:
        if "header" in paragraph:
            continue
        if "context" not in paragraph or "qas" not in paragraph:
            raise DataError(f"{path}:{paragraph['_line']}: MRQA line lacks context or qas")
        for qa in paragraph["qas"]:
            qid = qa.get("qid", qa.get("id"))
            detected = qa.get("detected_answers", [])
            texts = [d["text"] for d in detected]
            starts = [d["char_spans"][0][0] for d in detected]
            records.append(_qa_record(path, paragraph["_line"], qid, qa["question"].strip(), paragraph["context"],
                                      texts, starts))
    return records


def qa_format(path: str) -> str:
    """``squad`` (one JSON document with ``data``), ``mrqa`` (jsonl of paragraphs with ``qas``) or ``hf``
    (jsonl of questions, the LinkBERT repo's format)."""
    with _open_text(path) as handle:
        first = handle.readline()
    try:
        head = json.loads(first)
    except json.JSONDecodeError:
        return "squad"  # a pretty-printed document; read_qa reports it if it is not one
    if isinstance(head, dict) and isinstance(head.get("data"), list):
        return "squad"
    if isinstance(head, dict) and ("header" in head or "qas" in head):
        return "mrqa"
    return "hf"


def read_qa(path: str) -> list[dict]:
    kind = qa_format(path)
    if kind == "squad":
        with _open_text(path) as handle:
            try:
                document = json.load(handle)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{exc.lineno}: not JSON lines, and not a SQuAD json document ({exc.msg})") from None
        if not isinstance(document, dict) or not isinstance(document.get("data"), list):
            raise DataError(f"{path}: a JSON document without a SQuAD 'data' list")
        return _from_squad(path, document)
    lines = read_json_lines(path)
    if kind == "mrqa":
        return _from_mrqa(path, lines)
    _check_fields(path, lines, "qa")
    for record in lines:
        answers = record["answers"]
        _qa_record(path, record["_line"], record["id"], record["question"], record["context"],
                   answers.get("text", []), answers.get("answer_start", []))
        record["id"] = str(record["id"])
    return lines


def read_split(data_dir: str, split: str, task: str) -> tuple[str, list[dict]]:
    path = find_split(data_dir, split)
    if task == "qa":
        records = read_qa(path)
    else:
        records = read_json_lines(path)
        _check_fields(path, records, task)
    if not records:
        raise DataError(f"{path}: no records")
    for record in records:
        record["_file"] = path
    return path, records


def read_splits(data_dir: str, task: str) -> dict[str, list[dict]]:
    if task not in FIELDS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(FIELDS)}")
    if not os.path.isdir(data_dir):
        raise DataError(f"{data_dir}: no such data directory")
    return {split: read_split(data_dir, split, task)[1] for split in SPLITS}


def where(record: dict) -> str:
    return f"{record.get('_file', '?')}:{record.get('_line', '?')}"
