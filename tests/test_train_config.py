import json

import pytest

from linkbert.train import dsconfig, presets
from linkbert.train.cli import build_parser
from linkbert.train.model import count_parameters, dense_flops_per_token, from_scratch, training_flops
from linkbert.train.schedule import lr_at


def test_short_run_keeps_the_schedule_shape():
    tiny = presets.preset("tiny")
    schedule = presets.resolve(tiny, world_size=1, max_steps=400, global_batch_size=32, micro_batch_size=16)
    assert (schedule.lr, schedule.max_steps, schedule.warmup_steps) == (5e-3, 400, 200)
    assert schedule.gradient_accumulation_steps == 2
    full = presets.resolve(tiny, world_size=8)
    assert (full.max_steps, full.warmup_steps, full.global_batch_size) == (10_000, 5_000, 2048)
    assert full.micro_batch_size * full.gradient_accumulation_steps * 8 == 2048
    bio = presets.resolve(presets.preset("bio-large"), world_size=1, max_steps=1000)
    assert bio.warmup_steps == 200 and bio.lr == 4e-4 and bio.global_batch_size == 8192
    with pytest.raises(ValueError, match="not a multiple of micro-batch 16 x 3"):
        presets.resolve(tiny, world_size=3, global_batch_size=32, micro_batch_size=16)
    with pytest.raises(ValueError, match="unknown preset"):
        presets.preset("huge")


def test_biomedical_presets_mask_whole_words_unless_told_otherwise():
    for name in ("bio-base", "bio-large"):
        assert presets.masking_and_length(presets.preset(name), None, None, 512) == ("wwm", 512)
        assert presets.masking_and_length(presets.preset(name), "span", 128, 512) == ("span", 128)
    for name in ("tiny", "base", "large"):
        assert presets.masking_and_length(presets.preset(name), None, None, 512) == ("token", 512)
    # The preset's 512 never exceeds what the checkpoint's position table holds.
    assert presets.masking_and_length(presets.preset("base"), None, None, 256) == ("token", 256)


def test_tiny_preset_is_the_papers_4_4m_parameter_model():
    model = from_scratch(presets.preset("tiny").architecture, 30522, 0)
    assert count_parameters(model) == pytest.approx(4.4e6, rel=0.01)
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    # 6N over the non-position parameters + 12·L·H·T: 6 * (4,433,597 - 512 * 128) + 12 * 2 * 128 * 512.
    assert count_parameters(model) == 4_433_597
    assert dense_flops_per_token(model.config, 512, count_parameters(model)) == 6 * (4_433_597 - 65_536) + 1_572_864


def test_bert_base_at_512_performs_554m_of_the_715m_flops_per_token_the_dense_formula_counts():
    from linkbert.train.presets import BERT_BASE

    model = from_scratch(BERT_BASE, 30522, 0)
    masked = round(0.15 * 509)  # 15% of the tokens of a full pair but [CLS] and the two [SEP]
    performed = training_flops(model.config, 1, 512, last_layer_rows=1 + masked, query_slots=1 + masked,
                               masked=masked) / 512
    dense = dense_flops_per_token(model.config, 512, count_parameters(model))
    assert round(dense / 1e6) == 715 and round(performed / 1e6) == 554
    assert dense / performed == pytest.approx(1.291, abs=0.001)


