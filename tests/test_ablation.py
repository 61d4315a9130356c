"""``linkbert ablation``: the summary statistics, the table's verdict, and the runner end to end on a tiny configuration."""

import argparse
import json
import os

import pytest

from linkbert.cli import main as linkbert
from linkbert.eval import ablation


def _run(seed, multihop, mlm=0.5, drp=0.4):
    return {"seed": seed, "intrinsic": {"mlm_acc": mlm, "drp_acc": drp},
            "qa_f1": {setting: multihop for setting in ablation.QA_SETTINGS}}


def test_summary_is_mean_and_sample_standard_deviation():
    summary = ablation.summarise([_run(0, 10.0), _run(1, 14.0), _run(2, 18.0)])
    assert summary["multihop"] == {"mean": 14.0, "std": 4.0, "n": 3}
    assert summary["drp_acc"]["mean"] == pytest.approx(0.4) and summary["drp_acc"]["std"] == 0.0


def test_missing_intrinsic_figures_are_not_averaged_as_zero():
    summary = ablation.summarise([_run(0, 1.0, drp=None), _run(1, 1.0, drp=None)])
    assert summary["drp_acc"] == {"mean": None, "std": None, "n": 0}


def test_a_difference_counts_only_beyond_both_spreads():
    a = {"mean": 20.0, "std": 1.0, "n": 3}
    assert ablation.exceeds_spread(a, {"mean": 17.5, "std": 1.0, "n": 3}) is True
    assert ablation.exceeds_spread(a, {"mean": 18.5, "std": 1.0, "n": 3}) is False
    assert ablation.exceeds_spread(a, {"mean": 10.0, "std": 0.0, "n": 1}) is None  # one seed: cannot tell


def _results(full, base, floor=None):
    summary = {"hyperlink": ablation.summarise([_run(s, full + s / 100) for s in range(3)]),
               "bert": ablation.summarise([_run(s, base + s / 100) for s in range(3)])}
    if floor is not None:
        summary["random-init"] = ablation.summarise([_run(s, floor, mlm=None, drp=None) for s in range(3)])
    return {"config": {"docs": 10, "world_seed": 0, "steps": 5, "batch_size": 4, "max_seq_len": 64,
                       "finetune_steps": 2, "seeds": 3},
            "summary": summary, "train_rows": {"hyperlink": 120, "bert": 480, "random-init": None}, "wall_seconds": 60.0}


def test_table_shows_f1_x100_and_says_whether_each_difference_exceeds_the_spread():
    text = ablation.markdown(_results(0.20, 0.19, floor=0.05))
    assert "| hyperlink | 21.00 ± 1.00 |" in text and "| 120 |" in text
    assert "| random-init | 5.00 ± 0.00 |" in text and "| n/a | n/a | none |" in text
    against_bert = text[text.index("Against `bert`"):text.index("Against `hyperlink`")]
    assert "| hyperlink | +1.00 within |" in against_bert and "| random-init | -15.00 exceeds |" in against_bert
    assert "Against `random-init`" in text and "| bert | +15.00 exceeds |" in text
    assert "does not beat `bert` by more than the seed spread" in text
    assert "above it beyond the spread: `hyperlink`, `bert`; not: none" in text
    assert "Multi-hop ordering by mean: `hyperlink` > `bert` > `random-init`." in text


def test_verdict_when_the_full_method_beats_the_baseline_and_with_one_seed():
    assert "beats `bert` by more than the seed spread" in ablation.markdown(_results(0.30, 0.10))
    one_seed = _results(0.30, 0.10)
    one_seed["summary"] = {name: ablation.summarise([_run(0, 0.3)]) for name in ("hyperlink", "bert")}
    text = ablation.markdown(one_seed)
    assert "One seed only" in text and "(1 seed)" in text


