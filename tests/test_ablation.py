"""``linkbert ablation``: the summary statistics, the table's verdict, and the runner end to end on a tiny configuration."""

import json

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


def test_table_and_verdict_say_when_the_benchmark_does_not_separate():
    results = {"config": {"docs": 10, "world_seed": 0, "steps": 5, "batch_size": 4, "max_seq_len": 64,
                          "finetune_steps": 2, "seeds": 3},
               "summary": {"hyperlink": ablation.summarise([_run(s, 20.0 + s) for s in range(3)]),
                           "bert": ablation.summarise([_run(s, 19.0 + s) for s in range(3)])},
               "wall_seconds": 60.0}
    text = ablation.markdown(results)
    assert "| hyperlink | 21.00 ± 1.00" in text and "+1.00 |" in text and "+1.00*" not in text
    assert "does not beat `bert` by more than the seed spread" in text
    results["summary"]["bert"] = ablation.summarise([_run(s, 10.0 + s) for s in range(3)])
    assert "beats `bert` by more than the seed spread" in ablation.markdown(results)


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
            assert 0.0 <= runs[0]["qa_f1"][setting] <= 100.0, (name, setting)
        assert runs[0]["intrinsic"]["mlm_acc"] is not None
    assert results["per_seed"]["no-drp"][0]["intrinsic"]["drp_acc"] is None  # no trained relation head
    table = (out / "ablation.md").read_text()
    assert all(f"| {name} |" in table for name in ablation.VARIANTS)
    assert (out / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # bert pairs contiguous/random only; the full method has linked instances
    bert = json.loads((out / "data" / "bert" / "manifest.json").read_text())
    assert bert["splits"]["train"]["relations"].get("linked", 0) == 0
    full = json.loads((out / "data" / "hyperlink" / "manifest.json").read_text())
    assert full["splits"]["train"]["relations"]["linked"] > 0
