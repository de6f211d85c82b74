"""A small FAISS wrapper: vectors in, ``(scores, row ids)`` out, saved atomically.

The index stores only row positions; passage text lives next to it (``qa.retrieval`` keeps the
passages and maps ids back). Corpora here are thousands of passages, where an exact flat
inner-product search takes milliseconds and never misses a neighbour, so ``flat`` is the only
kind today; ``kind`` is recorded so HNSW or IVF can be added for large corpora without changing
callers. ``faiss`` is imported inside methods: importing this module costs nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import faiss

logger = logging.getLogger(__name__)

IndexKind = Literal["flat"]
KINDS: tuple[str, ...] = ("flat",)


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise ImportError("dense retrieval needs FAISS: pip install faiss-cpu") from exc
    return faiss


def _corrupt(message: str) -> Exception:
    # qa.errors holds the user-facing error types; imported here, on the error path only, so that
    # importing embeddings never imports the qa package.
    from qa.errors import IndexCorruptError

    return IndexCorruptError(message)


def _as_matrix(vectors: np.ndarray, dimension: int, what: str) -> np.ndarray:
    """``vectors`` as a C-contiguous float32 ``(n, dimension)`` array (a 1-D vector is one row)."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[1] != dimension:
        raise ValueError(f"{what} must have shape (n, {dimension}), got {np.shape(vectors)}")
    return np.ascontiguousarray(array)


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (a rename) to disk where the OS allows opening directories."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


class FaissIndex:
    """Exact inner-product search over L2-normalised vectors (scores are cosine similarities).

    Args:
        dimension: vector length.
        kind: index structure; only ``"flat"`` (``faiss.IndexFlatIP``) exists today.

    Example:
        >>> index = FaissIndex(384)
        >>> index.add(passage_vectors)            # (n, 384) float32
        >>> scores, ids = index.search(query_vector, k=5)   # each (1, 5)
    """

    def __init__(self, dimension: int, *, kind: IndexKind = "flat") -> None:
        if dimension < 1:
            raise ValueError(f"dimension must be positive, got {dimension}")
        if kind not in KINDS:
            raise ValueError(f"unknown index kind {kind!r}; expected one of {KINDS}")
        self._dimension = dimension
        self.kind: IndexKind = kind
        self._index: faiss.Index = _faiss().IndexFlatIP(dimension)

    @classmethod
    def _wrap(cls, index: faiss.Index, kind: IndexKind) -> FaissIndex:
        self = cls.__new__(cls)
        self._dimension = int(index.d)
        self.kind = kind
        self._index = index
        return self

    @classmethod
    def from_vectors(cls, vectors: np.ndarray, *, kind: str = "auto") -> FaissIndex:
        """An index holding ``vectors`` (row ``i`` gets id ``i``), of a kind fit for their number.

        ``kind="auto"`` picks the structure by corpus size; structures that need training are
        trained on ``vectors`` here, so callers never deal with FAISS training themselves.
        """
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2:
            raise ValueError(f"vectors must be a 2-D array, got shape {matrix.shape}")
        index = cls(matrix.shape[1], kind="flat" if kind == "auto" else kind)  # type: ignore[arg-type]
        index.add(matrix)
        return index

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def __repr__(self) -> str:
        return f"FaissIndex(dimension={self._dimension}, kind={self.kind!r}, size={len(self)})"

    @property
    def dimension(self) -> int:
        return self._dimension

    def add(self, vectors: np.ndarray) -> None:
        """Append ``(n, dimension)`` vectors; they get ids ``len(self)`` … ``len(self) + n - 1``."""
        matrix = _as_matrix(vectors, self._dimension, "vectors")
        if len(matrix):
            self._index.add(matrix)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest rows for each query, best first.

        ``queries`` is ``(q, dimension)`` or one ``(dimension,)`` vector. Returns float32 scores
        and int64 ids, each ``(q, min(k, len(self)))``: asking for more rows than exist returns
        fewer columns rather than FAISS's ``-1`` padding.
        """
        matrix = _as_matrix(queries, self._dimension, "queries")
        k = min(max(k, 0), len(self))
        if k == 0:
            empty = (len(matrix), 0)
            return np.zeros(empty, dtype=np.float32), np.zeros(empty, dtype=np.int64)
        scores, ids = self._index.search(matrix, k)
        return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)

    def save(self, path: str | Path) -> Path:
        """Write the index to ``path`` atomically: a reader sees the old file or the new one.

        The data goes to a temporary file in the same directory, is fsync'ed, then renamed over
        ``path``; a crash midway leaves at most a stray ``.tmp`` file, never a truncated index.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            _faiss().write_index(self._index, str(tmp))
            with tmp.open("rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(path.parent)
        logger.debug("saved %r to %s", self, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> FaissIndex:
        """Read an index written by :meth:`save`.

        Raises:
            IndexCorruptError: the file is missing, truncated, unreadable, or not an
                inner-product index.
        """
        path = Path(path)
        if not path.is_file():
            raise _corrupt(
                f"dense index file {path} is missing; rebuild with `ludao index --rebuild`"
            )
        faiss_module = _faiss()
        try:
            index = faiss_module.read_index(str(path))
        except (RuntimeError, OSError) as exc:
            raise _corrupt(
                f"dense index file {path} is truncated or unreadable "
                f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                "rebuild with `ludao index --rebuild`"
            ) from exc
        if index.metric_type != faiss_module.METRIC_INNER_PRODUCT:
            raise _corrupt(f"dense index file {path} is not an inner-product index")
        if not isinstance(index, faiss_module.IndexFlat):
            raise _corrupt(f"dense index file {path} holds an unsupported {type(index).__name__}")
        return cls._wrap(index, "flat")
