"""Question/context windows cut by a Rust ``tokenizers.Tokenizer`` without transformers' wrapper.

``AutoTokenizer`` costs a cold start ~2 s for e5's 17 MB ``tokenizer.json`` (it parses the file
twice) and wrapping an already-loaded Rust tokenizer costs a deep copy (~1.3 s). The reader
only needs what transformers' fast tokenizer does underneath: set truncation (``only_second``,
with a stride) on the Rust tokenizer, encode the pairs, and take each encoding followed by its
overflowing windows. :class:`PairTokenizer` does that on the Rust tokenizer directly, so the
compact reader loads its base model's tokenizer with
:func:`embeddings.bert_folder.load_tokenizer` (~0.6 s) wherever transformers would run that file
unchanged (the same :class:`~embeddings.shared_tokenizer.SharedTokenizer` the embedding model
uses, parsed once), and falls back to ``AutoTokenizer`` elsewhere.
``tests/test_pair_tokenizer.py`` checks that both cut the same windows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from embeddings.shared_tokenizer import SharedTokenizer


class PairTokenizer:
    """The reader's view of a Rust tokenizer: pair windows, question clipping, the pad id.

    The Rust tokenizer holds its truncation settings as state, so each call sets them inside
    :meth:`SharedTokenizer.configured` (as transformers' wrapper sets them on every call, but
    under the lock the embedding model shares); encoding itself runs in Rust.

    Args:
        tokenizer: a :class:`SharedTokenizer`, or a ``tokenizers.Tokenizer`` nobody else uses.
        pad_token_id: the id that pads a batch of windows to one width.
    """

    def __init__(self, tokenizer: Any, pad_token_id: int) -> None:
        if not isinstance(tokenizer, SharedTokenizer):
            tokenizer = SharedTokenizer(tokenizer)
        self._tokenizer = tokenizer
        self.pad_token_id = pad_token_id

    @property
    def shared(self) -> SharedTokenizer:
        """The Rust tokenizer underneath, for checks of what it is (use it only under its lock)."""
        return self._tokenizer

    @classmethod
    def from_folder(cls, directory: Path, tokenizer: Any) -> PairTokenizer:
        """``tokenizer`` (loaded from ``directory``) with the pad token its config names."""
        try:
            config = json.loads((directory / "tokenizer_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = {}
        pad = config.get("pad_token")
        pad = pad.get("content") if isinstance(pad, dict) else pad
        pad_id = tokenizer.token_to_id(pad) if isinstance(pad, str) else None
        if pad_id is None:
            raise ValueError(f"{directory} names no pad token that its tokenizer.json knows")
        return cls(tokenizer, pad_id)

    def question_cut(self, question: str, max_tokens: int) -> str:
        """``question`` cut after its first ``max_tokens`` tokens (no special tokens counted)."""
        with self._tokenizer.configured(None) as tokenizer:
            encoding = tokenizer.encode(question, add_special_tokens=False)
        if len(encoding.ids) <= max_tokens:
            return question
        return question[: encoding.offsets[max_tokens - 1][1]]

    def pair_windows(
        self, questions: list[str], contexts: list[str], *, max_length: int, stride: int
    ) -> tuple[list[Any], list[int]]:
        """The windows of each pair as Rust encodings, and the pair each window came from."""
        with self._tokenizer.configured(
            max_length, stride=stride, strategy="only_second"
        ) as tokenizer:
            encodings = tokenizer.encode_batch(
                list(zip(questions, contexts, strict=True)), add_special_tokens=True
            )
        windows: list[Any] = []
        pairs: list[int] = []
        for i, encoding in enumerate(encodings):
            for window in (encoding, *encoding.overflowing):
                windows.append(window)
                pairs.append(i)
        return windows, pairs
