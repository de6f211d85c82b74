"""Span logits on the lean BERT layers: the reader's windows packed, no padding multiplied.

The reader is a ``BertForQuestionAnswering`` of the same shape as the embedding model, and reads
3–4 windows of up to 256 tokens per question, of very different lengths (a question with a short
passage is ~60 tokens, one with a long one 256). transformers' forward pads every batch to its
longest window and re-lays out each weight matrix for oneDNN on every call.
:class:`LeanSpanScorer` runs the same weights through :class:`embeddings.lean.LeanBert`: weights
packed once, every Linear on the real tokens only, attention alone on the padded grid; then the
``qa_outputs`` layer on each token. The logits are transformers' to the last bits of the
products (tested), so answers and calibration do not change.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from embeddings.lean import LeanBert, bert_unsupported_reason, packed_linear

from .pair_tokenizer import PairTokenizer

logger = logging.getLogger(__name__)

READER_ENGINES: tuple[str, ...] = ("lean", "torch")


def unsupported_reason(model: Any, tokenizer: Any) -> str | None:
    """Why the lean layers cannot reproduce ``model``'s logits, or ``None`` if they can."""
    if type(model).__name__ not in ("BertForQuestionAnswering", "PlainBertForQuestionAnswering"):
        return f"{type(model).__name__} is not a BertForQuestionAnswering"
    outputs = getattr(model.qa_outputs, "out_features", None)
    if outputs != 2:
        return f"qa_outputs gives {outputs} scores per token, not start and end"
    if isinstance(tokenizer, PairTokenizer):
        tokenizer = tokenizer.shared
    return bert_unsupported_reason(model.bert, tokenizer)


class LeanSpanScorer:
    """Start and end logits of token id windows. Thread-safe (the packed weights are read only).

    Args:
        model: the loaded reader model, already prepared for its precision.
        tokenizer: its fast tokenizer (checked, not used: windows arrive as ids).
    """

    def __init__(self, model: Any, tokenizer: Any) -> None:
        reason = unsupported_reason(model, tokenizer)
        if reason is not None:
            raise ValueError(f"the lean path cannot run this reader: {reason}")
        self._bert = LeanBert(model.bert)
        self._scores = packed_linear(model.qa_outputs)

    def logits(self, rows: list[list[int]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(start, end)`` float32 logits of each row of token ids, one value per token."""
        import torch

        with torch.inference_mode():
            scores = self._scores(self._bert.hidden(rows)).float().cpu().numpy()
        out = []
        at = 0
        for row in rows:
            part = scores[at : at + len(row)]
            out.append((np.ascontiguousarray(part[:, 0]), np.ascontiguousarray(part[:, 1])))
            at += len(row)
        return out
