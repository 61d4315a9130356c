import torch
import torch.nn.functional as F

from linkbert.train.model import LinkBertForPreTraining, from_scratch, set_dropout
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
        masked, cls = model.encode_read_positions(input_ids, token_type_ids, attention_mask, positions)
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
