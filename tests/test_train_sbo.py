import json

import pytest
import torch
from train_fixtures import build_instance_dir, run_train


@pytest.mark.slow
def test_span_boundary_objective_trains_its_loss_falls_and_the_export_loads(tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModel

    from linkbert.train.model import LinkBertForPreTraining

    data = build_instance_dir(tmp_path / "data", num_docs=24)
    run_dir = tmp_path / "run"
    run_train("--data", str(data.root), "--output", str(run_dir), "--sbo", "--masking", "span", "--max-steps", "30",
              "--global-batch-size", "8", "--micro-batch-size", "8", "--lr", "2e-3", "--hidden-dropout", "0",
              "--attention-dropout", "0", "--num-workers", "0", "--no-tensorboard", "--log-every", "5",
              "--save-every", "30")
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    sbo = [r["sbo_loss"] for r in records]
    assert len(sbo) == 6 and all(value is not None for value in sbo)
    # The loss is MLM + DRP + SBO, and the SBO loss falls well below its start (ln 400 = 6.0 at chance).
    assert all(r["loss"] == pytest.approx(r["mlm_loss"] + r["drp_loss"] + r["sbo_loss"], rel=1e-6) for r in records)
    assert sbo[-1] < 0.8 * sbo[0], sbo  # measured: 5.52 -> 3.94
    assert json.loads((run_dir / "run.json").read_text())["sbo"] is True

    hf = run_dir / "hf"
    weights = load_file(hf / "model.safetensors")
    assert any(name.startswith("cls.span_boundary.") for name in weights)
    encoder = AutoModel.from_pretrained(hf)
    assert type(encoder).__name__ == "BertModel"
    torch.testing.assert_close(encoder.embeddings.word_embeddings.weight, weights["bert.embeddings.word_embeddings.weight"])
    full, info = LinkBertForPreTraining.from_pretrained(hf, output_loading_info=True)
    assert not info["missing_keys"] and full.cls.span_boundary is not None
    torch.testing.assert_close(full.cls.span_boundary.dense1.weight, weights["cls.span_boundary.dense1.weight"])
