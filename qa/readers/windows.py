"""Question + context windows: the one place where text becomes reader input.

Training and inference must cut windows the same way, or the model is asked at run time about
inputs it never saw. A context longer than the model's window is split with an overlap
(``stride`` tokens) so that an answer near a window edge is whole in at least one window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .pair_tokenizer import PairTokenizer


@dataclass(frozen=True)
class WindowBatch:
    """Token windows for several (question, context) pairs.

    ``offsets[w][t]`` is the (start, end) character span in the context of token ``t`` of window
    ``w``, or (-1, -1) for question and special tokens; ``context_index[w]`` says which input pair
    window ``w`` came from.
    """

    input_ids: list[list[int]]
    offsets: list[list[tuple[int, int]]]
    context_index: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)

    def padded(self, rows: list[int], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Input ids and attention mask of ``rows``, padded to the longest of them."""
        width = max(len(self.input_ids[r]) for r in rows)
        ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            seq = self.input_ids[r]
            ids[i, : len(seq)] = seq
            mask[i, : len(seq)] = 1
        return ids, mask


def make_windows(
    tokenizer,
    questions: list[str],
    contexts: list[str],
    *,
    max_length: int = 256,
    stride: int = 96,
    max_question_tokens: int = 64,
) -> WindowBatch:
    """Tokenise question/context pairs into overlapping windows with character offsets.

    ``tokenizer`` is a transformers fast tokenizer or a :class:`.pair_tokenizer.PairTokenizer`
    (the same windows, without transformers' wrapper).
    """
    if isinstance(tokenizer, PairTokenizer):
        questions = [tokenizer.question_cut(q, max_question_tokens) for q in questions]
        encodings, pairs = tokenizer.pair_windows(
            questions, contexts, max_length=max_length, stride=stride
        )
    else:
        questions = [_clip_question(tokenizer, q, max_question_tokens) for q in questions]
        enc = tokenizer(
            questions,
            contexts,
            truncation="only_second",
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=False,
        )
        encodings, pairs = enc.encodings, list(enc["overflow_to_sample_mapping"])
    input_ids: list[list[int]] = []
    offsets: list[list[tuple[int, int]]] = []
    for encoding in encodings:
        offsets.append(
            [
                (int(s), int(e)) if sid == 1 and e > s else (-1, -1)
                for sid, (s, e) in zip(encoding.sequence_ids, encoding.offsets, strict=True)
            ]
        )
        input_ids.append(list(encoding.ids))
    return WindowBatch(input_ids=input_ids, offsets=offsets, context_index=[int(i) for i in pairs])


def _clip_question(tokenizer, question: str, max_tokens: int) -> str:
    """Cut an over-long question to its first ``max_tokens`` tokens (its head holds the ask)."""
    enc = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
    if len(enc["input_ids"]) <= max_tokens:
        return question
    return question[: enc["offset_mapping"][max_tokens - 1][1]]


def answer_token_span(
    offsets: list[tuple[int, int]], char_start: int, char_end: int
) -> tuple[int, int] | None:
    """Token indices (inclusive) covering characters [char_start, char_end) in one window.

    Returns None when the answer is not wholly inside the window's context tokens.
    """
    start_tok = end_tok = None
    first = last = None
    for t, (s, e) in enumerate(offsets):
        if s < 0:
            continue
        if first is None:
            first = s
        last = e
        if start_tok is None and s <= char_start < e:
            start_tok = t
        if start_tok is None and s > char_start:
            start_tok = t  # answer starts inside whitespace swallowed by the tokenizer
        if s < char_end <= e or (s < char_end and e >= char_end):
            end_tok = t
            break
    if first is None or start_tok is None or end_tok is None:
        return None
    if char_start < first or char_end > last or end_tok < start_tok:
        return None
    return start_tok, end_tok