def test_deepspeed_config_for_the_cpu_and_the_gpu():
    tiny = presets.preset("tiny")
    schedule = presets.resolve(tiny, world_size=1, max_steps=400, global_batch_size=32, micro_batch_size=16)
    cpu = dsconfig.build(dsconfig.load_base("fp32"), "fp32", tiny, schedule, 1, on_cuda=False)
    assert "fp16" not in cpu and "bf16" not in cpu
    assert cpu["optimizer"]["params"]["torch_adam"] is True and cpu["optimizer"]["params"]["fused"] is True
    assert cpu["optimizer"]["params"]["betas"] == [0.9, 0.98] and cpu["optimizer"]["params"]["weight_decay"] == 0.01
    assert (cpu["train_batch_size"], cpu["train_micro_batch_size_per_gpu"], cpu["gradient_accumulation_steps"]) \
        == (32, 16, 2)
    assert cpu["scheduler"]["params"] == {"warmup_min_lr": 0.0, "warmup_max_lr": 5e-3, "warmup_num_steps": 200,
                                          "total_num_steps": 400, "warmup_type": "linear"}
    bf16 = dsconfig.build(dsconfig.load_base("bf16"), "bf16", tiny, schedule, 1, on_cuda=False, zero_stage=2)
    assert bf16["bf16"]["enabled"] and bf16["zero_optimization"]["stage"] == 2
    gpu = dsconfig.build(dsconfig.load_base("fp16"), "fp16", tiny, schedule, 1, on_cuda=True)
    assert gpu["fp16"]["loss_scale"] == 0, "fp16 must use dynamic loss scaling"
    assert "torch_adam" not in gpu["optimizer"]["params"]
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        dsconfig.build(dsconfig.load_base("fp16"), "fp16", tiny, schedule, 1, on_cuda=False)
    with pytest.raises(ValueError, match="--zero-stage must be 0, 1 or 2"):
        dsconfig.build(dsconfig.load_base("fp32"), "fp32", tiny, schedule, 1, on_cuda=False, zero_stage=3)


def test_user_config_keeps_its_own_keys(tmp_path):
    path = tmp_path / "ds.json"
    path.write_text(json.dumps({"wall_clock_breakdown": True, "zero_optimization": {"stage": 1}}))
    tiny = presets.preset("tiny")
    schedule = presets.resolve(tiny, world_size=1, max_steps=10, global_batch_size=4, micro_batch_size=4)
    config = dsconfig.build(dsconfig.load_base("fp32", str(path)), "fp32", tiny, schedule, 1, on_cuda=False)
    assert config["wall_clock_breakdown"] is True and config["zero_optimization"]["stage"] == 1
    with pytest.raises(ValueError, match="--deepspeed-config"):
        dsconfig.load_base("fp32", str(tmp_path / "missing.json"))


def test_lr_at_matches_warmup_then_linear_decay():
    schedule = presets.Schedule(lr=1.0, max_steps=100, warmup_steps=10, global_batch_size=1, micro_batch_size=1,
                                gradient_accumulation_steps=1)
    rates = [lr_at(step, schedule) for step in range(1, 101)]
    assert rates[:2] == [0.0, 0.0]
    assert rates[11] == 1.0 and max(rates) == 1.0
    assert all(a <= b for a, b in zip(rates[:12], rates[1:12])), "warm-up is not increasing"
    assert all(a >= b for a, b in zip(rates[12:], rates[13:])), "decay is not decreasing"


def test_command_line_parses_train_and_export():
    parser = build_parser()
    args = parser.parse_args(["--data", "d", "--output", "r", "--preset", "bio-base", "--masking", "wwm",
                              "--no-drp", "--max-steps", "5", "--local_rank=0"])
    assert (args.preset, args.masking, args.no_drp, args.max_steps, args.action) == ("bio-base", "wwm", True, 5, None)
    export = parser.parse_args(["export", "--output", "r", "--tag", "step00000010"])
    assert export.action == "export" and export.tag == "step00000010" and export.func.__name__ == "run_export"


def test_model_shape_flags_change_a_from_scratch_preset_only():
    from linkbert.train.presets import PRESETS, with_architecture

    tiny = PRESETS["tiny"]
    deeper = with_architecture(tiny, layers=4, heads=4)
    assert (deeper.architecture.num_hidden_layers, deeper.architecture.num_attention_heads) == (4, 4)
    assert deeper.architecture.hidden_size == tiny.architecture.hidden_size and deeper.lr == tiny.lr
    assert with_architecture(tiny) is tiny
    with pytest.raises(ValueError, match="not a multiple of --heads 3"):
        with_architecture(tiny, heads=3)
    with pytest.raises(ValueError, match="continues from a checkpoint"):
        with_architecture(PRESETS["base"], layers=2)
