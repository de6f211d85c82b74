"""A small LRU of answered questions, so a repeated question skips retrieval and reading.

Staff ask the same few questions again and again, and the reader is most of an answer's cost.
A cached response is only valid for the index and reader that produced it, so the cache
remembers *which* objects it was filled for and empties itself the moment any of them is
replaced (a rebuilt dense index, a new passage list, another reader). Identity is checked with
``is`` against strong references, never with ``id()``, whose numbers are reused after garbage
collection.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Hashable

from .schema import Response

logger = logging.getLogger(__name__)

_SPACE = re.compile(r"\s+")
_TRAILING = "?？!！。.,，;；:：~～ "


def normalise_question(question: str) -> str:
    """The cache key of a question: NFKC, case-folded, spaces collapsed, end punctuation cut.

    "年假几天？", "年假几天?" and " 年假几天 " are one question. Spaces between two Chinese
    characters are dropped (Chinese is written without them); elsewhere a run of spaces becomes
    one, so English "a bc" and "ab c" stay different questions.
    """
    text = unicodedata.normalize("NFKC", question).casefold()
    text = _SPACE.sub(" ", text).strip().rstrip(_TRAILING).strip()
    return re.sub(r"(?<=[\u3400-\u9fff]) (?=[\u3400-\u9fff])", "", text)


class AnswerCache:
    """Thread-safe LRU of ``Response`` objects keyed by normalised question and ``top_k``.

    Args:
        size: how many responses to keep; 0 turns the cache off.
    """

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"cache size must be 0 or more, got {size}")
        self.size = size
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[Hashable, Response] = OrderedDict()
        self._owners: tuple[object, ...] = ()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable, owners: tuple[object, ...]) -> Response | None:
        """The cached response for ``key``, if it was made by exactly these ``owners``."""
        if self.size == 0:
            return None
        with self._lock:
            self._check_owners(owners)
            response = self._items.get(key)
            if response is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return response

    def put(self, key: Hashable, owners: tuple[object, ...], response: Response) -> None:
        """Remember ``response``; drops the least recently used entry when full."""
        if self.size == 0:
            return
        with self._lock:
            self._check_owners(owners)
            self._items[key] = response
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._owners = ()

    def _check_owners(self, owners: tuple[object, ...]) -> None:
        same = len(owners) == len(self._owners) and all(
            a is b for a, b in zip(owners, self._owners, strict=True)
        )
        if not same:
            if self._items:
                logger.info("index or reader changed; dropping %d cached answers", len(self._items))
            self._items.clear()
            self._owners = owners
