import json

import pytest
from train_fixtures import build_instance_dir, trained_run

from linkbert import cli as linkbert_cli
from linkbert.eval.intrinsic import evaluate
from linkbert.train.data import ShardError


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory.getbasetemp())


@pytest.mark.slow
def test_cli_prints_json_metrics_last(run, capsys):
    data_dir, run_dir = run
    code = linkbert_cli.main(["eval", "intrinsic", "--model", str(run_dir / "hf"), "--data", str(data_dir),
                              "--json", "--max-instances", "25", "--batch-size", "8"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["instances"] == 25
    assert sum(result["drp_count_per_relation"].values()) == 25
    for key in ("mlm_acc", "drp_acc", "mlm_loss", "drp_loss"):
        assert 0 <= result[key] and (key.endswith("loss") or result[key] <= 1)
    assert set(result["drp_acc_per_relation"]) == {"contiguous", "random", "linked"}
    assert any("DRP: loss" in line for line in lines)


@pytest.mark.slow
def test_deterministic_and_better_than_an_untrained_model(run, tmp_path):
    data_dir, run_dir = run
    first = evaluate(str(run_dir / "hf"), str(data_dir))
    again = evaluate(str(run_dir / "hf"), str(data_dir))
    assert first == again
    # The same architecture at step 20 of the same run predicts masked tokens worse than at step 40.
    from linkbert.train.export import export_checkpoint

    early = export_checkpoint(str(run_dir), "step00000020", str(tmp_path / "early"))
    assert evaluate(early, str(data_dir))["mlm_loss"] > first["mlm_loss"]
    # Chance on the vocabulary is far below what 40 steps reach.
    assert first["mlm_acc"] > 0.1


def test_refuses_shards_of_another_tokenizer(run, tmp_path):
    _, run_dir = run
    other = build_instance_dir(tmp_path / "other", num_docs=12, vocab_size=300, seed=5)
    with pytest.raises(ShardError, match="tokenized with vocabulary"):
        evaluate(str(run_dir / "hf"), str(other.root))
