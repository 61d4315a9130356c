import torch
import torch.nn.functional as F

import pytest
from torch.utils.flop_counter import FlopCounterMode

from linkbert.train.model import (
    LinkBertForPreTraining,
    enable_sbo,
    from_scratch,
    set_dropout,
    span_boundaries,
)
from linkbert.train.presets import Architecture


def batch_with_padding(vocab: int, generator: torch.Generator):
    lengths = [24, 17, 9]
    width = 24
    input_ids = torch.zeros(3, width, dtype=torch.long)
    token_type_ids = torch.zeros_like(input_ids)
    attention_mask = torch.zeros_like(input_ids)
    positions = []
    for i, n in enumerate(lengths):
        input_ids[i, :n] = torch.randint(5, vocab, (n,), generator=generator)
        token_type_ids[i, n // 2:n] = 1
        attention_mask[i, :n] = 1
        chosen = torch.randperm(n - 1, generator=generator)[: max(1, n // 6)] + 1
        positions.append(chosen.sort().values + i * width)
    positions = torch.cat(positions)
    return input_ids, token_type_ids, attention_mask, positions


def test_last_layer_at_read_positions_equals_the_full_encoder():
    torch.manual_seed(0)
    model = from_scratch(Architecture(64, 3, 4, 128, 64), 100, 0).eval()
    input_ids, token_type_ids, attention_mask, positions = batch_with_padding(100, torch.Generator().manual_seed(1))
    with torch.no_grad():
        masked, cls, extra, _ = model.encode_read_positions(input_ids, token_type_ids, attention_mask, positions)
        assert extra is None
        full = model.bert(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
    flat = full.last_hidden_state.reshape(-1, 64)
    torch.testing.assert_close(masked, flat[positions], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cls, full.last_hidden_state[:, 0], atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        output = model(input_ids, token_type_ids, attention_mask, positions, input_ids.view(-1)[positions],
                       relation=torch.tensor([0, 1, 2]))
    torch.testing.assert_close(output.drp_logits, model.cls.document_relation(full.pooler_output),
                               atol=1e-5, rtol=1e-5)
    dense_logits = model.cls.predictions(flat[positions])
    torch.testing.assert_close(output.mlm_logits, dense_logits, atol=1e-4, rtol=1e-4)
    expected = F.cross_entropy(dense_logits, input_ids.view(-1)[positions]) + F.cross_entropy(
        output.drp_logits, torch.tensor([0, 1, 2]))
    torch.testing.assert_close(output.loss, expected, atol=1e-5, rtol=1e-5)


def test_gradients_match_the_full_encoder():
    torch.manual_seed(0)
    sparse = from_scratch(Architecture(32, 2, 2, 64, 64), 50, 0).train()
    set_dropout(sparse, hidden=0.0, attention=0.0)
    dense = LinkBertForPreTraining(sparse.config)
    dense.load_state_dict(sparse.state_dict())
    dense.train()
    input_ids, token_type_ids, attention_mask, positions = batch_with_padding(50, torch.Generator().manual_seed(2))
    labels = input_ids.view(-1)[positions]
    sparse(input_ids, token_type_ids, attention_mask, positions, labels).loss.backward()
    hidden = dense.bert(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
    F.cross_entropy(dense.cls.predictions(hidden.last_hidden_state.reshape(-1, 32)[positions]), labels).backward()
    for (name, a), (_, b) in zip(sparse.named_parameters(), dense.named_parameters()):
        if "pooler" in name or "document_relation" in name:
            continue
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_span_boundaries_of_runs_of_masked_positions():
    # Row width 20: spans 3-5 and 9 in row 0, 21-22 (row 1, next to its [CLS] at 20).
    left, right, offset = span_boundaries(torch.tensor([3, 4, 5, 9, 21, 22]))
    assert left.tolist() == [2, 2, 2, 8, 20, 20]
    assert right.tolist() == [6, 6, 6, 10, 23, 23]
    assert offset.tolist() == [0, 1, 2, 0, 0, 1]


def test_span_boundary_head_reads_the_encoder_at_the_boundaries():
    torch.manual_seed(0)
    model = from_scratch(Architecture(32, 2, 2, 64, 64), 60, 0).eval()
    enable_sbo(model)
    assert model.config.linkbert_sbo and model.cls.span_boundary is not None
    input_ids, token_type_ids, attention_mask, _ = batch_with_padding(60, torch.Generator().manual_seed(3))
    positions = torch.tensor([2, 3, 4, 10, 24 + 5, 24 + 6, 48 + 3])
    labels = input_ids.view(-1)[positions]
    with torch.no_grad():
        output = model(input_ids, token_type_ids, attention_mask, positions, labels)
        hidden = model.bert(input_ids=input_ids, token_type_ids=token_type_ids,
                            attention_mask=attention_mask).last_hidden_state.reshape(-1, 32)
        left = torch.tensor([1, 1, 1, 9, 28, 28, 50])
        right = torch.tensor([5, 5, 5, 11, 31, 31, 52])
        offset = torch.tensor([0, 1, 2, 0, 0, 1, 0])
        head = model.cls.span_boundary
        h = torch.cat([hidden[left], hidden[right], head.position_embeddings(offset)], -1)
        h = head.norm2(F.gelu(head.dense2(head.norm1(F.gelu(head.dense1(h))))))
        logits = h @ model.bert.embeddings.word_embeddings.weight.T + head.bias
    expected_sbo = F.cross_entropy(logits, labels)
    torch.testing.assert_close(output.sbo_loss, expected_sbo, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(output.loss, output.mlm_loss + expected_sbo, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", ["mlm+drp", "no-drp", "sbo"])
def test_flops_counted_equal_an_independent_count(variant):
    """The FLOPs the model reports for a step equal torch's FlopCounterMode count of the same step.

    Dropout stays on, so SDPA takes its math path, whose matmuls the counter sees."""
    torch.manual_seed(0)
    model = from_scratch(Architecture(64, 3, 4, 96, 64), 300, 0).train()
    relation, drp_weight = torch.tensor([0, 1, 2]), 1.0
    if variant == "no-drp":
        for module in (model.bert.pooler, model.cls.document_relation):
            module.requires_grad_(False)
        drp_weight = 0.0
    if variant == "sbo":
        enable_sbo(model)
    input_ids, token_type_ids, attention_mask, positions = batch_with_padding(300, torch.Generator().manual_seed(4))
    counter = FlopCounterMode(display=False)
    with counter:
        output = model(input_ids, token_type_ids, attention_mask, positions, input_ids.view(-1)[positions],
                       relation=relation, drp_weight=drp_weight)
        output.loss.backward()
    assert output.flops == counter.get_total_flops()