def test_random_init_floor_is_a_seeded_loadable_qa_model(tmp_path):
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, BertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "river", "lobran", "is", "long"]
    BertTokenizer(vocab={word: i for i, word in enumerate(words)}).save_pretrained(str(tmp_path / "tokenizer"))
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        ablation.random_init_model(str(tmp_path / "tokenizer"), str(tmp_path / name), seed)
    models = {name: AutoModelForQuestionAnswering.from_pretrained(str(tmp_path / name), local_files_only=True)
              for name in "abc"}
    assert models["a"].config.vocab_size == 10 and models["a"].config.hidden_size == 128
    assert models["a"].config.hidden_dropout_prob == 0.0 and AutoTokenizer.from_pretrained(str(tmp_path / "a")).is_fast
    embeddings = {name: model.bert.embeddings.word_embeddings.weight for name, model in models.items()}
    assert torch.equal(embeddings["a"], embeddings["b"]) and not torch.equal(embeddings["a"], embeddings["c"])


def test_linkbert_eval_waits_passively_before_torch_loads():
    """Spinning OpenMP threads made each fine-tuning step ~40x slower on the shared machine: the ablation's
    84 fine-tunings could not finish. The policy must be set before torch loads to take effect."""
    import subprocess
    import sys

    code = ("import os, sys; from linkbert.cli import build_parser; build_parser(['eval', 'finetune']); "
            "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)")
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["PASSIVE", "False"]


def test_pretraining_interrupted_after_a_checkpoint_resumes_instead_of_being_refused(tmp_path, monkeypatch):
    calls = []

    def fake_linkbert(args, log_path):
        calls.append(args)
        raise SystemExit("stop after the train command")

    monkeypatch.setattr(ablation, "_linkbert", fake_linkbert)
    config = argparse.Namespace(out=str(tmp_path), steps=10, batch_size=4, max_seq_len=32)
    for expected in (False, True):
        with pytest.raises(SystemExit):
            ablation.run_variant_seed(config, "hyperlink", 0, "DATA", "QA")
        assert ("--resume" in calls[-1]) is expected and calls[-1][0] == "train"
        os.makedirs(tmp_path / "runs" / "hyperlink-seed0" / "checkpoints" / "step00000005", exist_ok=True)


def test_unknown_variant_is_refused_before_any_work(tmp_path):
    with pytest.raises(SystemExit, match="unknown variant"):
        linkbert(["ablation", "--out", str(tmp_path / "a"), "--variants", "hyperlink,nope"])
    assert not (tmp_path / "a").exists()


@pytest.mark.slow
def test_runner_writes_every_file_with_every_variant(tmp_path):
    out = tmp_path / "ablation"
    code = linkbert(["ablation", "--out", str(out), "--docs", "120", "--steps", "3", "--seeds", "1",
                     "--finetune-steps", "2", "--batch-size", "8", "--qa-max-seq-len", "128", "--vocab-size", "1500"])
    assert code == 0
    results = json.loads((out / "ablation.json").read_text())
    assert set(results["summary"]) == set(ablation.VARIANTS)
    for name, runs in results["per_seed"].items():
        assert len(runs) == 1
        for setting in ablation.QA_SETTINGS:
            assert 0.0 <= runs[0]["qa_f1"][setting] <= 1.0, (name, setting)
        assert (runs[0]["intrinsic"].get("mlm_acc") is not None) == ablation.VARIANTS[name].pretrain, name
    assert results["per_seed"]["no-drp"][0]["intrinsic"]["drp_acc"] is None  # no trained relation head
    assert results["train_rows"]["bert"] > 0 and results["train_rows"]["random-init"] is None
    table = (out / "ablation.md").read_text()
    assert all(f"| {name} |" in table for name in ablation.VARIANTS)
    assert (out / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # bert pairs contiguous/random only; the full method has linked instances
    bert = json.loads((out / "data" / "bert" / "manifest.json").read_text())
    assert bert["splits"]["train"]["relations"].get("linked", 0) == 0
    full = json.loads((out / "data" / "hyperlink" / "manifest.json").read_text())
    assert full["splits"]["train"]["relations"]["linked"] > 0
