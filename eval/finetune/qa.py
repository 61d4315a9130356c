"""Extractive QA as in the authors' ``src/qa`` (the HF ``run_qa.py`` recipe): question + context windows of
``max_seq_len`` tokens every ``doc_stride`` tokens, span start/end heads, and the n-best span post-processing
(n-best 20, answers of at most 30 tokens); SQuAD v1.1 EM/F1."""

from __future__ import annotations

import numpy as np

from linkbert.eval.finetune import metrics

N_BEST = 20
MAX_ANSWER_TOKENS = 30


class QaTask:
    family = "qa"
    outputs = ("start_logits", "end_logits")

    def __init__(self, splits: dict[str, list[dict]], metric: str | None = None, doc_stride: int = 128):
        self.metric = metric or "f1"
        if self.metric not in ("f1", "exact_match"):
            raise ValueError(f"--metric {metric}: QA reports f1 or exact_match")
        self.doc_stride = doc_stride

    def model(self, model_dir: str):
        from transformers import AutoModelForQuestionAnswering

        from linkbert.eval.finetune.tasks import load

        return load(AutoModelForQuestionAnswering, model_dir)

    def _encode(self, tokenizer, records, max_len):
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("extractive QA needs a fast tokenizer (tokenizer.json) for character offsets")
        if max_len - self.doc_stride < 16:
            raise ValueError(f"--max-seq-len {max_len} leaves too little room next to doc stride {self.doc_stride}")
        return tokenizer([r["question"].lstrip() for r in records], [r["context"] for r in records],
                         truncation="only_second", max_length=max_len, stride=self.doc_stride,
                         return_overflowing_tokens=True, return_offsets_mapping=True)

    def features(self, tokenizer, records: list[dict], max_len: int) -> list[dict]:
        encoded = self._encode(tokenizer, records, max_len)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
        feats = []
        for i, example in enumerate(encoded["overflow_to_sample_mapping"]):
            record = records[example]
            sequence = encoded.sequence_ids(i)
            offsets = encoded["offset_mapping"][i]
            start_char = record["answers"]["answer_start"][0]
            end_char = start_char + len(record["answers"]["text"][0])
            context = [j for j, s in enumerate(sequence) if s == 1]
            if not context:
                raise ValueError(f"question {record['id']!r} leaves no room for its context in {max_len} tokens")
            first, last = context[0], context[-1]
            start = end = 0  # [CLS] when the answer is not inside this window
            if offsets[first][0] <= start_char and offsets[last][1] >= end_char:
                start = first
                while start <= last and offsets[start][0] <= start_char:
                    start += 1
                start -= 1
                end = last
                while end >= first and offsets[end][1] >= end_char:
                    end -= 1
                end += 1
            feats.append({**{k: encoded[k][i] for k in keys}, "start_positions": start, "end_positions": end,
                          "_kind": "qa", "_example": example,
                          "_offsets": [o if s == 1 else None for o, s in zip(offsets, sequence)]})
        return feats

    def best_answers(self, records, features, outputs) -> dict[str, str]:
        by_example: dict[int, list[int]] = {}
        for i, feature in enumerate(features):
            by_example.setdefault(feature["_example"], []).append(i)
        answers = {}
        for example, indices in by_example.items():
            context = records[example]["context"]
            best, best_score = "", -np.inf
            for i in indices:
                start_logits, end_logits = outputs["start_logits"][i], outputs["end_logits"][i]
                offsets = features[i]["_offsets"]
                starts = np.argsort(start_logits)[-1:-N_BEST - 1:-1]
                ends = np.argsort(end_logits)[-1:-N_BEST - 1:-1]
                for s in starts:
                    for e in ends:
                        if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > MAX_ANSWER_TOKENS:
                            continue
                        score = start_logits[s] + end_logits[e]
                        if score > best_score:
                            best_score, best = score, context[offsets[s][0]:offsets[e][1]]
            answers[records[example]["id"]] = best
        for record in records:
            answers.setdefault(record["id"], "")
        return answers

    def evaluate(self, records, features, outputs) -> dict:
        predicted = self.best_answers(records, features, outputs)
        gold = {r["id"]: r["answers"]["text"] for r in records}
        return metrics.squad_scores(predicted, gold)
