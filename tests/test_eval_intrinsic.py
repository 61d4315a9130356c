import json

import pytest
from baselines import unigram_mlm_accuracy
from train_fixtures import build_instance_dir, run_train, trained_run

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
    # The CLI prints what the library computes for the same arguments, and its figures add up.
    assert result == evaluate(str(run_dir / "hf"), str(data_dir), max_instances=25, batch_size=8)
    assert result["instances"] == 25 and sum(result["drp_count_per_relation"].values()) == 25
    per_relation = sum(result["drp_acc_per_relation"][name] * count
                       for name, count in result["drp_count_per_relation"].items())
    assert result["drp_acc"] == pytest.approx(per_relation / 25)
    assert f"DRP: loss {result['drp_loss']:.4f}  accuracy {result['drp_acc']:.4f}" in "\n".join(lines)
    assert f"accuracy {result['mlm_acc']:.4f}  ({result['mlm_tokens']} masked tokens)" in "\n".join(lines)


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
    # 40 steps beat always predicting the most frequent token (measured: 0.185 against 0.104).
    from transformers import AutoTokenizer

    special = AutoTokenizer.from_pretrained(str(run_dir / "hf")).all_special_ids
    assert first["mlm_acc"] > unigram_mlm_accuracy(str(data_dir), special) + 0.04


@pytest.mark.slow
def test_a_no_drp_model_reports_no_relation_accuracy(run, tmp_path, capsys):
    data_dir, _ = run
    run_dir = tmp_path / "no-drp"
    run_train("--data", str(data_dir), "--output", str(run_dir), "--max-steps", "2", "--global-batch-size", "8",
              "--micro-batch-size", "8", "--no-drp", "--num-workers", "0", "--no-tensorboard")
    result = evaluate(str(run_dir / "hf"), str(data_dir), max_instances=16)
    assert result["drp_acc"] is None and result["drp_loss"] is None
    assert set(result["drp_acc_per_relation"].values()) == {None}
    assert result["mlm_acc"] is not None
    assert linkbert_cli.main(["eval", "intrinsic", "--model", str(run_dir / "hf"), "--data", str(data_dir),
                              "--max-instances", "16"]) == 0
    out = capsys.readouterr().out
    assert "no trained relation head" in out and "DRP: loss" not in out


def test_refuses_shards_of_another_tokenizer(run, tmp_path):
    _, run_dir = run
    other = build_instance_dir(tmp_path / "other", num_docs=12, vocab_size=300, seed=5)
    with pytest.raises(ShardError, match="tokenized with vocabulary"):
        evaluate(str(run_dir / "hf"), str(other.root))
