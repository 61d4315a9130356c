"""The LinkBERT pretraining model: a ``transformers`` BERT encoder, an MLM head tied to the input
embeddings and evaluated only at the masked positions, and a 3-way document relation (DRP) head on the
pooled ``[CLS]``; optionally (``--sbo``) SpanBERT's span boundary objective head.

The parameter names follow ``BertForPreTraining`` (``bert.*``, ``cls.predictions.*``) so that a saved
model loads as ``AutoModel`` / ``AutoModelForMaskedLM``; the DRP head is ``cls.document_relation`` and
the span boundary head ``cls.span_boundary`` (both ignored by the standard classes).
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
    sbo_loss: torch.Tensor | None = None
    flops: float = 0.0  # matmul FLOPs of this forward + backward, as ``training_flops`` counts them


class SpanBoundaryHead(nn.Module):
    """SpanBERT's span boundary objective (Joshi et al. 2020, §3.2): each token x_i of a masked span
    (s, e) is predicted from the encoder outputs at the boundary tokens x_{s-1}, x_{e+1} and a
    relative position embedding p_{i-s+1}, through a 2-layer feed-forward net with GeLU and layer
    norm, and the output embeddings (tied to the input word embeddings, as the MLM head)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        width = config.hidden_size
        self.position_embeddings = nn.Embedding(config.linkbert_sbo_positions, width)
        self.dense1 = nn.Linear(3 * width, width)
        self.norm1 = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.dense2 = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, left: torch.Tensor, right: torch.Tensor, offset: torch.Tensor,
                output_embeddings: torch.Tensor) -> torch.Tensor:
        offset = offset.clamp(max=self.position_embeddings.num_embeddings - 1)
        hidden = torch.cat([left, right, self.position_embeddings(offset)], dim=-1)
        hidden = self.norm1(F.gelu(self.dense1(hidden)))
        hidden = self.norm2(F.gelu(self.dense2(hidden)))
        return F.linear(hidden, output_embeddings, self.bias)


