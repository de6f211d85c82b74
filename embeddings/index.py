"""A small FAISS wrapper: vectors in, ``(scores, row ids)`` out, saved atomically.

The index stores only row positions; passage text (and the raw vectors) live next to it, kept by
``qa.index.store``. Three structures, all inner product over L2-normalised vectors:

- ``flat``: exact search. Below :data:`EXACT_LIMIT` vectors a single query takes under ~5 ms on
  two cores and never misses a neighbour, so ``kind="auto"`` uses it there.
- ``hnsw``: a graph (``IndexHNSWFlat``); no training, vectors can be added at any time; keeps
  full float32 vectors plus the graph (about 1.1x flat's memory). At 100k vectors it finds ten
  neighbours in well under a millisecond at 95%+ recall, so ``auto`` builds it from
  :data:`EXACT_LIMIT` up to :data:`IVF_LIMIT`. Its build grows fastest (9 minutes at 1M
  on two shared cores) and, with the default build settings, recall@10 fell to 0.92 at 300k
  and 0.85 at 1M even at ``ef_search=256``.
- ``ivf``: inverted lists over k-means cells (``IndexIVF``), vectors stored as 8-bit scalar
  codes by default (a quarter of flat's memory); trained in :meth:`FaissIndex.from_vectors` on a
  sample. When cells are sparse (100k vectors) it must scan a quarter of them for 95% recall,
  but at 300k it reached 0.97 and at 1M 0.99 scanning 64 cells (p95 6 and 8 ms): ``auto``
  builds it from :data:`IVF_LIMIT` on.

``benchmarks/index_scale.py`` measures all three; ``benchmarks/results/index_scale.md`` holds the
numbers behind the defaults here. Search settings (``ef_search`` for HNSW, ``nprobe`` for IVF)
live inside the FAISS file, so a saved index searches the same way after
:meth:`FaissIndex.load`. ``faiss`` is imported inside functions: importing this module costs
nothing.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import faiss

logger = logging.getLogger(__name__)

IndexKind = Literal["flat", "hnsw", "ivf"]
KINDS: tuple[str, ...] = ("flat", "hnsw", "ivf")
IvfEncoding = Literal["flat", "sq8", "pq"]
IVF_ENCODINGS: tuple[str, ...] = ("flat", "sq8", "pq")

EXACT_LIMIT = 50_000
"""``kind="auto"`` builds ``flat`` below this many vectors.

Measured on 2 cores (384-d): flat search of one query takes about 4 ms at 50k vectors and 12 ms
at 100k. Module constants so tests can lower them instead of building 50k vectors.
"""
IVF_LIMIT = 200_000
"""``kind="auto"`` builds ``hnsw`` from :data:`EXACT_LIMIT` to this many vectors, then ``ivf``.

