"""The LinkBERT pretraining model: a ``transformers`` BERT encoder, an MLM head tied to the input
embeddings and evaluated only at the masked positions, and a 3-way document relation (DRP) head on the
pooled ``[CLS]``.

The parameter names follow ``BertForPreTraining`` (``bert.*``, ``cls.predictions.*``) so that a saved
model loads as ``AutoModel`` / ``AutoModelForMaskedLM``; the DRP head is ``cls.document_relation``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertModel, BertPreTrainedModel
from transformers.masking_utils import create_bidirectional_mask
from transformers.models.bert.modeling_bert import (
    BertLMPredictionHead,
    BertSelfAttention,
)

from linkbert.train.presets import Architecture

RELATIONS = ("contiguous", "random", "linked")


@dataclass
class PretrainingOutput:
    loss: torch.Tensor
    mlm_loss: torch.Tensor
    drp_loss: torch.Tensor | None
    mlm_logits: torch.Tensor  # [M, vocab] at the masked positions only
    drp_logits: torch.Tensor  # [B, 3]


class LinkBertHeads(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)
        self.document_relation = nn.Linear(config.hidden_size, len(RELATIONS))


class LinkBertForPreTraining(BertPreTrainedModel):
    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=True)
        self.cls = LinkBertHeads(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings):
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        mlm_positions: torch.Tensor,
        mlm_labels: torch.Tensor,
        relation: torch.Tensor | None = None,
        drp_weight: float = 1.0,
    ) -> PretrainingOutput:
        masked_hidden, cls_hidden = self.encode_read_positions(input_ids, token_type_ids, attention_mask, mlm_positions)
        mlm_logits = self.cls.predictions(masked_hidden)
        mlm_loss = F.cross_entropy(mlm_logits.float(), mlm_labels)
        pooled = self.bert.pooler.activation(self.bert.pooler.dense(cls_hidden))
        drp_logits = self.cls.document_relation(pooled)
        drp_loss = None
        loss = mlm_loss
        if relation is not None and drp_weight:
            drp_loss = F.cross_entropy(drp_logits.float(), relation)
            loss = mlm_loss + drp_weight * drp_loss
        return PretrainingOutput(loss, mlm_loss, drp_loss, mlm_logits, drp_logits)

    def encode_read_positions(self, input_ids, token_type_ids, attention_mask, mlm_positions):
        """Final hidden states at the masked positions ([M, H]) and at each [CLS] ([B, H]).

        Pretraining reads only these rows, so the MLM head runs on them alone and the last layer computes
        its queries, attention output and feed-forward for them alone (keys and values still cover the
        whole sequence): the same values as the full encoder at those rows, for less work.
        """
        bert = self.bert
        hidden = bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        mask = create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=attention_mask)
        for layer in bert.encoder.layer[:-1]:
            hidden = layer(hidden, mask)
        batch, length, width = hidden.shape
        rows = torch.cat([torch.arange(batch, device=hidden.device) * length, mlm_positions])
        out = self._last_layer_at(bert.encoder.layer[-1], hidden, rows, attention_mask)
        return out[batch:], out[:batch]

    def _last_layer_at(self, layer, hidden: torch.Tensor, rows: torch.Tensor, attention_mask: torch.Tensor | None):
        """``layer`` applied to ``hidden`` [B, T, H], evaluated only at the flat positions ``rows``."""
        batch, length, width = hidden.shape
        attention = layer.attention.self
        heads, head_size = attention.num_attention_heads, attention.attention_head_size
        keys = attention.key(hidden).view(batch, length, heads, head_size).transpose(1, 2)
        values = attention.value(hidden).view(batch, length, heads, head_size).transpose(1, 2)
        flat = hidden.reshape(-1, width)
        inputs = flat.index_select(0, rows)
        # Queries padded per sequence: slot = rank of the row among its sequence's rows.
        sequence = torch.div(rows, length, rounding_mode="floor")
        counts = torch.bincount(sequence, minlength=batch)
        order = torch.argsort(sequence, stable=True)
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.empty_like(rows)
        slot[order] = torch.arange(rows.numel(), device=rows.device) - starts[sequence[order]]
        queries = hidden.new_zeros(batch, int(counts.max()), width)
        queries[sequence, slot] = attention.query(inputs)
        queries = queries.view(batch, -1, heads, head_size).transpose(1, 2)
        key_mask = None
        if attention_mask is not None:
            key_mask = attention_mask[:, None, None, :].to(torch.bool)
        context = F.scaled_dot_product_attention(
            queries, keys, values, attn_mask=key_mask, scale=attention.scaling,
            dropout_p=attention.dropout.p if self.training else 0.0)
        context = context.transpose(1, 2).reshape(batch, -1, width)[sequence, slot]
        attended = layer.attention.output(context, inputs)
        return layer.output(layer.intermediate(attended), attended)


def from_scratch(architecture: Architecture, vocab_size: int, pad_token_id: int) -> LinkBertForPreTraining:
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=architecture.hidden_size,
        num_hidden_layers=architecture.num_hidden_layers,
        num_attention_heads=architecture.num_attention_heads,
        intermediate_size=architecture.intermediate_size,
        max_position_embeddings=architecture.max_position_embeddings,
        pad_token_id=pad_token_id,
        type_vocab_size=2,
    )
    config._attn_implementation = "sdpa"
    return LinkBertForPreTraining(config)


def from_checkpoint(path: str, vocab_size: int) -> LinkBertForPreTraining:
    """Continue from a local BERT checkpoint (``BertModel``, ``BertForPreTraining``, or a LinkBERT export)."""
    import transformers

    if not os.path.isdir(path):
        raise ValueError(f"--init {path}: no such directory (checkpoints are read from local paths only)")
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the new heads' "newly initialized" notice is expected
    try:
        model = LinkBertForPreTraining.from_pretrained(path, attn_implementation="sdpa", local_files_only=True)
    except OSError as exc:
        raise ValueError(f"--init {path}: not a loadable BERT checkpoint ({exc})") from exc
    finally:
        transformers.logging.set_verbosity(verbosity)
    if model.config.model_type != "bert":
        raise ValueError(f"--init {path}: model_type {model.config.model_type!r} is not bert")
    if model.config.vocab_size != vocab_size:
        raise ValueError(
            f"--init {path}: the checkpoint has a {model.config.vocab_size}-token vocabulary but the tokenizer has "
            f"{vocab_size}; the shards must be tokenized with the checkpoint's vocabulary"
        )
    return model


def set_dropout(model: nn.Module, hidden: float | None = None, attention: float | None = None) -> None:
    """Override BERT's hidden-state and attention-probability dropout (None keeps the config's)."""
    for name, value in (("hidden", hidden), ("attention", attention)):
        if value is not None and not 0.0 <= value < 1.0:
            raise ValueError(f"{name} dropout must be in [0, 1), got {value}")
    if hidden is not None:
        model.config.hidden_dropout_prob = hidden
    if attention is not None:
        model.config.attention_probs_dropout_prob = attention
    for module in model.modules():
        if isinstance(module, BertSelfAttention):
            if attention is not None:
                module.dropout.p = attention
        elif hidden is not None:
            for child in module.children():
                if isinstance(child, nn.Dropout):
                    child.p = hidden


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_token(config: BertConfig, seq_len: int, num_parameters: int) -> float:
    """Training FLOPs per token, as nanoGPT estimates them: 6N for the weights plus 12·L·H·T for attention."""
    non_position = num_parameters - config.max_position_embeddings * config.hidden_size
    return 6 * non_position + 12 * config.num_hidden_layers * config.hidden_size * seq_len
