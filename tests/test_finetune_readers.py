"""Readers for each format (files made here), label checks, PubMedQA's official split on the real file, the
distractor setting and few-shot sampling."""

import collections
import gzip
import json
import random

import pytest

from linkbert.eval.finetune.pubmedqa import official_split
from linkbert.eval.finetune.readers import DataError, qa_format, read_qa, read_splits
from linkbert.eval.finetune.settings import add_distractors, sample_questions
from linkbert.eval.finetune.tasks import MultipleChoiceTask, NerTask, SeqClsTask


def write_lines(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_splits(folder, rows_by_split):
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in rows_by_split.items():
        write_lines(folder / f"{split}.json", rows)
    return folder


PAIRS = [{"id": "1", "sentence1": "q one", "sentence2": "ctx one", "label": "yes"},
         {"id": "2", "sentence1": "q two", "sentence2": "ctx two", "label": "no"}]


def test_seqcls_json_lines_and_label_schema(tmp_path):
    splits = read_splits(str(write_splits(tmp_path, {"train": PAIRS, "dev": PAIRS[:1], "test": PAIRS[1:]})), "seqcls")
    assert [r["id"] for r in splits["train"]] == ["1", "2"]
    task = SeqClsTask(splits)
    assert (task.kind, task.labels, task.metric, task.keys) == ("classes", ["no", "yes"], "accuracy",
                                                                ("sentence1", "sentence2"))


def test_malformed_line_names_file_and_line(tmp_path):
    write_splits(tmp_path, {"train": PAIRS, "test": PAIRS})
    (tmp_path / "dev.json").write_text(json.dumps(PAIRS[0]) + "\n{not json\n")
    with pytest.raises(DataError, match=r"dev\.json:2: not a JSON object"):
        read_splits(str(tmp_path), "seqcls")


def test_missing_field_and_missing_split(tmp_path):
    write_splits(tmp_path, {"train": PAIRS, "dev": [{"id": "x", "label": "yes"}], "test": PAIRS})
    with pytest.raises(DataError, match=r"dev\.json:1: seqcls record lacks sentence or sentence1"):
        read_splits(str(tmp_path), "seqcls")
    write_lines(tmp_path / "dev.json", PAIRS)
    (tmp_path / "test.json").unlink()
    with pytest.raises(DataError, match="no test.json"):
        read_splits(str(tmp_path), "seqcls")


def test_unknown_label_in_test_is_an_error(tmp_path):
    odd = [{"id": "3", "sentence1": "q", "sentence2": "c", "label": "maybe"}]
    splits = read_splits(str(write_splits(tmp_path, {"train": PAIRS, "dev": PAIRS, "test": PAIRS + odd})), "seqcls")
    with pytest.raises(DataError, match=r"test\.json:3: label 'maybe' of the test split is not among"):
        SeqClsTask(splits)


def test_relation_hoc_and_regression_schemas(tmp_path):
    rel = [{"id": "a", "sentence": "s", "label": "0"}, {"id": "b", "sentence": "t", "label": "CPR:3"}]
    splits = read_splits(str(write_splits(tmp_path / "re", {"train": rel, "dev": rel, "test": rel})), "seqcls")
    task = SeqClsTask(splits, "PRF1")
    assert (task.metric, task.index["0"], task.keys) == ("f1", 0, ("sentence", None))
    hoc = [{"id": "d1_s1", "sentence": "s", "label": [0, 1] + [0] * 8}]
    splits = read_splits(str(write_splits(tmp_path / "hoc", {"train": hoc, "dev": hoc, "test": hoc})), "seqcls")
    assert (SeqClsTask(splits).kind, SeqClsTask(splits).num_labels) == ("multilabel", 10)
    sts = [{"id": "x", "sentence1": "a", "sentence2": "b", "label": 2.5}]
    splits = read_splits(str(write_splits(tmp_path / "sts", {"train": sts, "dev": sts, "test": sts})), "seqcls")
    assert (SeqClsTask(splits).kind, SeqClsTask(splits).metric) == ("regression", "pearson")
    splits["test"] = [dict(sts[0], label="high", _file="test.json", _line=1)]
    with pytest.raises(DataError, match="is not a number"):
        SeqClsTask(splits)


def test_ner_and_mc_checks(tmp_path):
    ner = [{"id": "0", "tokens": ["Aspirin", "helps"], "ner_tags": ["B-Chemical", "O"]}]
    bad = [{"id": "1", "tokens": ["x"], "ner_tags": ["B-Gene"]}]
    splits = read_splits(str(write_splits(tmp_path / "ner", {"train": ner, "dev": ner, "test": bad})), "ner")
    with pytest.raises(DataError, match=r"test\.json:1: tag 'B-Gene' of the test split"):
        NerTask(splits)
    mc = [{"id": "m", "sent1": "q", "sent2": "", "ending0": "a", "ending1": "b", "ending2": "c", "ending3": "d",
           "label": 2}]
    splits = read_splits(str(write_splits(tmp_path / "mc", {"train": mc, "dev": mc, "test": [dict(mc[0], label=4)]})),
                         "mc")
    with pytest.raises(DataError, match=r"test\.json:1: label 4 is not a choice index 0\.\.3"):
        MultipleChoiceTask(splits)


SQUAD = {"version": "1.1", "data": [{"title": "T", "paragraphs": [
    {"context": "Paris is the capital of France.",
     "qas": [{"id": "s1", "question": "What is the capital?", "answers": [{"text": "Paris", "answer_start": 0}]},
             {"id": "s2", "question": "Of what?", "answers": [{"text": "France", "answer_start": 24},
                                                              {"text": "France.", "answer_start": 24}]}]}]}]}


def test_squad_json_is_detected_and_read(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps(SQUAD, indent=2))  # pretty-printed: not JSON lines
    assert qa_format(str(path)) == "squad"
    records = read_qa(str(path))
    assert [r["id"] for r in records] == ["s1", "s2"]
    assert records[1]["answers"] == {"text": ["France", "France."], "answer_start": [24, 24]}


def test_mrqa_jsonl_gz_named_json_is_detected(tmp_path):
    path = tmp_path / "train.json"
    lines = [{"header": {"dataset": "SQuAD", "split": "train"}},
             {"context": "Oslo is in Norway.", "qas": [
                 {"qid": "m1", "question": " Where is Oslo? ", "answers": ["Norway"],
                  "detected_answers": [{"text": "Norway", "char_spans": [[11, 16]]}]}]}]
    with gzip.open(path, "wt") as handle:
        handle.write("".join(json.dumps(line) + "\n" for line in lines))
    assert qa_format(str(path)) == "mrqa"
    [record] = read_qa(str(path))
    assert (record["id"], record["question"], record["answers"]) == (
        "m1", "Where is Oslo?", {"text": ["Norway"], "answer_start": [11]})


def test_hf_qa_lines_and_bad_answer_offset(tmp_path):
    path = tmp_path / "dev.json"
    row = {"id": "h1", "question": "q", "context": "short", "answers": {"answer_start": [0], "text": ["short"]}}
    write_lines(path, [row])
    assert qa_format(str(path)) == "hf"
    assert read_qa(str(path))[0]["answers"]["text"] == ["short"]
    write_lines(path, [row, dict(row, id="h2", answers={"answer_start": [3], "text": ["short"]})])
    with pytest.raises(DataError, match=r"dev\.json:2: answer 'short' at character 3 lies outside"):
        read_qa(str(path))


def test_pubmedqa_official_split(real_data):
    data = real_data("eval/pubmedqa/ori_pqal.json").parent
    splits = official_split(str(data))
    assert {k: len(v) for k, v in splits.items()} == {"train": 450, "dev": 50, "test": 500}
    truth = json.loads((data / "test_ground_truth.json").read_text())
    assert {r["id"] for r in splits["test"]} == set(truth)
    assert {r["id"]: r["label"] for r in splits["test"]} == truth
    ids = [r["id"] for part in splits.values() for r in part]
    assert len(set(ids)) == 1000
    assert collections.Counter(r["label"] for r in splits["test"])["yes"] == 276  # 55.2% majority
    # The 10-fold cut gives every fold 50 questions.
    assert collections.Counter(r["label"] for r in splits["dev"]) == {"yes": 27, "no": 17, "maybe": 6}


def qa_rows(n):
    rows = []
    for i in range(n):
        context = f"Context {i} says the answer is word{i} today."
        start = context.index(f"word{i}")
        rows.append({"id": f"q{i}", "question": f"what {i}?", "context": context,
                     "answers": {"text": [f"word{i}"], "answer_start": [start]}})
    return rows


def test_distractors_shift_answers_and_come_from_the_same_split():
    rows = qa_rows(6)
    out = add_distractors(rows, seed=3, split="train")
    contexts = {r["context"] for r in rows}
    counts = collections.Counter()
    for original, new in zip(rows, out):
        assert original["context"] in new["context"]
        start = new["answers"]["answer_start"][0]
        assert new["context"][start:start + len(new["answers"]["text"][0])] == original["answers"]["text"][0]
        others = [c for c in contexts if c != original["context"] and c in new["context"]]
        assert len(others) == new["distractors"] and 1 <= new["distractors"] <= 2
        prefix = new["context"][:new["context"].index(original["context"])]
        counts["prepended" if prefix else "appended-only"] += 1
        counts[new["distractors"]] += 1
    assert counts[1] and counts[2] and counts["prepended"]  # both counts and both sides occur
    assert add_distractors(rows, seed=3, split="train") == out
    assert add_distractors(rows, seed=4, split="train") != out
    shuffled = rows[:]
    random.Random(0).shuffle(shuffled)
    by_id = {r["id"]: r["context"] for r in add_distractors(shuffled, seed=3, split="train")}
    assert by_id == {r["id"]: r["context"] for r in out}  # keyed by question, not by position


def test_few_shot_samples_questions_with_a_seed():
    rows = qa_rows(100)
    first = sample_questions(rows, 0.1, seed=1)
    assert len(first) == 10
    assert [r["id"] for r in first] == [r["id"] for r in rows if r in first]  # original order kept
    assert sample_questions(rows, 0.1, seed=1) == first
    assert sample_questions(rows, 0.1, seed=2) != first
    assert sample_questions(rows, 1.0, seed=1) == rows
    with pytest.raises(ValueError, match="train-fraction"):
        sample_questions(rows, 0, seed=1)


def test_docs_carry_the_preset_table():
    from pathlib import Path

    from linkbert.eval.finetune.presets import get, markdown_table

    docs = (Path(__file__).resolve().parents[1] / "docs" / "FINETUNE.md").read_text()
    assert markdown_table() in docs
    pubmedqa = get("pubmedqa_hf").hyper
    assert (pubmedqa.lr, pubmedqa.batch_size, pubmedqa.epochs, pubmedqa.max_seq_len, pubmedqa.warmup) == (
        2e-5, 16, 30, 512, 100)