HNSW (default build settings) won at 100k; IVF won at 300k (0.956 recall@10 at nprobe 32 against
HNSW's 0.919 at ef_search 256) and at 1M (``benchmarks/results/index_scale*.md``). 200k is a
guess between the two measured sizes.
"""


@dataclass(frozen=True)
class IndexParams:
    """How approximate structures are built and searched; ``flat`` ignores all of it.

    Attributes:
        hnsw_m: graph neighbours per node; more is better recall, more memory, slower build.
        ef_construction: candidate list while inserting into the graph.
        ef_search: candidate list while searching (raised to ``k`` when ``k`` is larger).
        nlist: k-means cells for IVF; ``None`` picks about ``2 * sqrt(n)``, a power of two.
        nprobe: cells scanned per query.
        ivf_encoding: how IVF stores vectors: float32 (``flat``), 8-bit per dimension (``sq8``)
            or product-quantised to ``pq_m`` bytes (``pq``; small but lossy).
        pq_m: PQ sub-quantisers; must divide the dimension.
        train_per_cell: training sample size per cell (FAISS wants at least 39).
        seed: makes the training sample and k-means reproducible.
    """

    hnsw_m: int = 16
    ef_construction: int = 40
    ef_search: int = 128
    nlist: int | None = None
    nprobe: int = 64
    ivf_encoding: IvfEncoding = "sq8"
    pq_m: int = 48
    train_per_cell: int = 40
    seed: int = 1234

    def __post_init__(self) -> None:
        for name in ("hnsw_m", "ef_construction", "ef_search", "nprobe", "pq_m"):
            _check_positive(name, getattr(self, name))
        if self.nlist is not None:
            _check_positive("nlist", self.nlist)
        if self.train_per_cell < 1:
            raise ValueError(f"train_per_cell must be positive, got {self.train_per_cell}")
        if self.ivf_encoding not in IVF_ENCODINGS:
            raise ValueError(
                f"unknown IVF encoding {self.ivf_encoding!r}; expected one of {IVF_ENCODINGS}"
            )


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise ImportError("dense retrieval needs FAISS: pip install faiss-cpu") from exc
    return faiss


class IndexFileError(Exception):
    """A saved FAISS file is missing, truncated, unreadable or not a structure built here.

    The message is fit to show as is. ``embeddings`` never imports ``qa``, so the application
    translates this into its own error type where it loads an index (``qa.index.store``).
    """


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


def choose_kind(count: int) -> IndexKind:
    """The kind ``kind="auto"`` builds for ``count`` vectors: exact while that is fast enough."""
    if count < EXACT_LIMIT:
        return "flat"
    return "hnsw" if count < IVF_LIMIT else "ivf"


def default_nlist(count: int) -> int:
    """About ``2 * sqrt(count)`` cells, a power of two in [1, 4096], never more than ``count``.

    A few hundred vectors per cell keeps the scan per probed cell short; more cells than 4096
    would make k-means training on two cores take minutes.
    """
    target = max(1.0, 2 * math.sqrt(max(count, 1)))
    nlist = 1 << round(math.log2(target))
    return max(1, min(nlist, 4096, count))


def _hnsw(dimension: int, params: IndexParams) -> faiss.Index:
    faiss_module = _faiss()
    index = faiss_module.IndexHNSWFlat(dimension, params.hnsw_m, faiss_module.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = params.ef_construction
    index.hnsw.efSearch = params.ef_search
    return index


def _trained_ivf(matrix: np.ndarray, params: IndexParams) -> faiss.Index:
    """An empty IVF index whose cells (and codec) were trained on a sample of ``matrix``."""
    faiss_module = _faiss()
    count, dimension = matrix.shape
    nlist = min(params.nlist or default_nlist(count), count)
    if params.ivf_encoding == "pq" and dimension % params.pq_m:
        raise ValueError(f"pq_m={params.pq_m} does not divide the dimension {dimension}")
    encoding = {"flat": "Flat", "sq8": "SQ8", "pq": f"PQ{params.pq_m}"}[params.ivf_encoding]
    index = faiss_module.index_factory(
        dimension, f"IVF{nlist},{encoding}", faiss_module.METRIC_INNER_PRODUCT
    )
    index.cp.spherical = True  # centroids on the unit sphere suit cosine similarity
    index.cp.seed = params.seed
    index.nprobe = params.nprobe
    sample_size = min(count, nlist * params.train_per_cell)
    if sample_size < count:
        rows = np.random.default_rng(params.seed).choice(count, sample_size, replace=False)
        sample = matrix[np.sort(rows)]
    else:
        sample = matrix
    logger.info("training IVF%d,%s on %d of %d vectors", nlist, encoding, len(sample), count)
    index.train(sample)
    return index


class FaissIndex:
    """Inner-product search over L2-normalised vectors (scores are cosine similarities).

    Args:
        dimension: vector length.
        kind: ``"flat"`` (exact) or ``"hnsw"``; ``"ivf"`` needs training, so build it with
            :meth:`from_vectors`.
        params: build and search settings for ``hnsw``.

    Example:
        >>> index = FaissIndex.from_vectors(passage_vectors)   # (n, 384) float32
        >>> scores, ids = index.search(query_vector, k=5)      # each (1, 5)
    """

    def __init__(
        self, dimension: int, *, kind: IndexKind = "flat", params: IndexParams | None = None
    ) -> None:
        if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1:
            raise ValueError(f"dimension must be a positive integer, got {dimension!r}")
        if kind not in KINDS:
            raise ValueError(f"unknown index kind {kind!r}; expected one of {KINDS}")
        if kind == "ivf":
            raise ValueError("an 'ivf' index must be trained: use FaissIndex.from_vectors")
        params = IndexParams() if params is None else params
        self._dimension = dimension
        self.kind: IndexKind = kind
        if kind == "hnsw":
            self._index: faiss.Index = _hnsw(dimension, params)
        else:
            self._index = _faiss().IndexFlatIP(dimension)

    @classmethod
    def _wrap(cls, index: faiss.Index, kind: IndexKind) -> FaissIndex:
        self = cls.__new__(cls)
        self._dimension = int(index.d)
        self.kind = kind
        self._index = index
        return self

    @classmethod
    def from_vectors(
        cls, vectors: np.ndarray, *, kind: str = "auto", params: IndexParams | None = None
    ) -> FaissIndex:
        """An index holding ``vectors`` (row ``i`` gets id ``i``), of a kind fit for their number.

        ``kind="auto"`` picks by corpus size (:func:`choose_kind`). Structures that need training
        are trained on ``vectors`` here, so callers never deal with FAISS training themselves.

        Raises:
            ValueError: an unknown kind, vectors that are not a 2-D array, or an empty array
                for ``ivf`` (nothing to train on).
        """
        if kind != "auto" and kind not in KINDS:
            raise ValueError(f"unknown index kind {kind!r}; expected 'auto' or one of {KINDS}")
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] < 1:
            raise ValueError(f"vectors must be a 2-D (n, dimension) array, got {matrix.shape}")
        params = IndexParams() if params is None else params
        chosen: IndexKind = choose_kind(len(matrix)) if kind == "auto" else kind  # type: ignore[assignment]
        if chosen == "ivf":
            if len(matrix) == 0:
                raise ValueError("an 'ivf' index cannot be trained on zero vectors")
            index = cls._wrap(_trained_ivf(np.ascontiguousarray(matrix), params), "ivf")
        else:
            index = cls(matrix.shape[1], kind=chosen, params=params)
        index.add(matrix)
        logger.debug("built %r", index)
        return index

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def __repr__(self) -> str:
        settings = "".join(f", {k}={v}" for k, v in self.search_params.items())
        return (
            f"FaissIndex(dimension={self._dimension}, kind={self.kind!r}, "
            f"size={len(self)}{settings})"
        )

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def search_params(self) -> dict[str, int]:
        """The settings that trade speed for recall: ``ef_search`` or ``nprobe``; none for flat."""
        if self.kind == "hnsw":
            return {"ef_search": int(self._index.hnsw.efSearch)}
        if self.kind == "ivf":
            return {"nprobe": int(self._index.nprobe)}
        return {}

    def set_search_params(self, *, ef_search: int | None = None, nprobe: int | None = None) -> None:
        """Change how hard searches look; saved with the index.

        Raises:
            ValueError: a non-positive value, or a setting the index kind does not have.
        """
        if ef_search is not None:
            _check_positive("ef_search", ef_search)
            if self.kind != "hnsw":
                raise ValueError(f"ef_search applies to 'hnsw' indexes, not {self.kind!r}")
            self._index.hnsw.efSearch = ef_search
        if nprobe is not None:
            _check_positive("nprobe", nprobe)
            if self.kind != "ivf":
                raise ValueError(f"nprobe applies to 'ivf' indexes, not {self.kind!r}")
            self._index.nprobe = nprobe

    def nbytes(self) -> int:
        """Size of the index as FAISS serialises it: close to its memory use."""
        return int(_faiss().serialize_index(self._index).nbytes)

    def add(self, vectors: np.ndarray) -> None:
        """Append ``(n, dimension)`` vectors; they get ids ``len(self)`` … ``len(self) + n - 1``.

        An ``ivf`` index keeps the cells it was trained with: vectors far from the training data
        are still found, but recall drops if the corpus drifts far; rebuild then.
        """
        matrix = _as_matrix(vectors, self._dimension, "vectors")
        if len(matrix):
            self._index.add(matrix)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest rows for each query, best first.

        ``queries`` is ``(q, dimension)`` or one ``(dimension,)`` vector. Returns float32 scores
        and int64 ids, each ``(q, min(k, len(self)))``: asking for more rows than exist returns
        fewer columns rather than FAISS's ``-1`` padding. Approximate kinds may still pad a row
        with id ``-1`` (score ``-inf``) when the probed cells or graph hold fewer than ``k``.
        """
        matrix = _as_matrix(queries, self._dimension, "queries")
        k = min(max(k, 0), len(self))
        if k == 0:
            empty = (len(matrix), 0)
            return np.zeros(empty, dtype=np.float32), np.zeros(empty, dtype=np.int64)
        scores, ids = self._index.search(matrix, k)
        scores = scores.astype(np.float32, copy=False)
        ids = ids.astype(np.int64, copy=False)
        scores[ids < 0] = -np.inf  # FAISS fills missing inner-product slots with -FLT_MAX
        return scores, ids

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
        """Read an index written by :meth:`save`, of any kind.

        Raises:
            IndexFileError: the file is missing, truncated, unreadable, not an
                inner-product index, of a structure this class does not build, or internally
                inconsistent (counts that do not agree).
        """
        path = Path(path)
        if not path.is_file():
            raise IndexFileError(
                f"dense index file {path} is missing; rebuild with `ludao index --rebuild`"
            )
        try:
            index = _faiss().read_index(str(path))
        except (RuntimeError, OSError, MemoryError, ValueError) as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise IndexFileError(
                f"dense index file {path} is truncated or unreadable ({first_line}); "
                "rebuild with `ludao index --rebuild`"
            ) from exc
        kind, problem = _inspect(index)
        if problem:
            raise IndexFileError(
                f"dense index file {path} {problem}; rebuild with `ludao index --rebuild`"
            )
        assert kind is not None
        return cls._wrap(index, kind)


def _inspect(index: faiss.Index) -> tuple[IndexKind | None, str | None]:
    """The kind of a freshly read index, or what is wrong with it."""
    faiss_module = _faiss()
    if index.metric_type != faiss_module.METRIC_INNER_PRODUCT:
        return None, "is not an inner-product index"
    if isinstance(index, faiss_module.IndexFlat):
        return "flat", None
    ntotal = int(index.ntotal)
    if isinstance(index, faiss_module.IndexHNSWFlat):
        storage = faiss_module.downcast_index(index.storage)
        levels = faiss_module.vector_to_array(index.hnsw.levels)
        if (
            not isinstance(storage, faiss_module.IndexFlat)
            or int(storage.ntotal) != ntotal
            or len(levels) != ntotal
        ):
            return None, "holds an HNSW graph that does not match its vectors"
        return "hnsw", None
    if isinstance(index, faiss_module.IndexIVF):
        quantizer = faiss_module.downcast_index(index.quantizer)
        lists = index.invlists
        stored = sum(int(lists.list_size(i)) for i in range(index.nlist))
        if (
            not index.is_trained
            or quantizer.metric_type != faiss_module.METRIC_INNER_PRODUCT
            or int(quantizer.ntotal) != int(index.nlist)
            or stored != ntotal
        ):
            return None, "holds inverted lists that do not match their header"
        return "ivf", None
    return None, f"holds an unsupported {type(index).__name__}"
