"""Question/context windows cut by a Rust ``tokenizers.Tokenizer`` without transformers' wrapper.

``AutoTokenizer`` costs a cold start ~2 s for e5's 17 MB ``tokenizer.json`` (it parses the file
twice) and wrapping an already-loaded Rust tokenizer costs a deep copy (~1.3 s). The reader
only needs what transformers' fast tokenizer does underneath: set truncation (``only_second``,
with a stride) on the Rust tokenizer, encode the pairs, and take each encoding followed by its
overflowing windows. :class:`PairTokenizer` does that on the Rust tokenizer directly, so the
compact reader loads its base model's tokenizer with
:func:`embeddings.bert_folder.load_tokenizer` (~0.6 s) wherever transformers would run that file
unchanged, and falls back to ``AutoTokenizer`` elsewhere. ``tests/test_pair_tokenizer.py``
checks that both cut the same windows.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any


class PairTokenizer:
    """The reader's view of a Rust tokenizer: pair windows, question clipping, the pad id.

    The Rust tokenizer holds its truncation settings as state, so each call sets them under a
    lock (as transformers' wrapper sets them on every call, without one); encoding itself runs
    in Rust, outside the GIL.

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` used by nobody else (its truncation is changed).
        pad_token_id: the id that pads a batch of windows to one width.
    """

    def __init__(self, tokenizer: Any, pad_token_id: int) -> None:
        self.backend_tokenizer = tokenizer
        self.pad_token_id = pad_token_id
        self._lock = threading.Lock()

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
        with self._lock:
            self.backend_tokenizer.no_truncation()
            self.backend_tokenizer.no_padding()
            encoding = self.backend_tokenizer.encode(question, add_special_tokens=False)
        if len(encoding.ids) <= max_tokens:
            return question
        return question[: encoding.offsets[max_tokens - 1][1]]

    def pair_windows(
        self, questions: list[str], contexts: list[str], *, max_length: int, stride: int
    ) -> tuple[list[Any], list[int]]:
        """The windows of each pair as Rust encodings, and the pair each window came from."""
        with self._lock:
            self.backend_tokenizer.no_padding()
            self.backend_tokenizer.enable_truncation(
                max_length, stride=stride, strategy="only_second", direction="right"
            )
            encodings = self.backend_tokenizer.encode_batch(
                list(zip(questions, contexts, strict=True)), add_special_tokens=True
            )
        windows: list[Any] = []
        pairs: list[int] = []
        for i, encoding in enumerate(encodings):
            for window in (encoding, *encoding.overflowing):
                windows.append(window)
                pairs.append(i)
        return windows, pairs
