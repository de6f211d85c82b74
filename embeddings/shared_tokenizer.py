"""One Rust tokenizer per ``tokenizer.json`` in a process, shared by every model that reads it.

The embedding model and the reader are both built on multilingual-e5: the same 17 MB
``tokenizer.json``, which takes ~0.6 s to parse on two cores (holding the GIL, so a second load
in a thread does not overlap the first). A Rust tokenizer keeps its truncation and padding as
state, so sharing one needs a rule: every use sets the state it needs and encodes under the
tokenizer's lock (:meth:`SharedTokenizer.configured`). Setting that state costs microseconds;
encoding a question costs ~0.1 ms, so callers waiting for each other cost nothing a user sees.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["SharedTokenizer", "shared_tokenizer"]

_OPENED: dict[str, tuple[tuple[int, int], SharedTokenizer]] = {}
"""Per resolved path: the file's (modification time, size) when loaded, and its tokenizer."""
_OPENING = threading.Lock()


class SharedTokenizer:
    """A ``tokenizers.Tokenizer`` and the lock under which its state is set and used.

    Args:
        tokenizer: the Rust tokenizer; nobody may use it outside :meth:`configured`.
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._lock = threading.Lock()

    @property
    def post_processor(self) -> Any:
        return self._tokenizer.post_processor

    def token_to_id(self, token: str) -> int | None:
        return self._tokenizer.token_to_id(token)

    def added_tokens(self) -> set[str]:
        """The contents of the tokenizer's added (special) tokens."""
        return {token.content for token in self._tokenizer.get_added_tokens_decoder().values()}

    @contextmanager
    def configured(
        self, max_length: int | None = None, *, stride: int = 0, strategy: str = "longest_first"
    ) -> Iterator[Any]:
        """The tokenizer, unpadded and truncated at ``max_length`` tokens (``None``: not
        truncated), for the duration of the block; nobody else uses it meanwhile."""
        with self._lock:
            tokenizer = self._tokenizer
            tokenizer.no_padding()
            if max_length is None:
                tokenizer.no_truncation()
            else:
                tokenizer.enable_truncation(
                    max_length, stride=stride, strategy=strategy, direction="right"
                )
            yield tokenizer


def shared_tokenizer(path: Path) -> SharedTokenizer:
    """The process's :class:`SharedTokenizer` for the ``tokenizer.json`` at ``path``, loaded
    on first use; a file changed on disk since (other size or modification time) loads anew.

    Raises whatever ``tokenizers`` raises for a file it cannot read.
    """
    from tokenizers import Tokenizer

    stat = path.stat()
    where, stamp = str(path.resolve()), (stat.st_mtime_ns, stat.st_size)
    with _OPENING:
        known = _OPENED.get(where)
        if known is not None and known[0] == stamp:
            return known[1]
        opened = SharedTokenizer(Tokenizer.from_file(str(path)))
        _OPENED[where] = (stamp, opened)  # a changed file's old tokenizer goes with its users
        return opened