def span_boundaries(positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For sorted flat masked positions: each one's span's left and right boundary positions and its
    offset in the span. A span is a maximal run of consecutive masked positions, so abutting masked
    spans count as one; [CLS] and [SEP] are never masked, so a run never leaves its segment and its
    boundaries are real positions of the same sequence."""
    starts = torch.ones_like(positions, dtype=torch.bool)
    starts[1:] = positions[1:] != positions[:-1] + 1
    ends = torch.ones_like(starts)
    ends[:-1] = starts[1:]
    run = torch.cumsum(starts, 0) - 1
    first, last = positions[starts], positions[ends]
    return first[run] - 1, last[run] + 1, positions - first[run]


def enable_sbo(model: "LinkBertForPreTraining", positions: int = 32) -> None:
    """Give ``model`` a freshly initialised span boundary head (a no-op if it has one)."""
    if getattr(model.cls, "span_boundary", None) is not None:
        return
    model.config.linkbert_sbo = True
    model.config.linkbert_sbo_positions = getattr(model.config, "linkbert_sbo_positions", positions)
    head = SpanBoundaryHead(model.config).to(model.bert.embeddings.word_embeddings.weight.device)
    head.apply(model._init_weights)
    head.bias.data.zero_()
    model.cls.span_boundary = head


def disable_sbo(model: "LinkBertForPreTraining") -> None:
    model.config.linkbert_sbo = False
    model.cls.span_boundary = None


class LinkBertHeads(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)
        self.document_relation = nn.Linear(config.hidden_size, len(RELATIONS))
        self.span_boundary = SpanBoundaryHead(config) if getattr(config, "linkbert_sbo", False) else None


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
        """``mlm_positions`` are flat indices into the [B*T] positions, in increasing order."""
        sbo = self.cls.span_boundary
        extra = None
        if sbo is not None:
            left, right, offset = span_boundaries(mlm_positions)
            extra = torch.cat([left, right])
        masked_hidden, cls_hidden, extra_hidden, query_slots = self.encode_read_positions(
            input_ids, token_type_ids, attention_mask, mlm_positions, extra)
        mlm_logits = self.cls.predictions(masked_hidden)
        mlm_loss = F.cross_entropy(mlm_logits.float(), mlm_labels)
        pooled = self.bert.pooler.activation(self.bert.pooler.dense(cls_hidden))
        drp_logits = self.cls.document_relation(pooled)
        drp_loss = sbo_loss = None
        loss = mlm_loss
        if relation is not None and drp_weight:
            drp_loss = F.cross_entropy(drp_logits.float(), relation)
            loss = mlm_loss + drp_weight * drp_loss
        if sbo is not None:
            count = mlm_positions.numel()
            sbo_logits = sbo(extra_hidden[:count], extra_hidden[count:], offset,
                             self.bert.embeddings.word_embeddings.weight)
            sbo_loss = F.cross_entropy(sbo_logits.float(), mlm_labels)
            loss = loss + sbo_loss  # SpanBERT sums the two objectives
        batch, length = input_ids.shape
        flops = training_flops(self.config, batch, length, last_layer_rows=batch + mlm_positions.numel() + (
            0 if extra is None else extra.numel()), query_slots=query_slots, masked=mlm_positions.numel(),
            sbo_targets=0 if sbo is None else mlm_positions.numel(),
            drp_backward=drp_loss is not None and self.cls.document_relation.weight.requires_grad)
        return PretrainingOutput(loss, mlm_loss, drp_loss, mlm_logits, drp_logits, sbo_loss, flops)

    def encode_read_positions(self, input_ids, token_type_ids, attention_mask, mlm_positions, extra_rows=None):
        """Final hidden states at the masked positions ([M, H]), at each [CLS] ([B, H]) and at the flat
        positions ``extra_rows`` ([E, H], or None), and the query slots the last layer's attention ran.

        Pretraining reads only these rows, so the MLM head runs on them alone and the last layer computes
        its queries, attention output and feed-forward for them alone (keys and values still cover the
        whole sequence): the same values as the full encoder at those rows, for less work.
        """
        bert = self.bert
        hidden = bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        # Positional: the embeddings argument was renamed (input_embeds -> inputs_embeds) within transformers 5.
        mask = create_bidirectional_mask(self.config, hidden, attention_mask)
        for layer in bert.encoder.layer[:-1]:
            hidden = layer(hidden, mask)
        batch, length, width = hidden.shape
        rows = [torch.arange(batch, device=hidden.device) * length, mlm_positions]
        if extra_rows is not None:
            rows.append(extra_rows)
        out, query_slots = self._last_layer_at(bert.encoder.layer[-1], hidden, torch.cat(rows), attention_mask)
        read = batch + mlm_positions.numel()
        return out[batch:read], out[:batch], (None if extra_rows is None else out[read:]), query_slots

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
        return layer.output(layer.intermediate(attended), attended), batch * int(counts.max())


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


def dense_flops_per_token(config: BertConfig, seq_len: int, num_parameters: int) -> float:
    """The usual dense estimate (nanoGPT's): 6N for the weights plus 12·L·H·T for attention. It counts the
    MLM head and the whole last layer at every position, which this model does not compute: use it only for
    "dense-equivalent" throughput, comparable with models that do."""
    non_position = num_parameters - config.max_position_embeddings * config.hidden_size
    return 6 * non_position + 12 * config.num_hidden_layers * config.hidden_size * seq_len


def training_flops(config: BertConfig, batch: int, length: int, last_layer_rows: int, query_slots: int, masked: int,
                   sbo_targets: int = 0, drp_backward: bool = True) -> float:
    """Matmul FLOPs of one forward and backward pass as ``LinkBertForPreTraining`` performs it on a
    [batch, length] micro-batch (padding included): every layer but the last over all positions; the last
    layer's keys and values over all positions, its queries, attention output and feed-forward over the
    ``last_layer_rows`` it reads ([CLS], masked positions, span boundaries), its attention over the
    ``query_slots`` it pads those rows to; the MLM head (and the SBO head) at the ``masked`` positions; the
    pooler and DRP head at [CLS]. Backward costs twice the forward (input and weight gradients), and
    nothing for the relation head when it is frozen. Element-wise work (softmax, GeLU, layer norm) is not
    counted, as no MFU figure counts it."""
    hidden, inner, layers, vocab = config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.vocab_size
    positions = batch * length
    projections = 2 * (4 * hidden * hidden + 2 * hidden * inner)  # Q, K, V, O and the two FFN matrices, per row
    attention = 4 * length * hidden  # Q·Kᵀ and P·V for one query over `length` keys
    forward = (layers - 1) * positions * (projections + attention)
    forward += positions * 2 * (2 * hidden * hidden)  # last layer: K and V everywhere
    forward += last_layer_rows * (projections - 2 * (2 * hidden * hidden)) + query_slots * attention
    forward += masked * 2 * (hidden * hidden + hidden * vocab)  # MLM transform and decoder
    forward += sbo_targets * 2 * (3 * hidden * hidden + hidden * hidden + hidden * vocab)
    relation_head = batch * 2 * (hidden * hidden + hidden * len(RELATIONS))
    return float(3 * forward + relation_head * (3 if drp_backward else 1))
