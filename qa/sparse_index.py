"""BM25 over the passages: built once (tokenised in parallel when the corpus is big), saved
beside the dense index and memory-mapped when the index is opened again.

Rebuilding BM25 on every start is free for a few thousand passages and ruinous for a million:
jieba reads about 0.2-0.3 million characters a second per core, so a corpus of a million
passages took a quarter of an hour before the first answer, and held every token as a Python
string while it did. So the index folder keeps the BM25 matrix (``bm25/``, bm25s' own format),
opened with ``mmap`` so that only the rows a query touches are paged in, and a folder saved
before this existed, or with another tokeniser, falls back to a rebuild with a log line.

Tokens are turned into vocabulary ids as they arrive, so a build holds one small list of ints
per passage instead of every token string of the corpus.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.search_terms import TERMS_VERSION, tokenize_for_search

if TYPE_CHECKING:
    import bm25s

logger = logging.getLogger(__name__)

SPARSE_DIR = "bm25"
"""Folder of the saved BM25 matrix inside an index folder."""
PARALLEL_FROM = 20_000
"""Fewest passages tokenised by worker processes: below it, starting them costs more than it
saves (a spawned worker needs about a second to import and warm up jieba)."""
_CHUNK = 2_000


def build_bm25(texts: Sequence[str], *, workers: int | None = None) -> bm25s.BM25 | None:
    """A BM25 index of ``texts`` (row ``i`` is ``texts[i]``), or None when no text has a token.

    Args:
        texts: passage texts, in index order.
        workers: processes that tokenise; default: one per usable core once there are at least
            :data:`PARALLEL_FROM` texts, else none (tokenised here).
    """
    import bm25s

    quiet_bm25s()
    if workers is None:
        workers = _usable_cores() if len(texts) >= PARALLEL_FROM else 1
    vocabulary: dict[str, int] = {}
    token_ids: list[list[int]] = []
    for tokens in _token_lists(texts, workers):
        ids = []
        for token in tokens:
            number = vocabulary.get(token)
            if number is None:
                number = vocabulary[token] = len(vocabulary)
            ids.append(number)
        token_ids.append(ids)
        if len(token_ids) % 100_000 == 0:
            logger.info("BM25: tokenised %d of %d passages", len(token_ids), len(texts))
    if not vocabulary:
        return None
    bm25 = bm25s.BM25()
    bm25.index((token_ids, vocabulary), show_progress=False)
    logger.debug("BM25 over %d passages, %d terms", len(texts), len(vocabulary))
    return bm25


def save_bm25(bm25: bm25s.BM25, index_dir: Path) -> dict[str, Any]:
    """Write ``bm25`` into ``index_dir/bm25``; returns the manifest entry that vouches for it."""
    bm25.save(str(index_dir / SPARSE_DIR))
    return {
        "terms_version": TERMS_VERSION,
        "documents": int(bm25.scores["num_docs"]),
        "vocabulary": len(bm25.vocab_dict),
    }


def load_bm25(index_dir: Path, entry: Mapping[str, Any] | None, count: int) -> bm25s.BM25 | None:
    """The saved BM25 of an index of ``count`` passages, memory-mapped; None to rebuild it.

    None (with a log line saying why) when the folder predates saved BM25, was saved with
    another tokeniser, or its files do not fit the manifest: a rebuild is always correct, only
    slower, so a damaged matrix never reaches a query.
    """
    if not isinstance(entry, Mapping) or not (index_dir / SPARSE_DIR).is_dir():
        logger.info("no saved BM25 in %s: building it from the passages", index_dir)
        return None
    if entry.get("terms_version") != TERMS_VERSION:
        logger.info(
            "saved BM25 in %s was tokenised by %s, this Ludao tokenises by %s: rebuilding it",
            index_dir,
            entry.get("terms_version"),
            TERMS_VERSION,
        )
        return None
    import bm25s
    import numpy as np

    quiet_bm25s()
    try:
        bm25 = bm25s.BM25.load(str(index_dir / SPARSE_DIR), mmap=True)
        scores = bm25.scores
        data, indices, indptr = scores["data"], scores["indices"], scores["indptr"]
        problem = None
        if scores["num_docs"] != count or entry.get("documents") != count:
            problem = f"it covers {scores['num_docs']} passages, the index holds {count}"
        elif len(bm25.vocab_dict) != entry.get("vocabulary") or len(indptr) < 2:
            problem = "its vocabulary does not match the manifest"
        elif int(indptr[-1]) != len(data) or len(data) != len(indices):
            problem = "its matrix arrays disagree in length"
        elif len(indices) and int(np.max(indices)) >= count:
            problem = "it points at passages the index does not hold"
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        problem = f"it cannot be read ({exc.__class__.__name__}: {exc})"
    if problem is not None:
        logger.warning("saved BM25 in %s is unusable (%s): rebuilding it", index_dir, problem)
        return None
    return bm25


def quiet_bm25s() -> None:
    """Leave bm25s' log level to the application unless someone asked for debug output.

    bm25s sets its own logger to DEBUG when imported, which floods quiet CLI runs.
    """
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("bm25s").setLevel(logging.WARNING)


def _token_lists(texts: Sequence[str], workers: int) -> Iterator[list[str]]:
    """Each text's search tokens, in order; by ``workers`` processes when more than one."""
    if workers <= 1:
        yield from map(tokenize_for_search, texts)
        return
    chunks = [texts[i : i + _CHUNK] for i in range(0, len(texts), _CHUNK)]
    # spawn, not fork: the parent runs torch and server threads, which a forked child inherits
    # in whatever state they were (a held lock never released).
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        for chunk_tokens in pool.map(_tokenize_chunk, chunks):
            yield from chunk_tokens


def _tokenize_chunk(texts: Sequence[str]) -> list[list[str]]:
    return [tokenize_for_search(text) for text in texts]


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
