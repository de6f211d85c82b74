"""The saved index folder: file names, manifest, verification on load, atomic replacement.

An index is saved as one directory (manifest, passages, FAISS file, raw vectors, BM25) and
verified on load, so a question is never answered from an index built with another model or
another set of documents. The raw float32 vectors are kept beside the FAISS file because not
every FAISS structure can give its vectors back, and an incremental update (``qa.index.update``)
reuses them for passages whose text did not change. BM25 is saved too (``qa.sparse_index``):
rebuilding it takes minutes at a million passages.

This module is the only one that knows the layout. It holds no search structures:
``qa.index.update`` turns a saved folder into a :class:`~qa.retrieval.Retriever` and back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embeddings.index import FaissIndex, fsync_dir
from qa.errors import IndexCorruptError, IndexMismatchError
from qa.retrieval import check_vectors
from qa.schema import Passage
from qa.sparse_index import SPARSE_DIR, build_bm25, save_bm25

from .vectors import REBUILD_HINT, read_vectors, vectors_digest, write_vectors

if TYPE_CHECKING:
    import bm25s

    from embeddings.encoder import Encoder

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
"""Version of the saved directory layout; bump it when the layout or tokenisation changes.

2: raw vectors in ``vectors.npy`` (with their SHA-256 in the manifest) and per-document records.
"""
MANIFEST = "manifest.json"
PASSAGES = "passages.jsonl"
DENSE = "dense.faiss"
VECTORS = "vectors.npy"
INDEX_FILES = frozenset({MANIFEST, PASSAGES, DENSE, VECTORS, SPARSE_DIR})
_PASSAGE_FIELDS = {f.name for f in dataclasses.fields(Passage)}
_RESERVED_KEYS = frozenset(
    {
        "format_version",
        "embedding_model",
        "dimension",
        "index_kind",
        "passage_count",
        "corpus_hash",
        "vectors_sha256",
        "bm25",
        "created",
    }
)


def text_key(text: str) -> str:
    """What a stored vector is reused by: the SHA-256 of the passage text it embeds."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def corpus_hash(passages: Iterable[Passage]) -> str:
    """SHA-256 over passage ids and texts, in order: the identity of an indexed corpus.

    Each ``[id, text]`` pair is JSON-encoded on its own line, so no choice of characters in ids
    or texts can make two different corpora hash alike.
    """
    digest = hashlib.sha256()
    for passage in passages:
        digest.update(json.dumps([passage.id, passage.text], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


# -- reading -------------------------------------------------------------------------------


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of a saved index (for ``/healthz`` and ``ludao index`` reports).

    Raises:
        FileNotFoundError: there is no index directory.
        IndexCorruptError: the directory has no readable manifest.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no index at {directory}")
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(
            f"index manifest {directory / MANIFEST} is missing or unreadable; {REBUILD_HINT}"
        ) from exc
    if not isinstance(manifest, dict):
        raise IndexCorruptError(f"index manifest {directory / MANIFEST} is not an object")
    return manifest


@dataclasses.dataclass(frozen=True)
class SavedIndex:
    """The verified manifest and passages of a saved index; its vectors are read on demand.

    What an incremental update or a document removal needs, without loading FAISS or building
    BM25. Use :meth:`read`.
    """

    directory: Path
    manifest: dict[str, Any]
    passages: list[Passage]

    @property
    def count(self) -> int:
        return len(self.passages)

    @property
    def dimension(self) -> int:
        return int(self.manifest["dimension"])

    @classmethod
    def read(cls, directory: str | Path, encoder: Encoder | None = None) -> SavedIndex:
        """Read the manifest and passages and check them against each other.

        Args:
            directory: what :func:`write_index_dir` wrote.
            encoder: when given, the index must have been built with this model and dimension.

        Raises:
            FileNotFoundError: ``directory`` does not exist.
            IndexMismatchError: other format version, model or dimension.
            IndexCorruptError: missing, truncated or inconsistent files.
        """
        directory = Path(directory)
        manifest = read_manifest(directory)
        _check_manifest(manifest, directory, encoder)
        passages = _read_passages(directory / PASSAGES)
        count = manifest["passage_count"]
        if len(passages) != count:
            raise IndexCorruptError(
                f"{directory / PASSAGES} holds {len(passages)} passages, the manifest says "
                f"{count}; {REBUILD_HINT}"
            )
        if corpus_hash(passages) != manifest["corpus_hash"]:
            raise IndexCorruptError(
                f"{directory / PASSAGES} does not match the manifest's corpus hash (edited "
                f"after indexing?); {REBUILD_HINT}"
            )
        return cls(directory=directory, manifest=manifest, passages=passages)

    def vectors(self) -> np.ndarray:
        """All saved vectors, ``(count, dimension)`` float32, checked against the manifest.

        Raises:
            IndexCorruptError: ``vectors.npy`` is missing, truncated, reshaped or altered.
        """
        return read_vectors(
            self.directory / VECTORS, self.count, self.dimension, self.manifest["vectors_sha256"]
        )


def _check_manifest(manifest: dict[str, Any], directory: Path, encoder: Encoder | None) -> None:
    """Mismatch before corruption: a stale index is the common case and has the simple fix."""
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise IndexCorruptError(
            f"index manifest {directory / MANIFEST} lacks a valid 'format_version'; {REBUILD_HINT}"
        )
    if version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"the index at {directory} has format version {version}, this "
            f"Ludao reads version {FORMAT_VERSION}; {REBUILD_HINT}"
        )
    required = {
        "embedding_model": str,
        "dimension": int,
        "passage_count": int,
        "corpus_hash": str,
        "vectors_sha256": str,
    }
    for key, kind in required.items():
        if not isinstance(manifest.get(key), kind):
            raise IndexCorruptError(
                f"index manifest {directory / MANIFEST} lacks a valid {key!r}; {REBUILD_HINT}"
            )
    if encoder is None:
        return
    if manifest["embedding_model"] != encoder.model_id:
        raise IndexMismatchError(
            f"the index at {directory} was built with embedding model "
            f"{manifest['embedding_model']!r}, but the configured model is "
            f"{encoder.model_id!r}; {REBUILD_HINT}"
        )
    if manifest["dimension"] != encoder.dimension:
        raise IndexMismatchError(
            f"the index at {directory} holds {manifest['dimension']}-dimensional vectors, but "
            f"model {encoder.model_id!r} produces {encoder.dimension}; {REBUILD_HINT}"
        )


def _read_passages(path: Path) -> list[Passage]:
    passages: list[Passage] = []
    try:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    passages.append(
                        Passage(**{k: v for k, v in record.items() if k in _PASSAGE_FIELDS})
                    )
                except (json.JSONDecodeError, TypeError, AttributeError) as exc:
                    raise IndexCorruptError(
                        f"{path} line {number} is not a valid passage; {REBUILD_HINT}"
                    ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"{path} is missing or unreadable; {REBUILD_HINT}") from exc
    return passages


# -- writing -------------------------------------------------------------------------------


def write_index_dir(
    directory: str | Path,
    *,
    model_id: str,
    passages: Iterable[Passage],
    vectors: np.ndarray,
    dense_index: FaissIndex,
    sparse_index: bm25s.BM25 | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a complete index directory and put it in place of ``directory`` atomically.

    Everything is written into a temporary sibling directory and renamed into place, so a crash
    never leaves a half-written index where a reader would find it. A directory that holds
    anything but index files (and no manifest) is refused rather than deleted. ``extra``
    manifest entries may not override the entries that describe the files.

    Shared by ``qa.index.update.save_retriever`` and by removals, which edit a saved index
    without a model. Without ``sparse_index``, BM25 is built here from ``passages``.
    """
    passages = tuple(passages)
    vectors = check_vectors(vectors, len(passages), "vectors")
    if len(dense_index) != len(passages):
        raise ValueError(f"dense index holds {len(dense_index)} rows for {len(passages)} passages")
    clash = _RESERVED_KEYS & set(extra or {})
    if clash:
        raise ValueError(f"extra manifest entries may not override {sorted(clash)}")
    directory = Path(directory)
    if directory.exists() and not _is_replaceable(directory):
        raise FileExistsError(f"{directory} exists and is not a Ludao index; not replacing it")
    directory.parent.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format_version": FORMAT_VERSION,
        "embedding_model": model_id,
        "dimension": dense_index.dimension,
        "index_kind": dense_index.kind,
        "passage_count": len(passages),
        "corpus_hash": corpus_hash(passages),
        "vectors_sha256": vectors_digest(vectors),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    if sparse_index is None:
        sparse_index = build_bm25([p.text for p in passages])
    work = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        if sparse_index is not None:
            manifest["bm25"] = save_bm25(sparse_index, work)
        _write_files(work, passages, vectors, dense_index, manifest)
        _replace_dir(work, directory)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    logger.info("saved index of %d passages to %s", len(passages), directory)
    return directory


def _write_files(
    work: Path,
    passages: tuple[Passage, ...],
    vectors: np.ndarray,
    dense_index: FaissIndex,
    manifest: dict[str, Any],
) -> None:
    """The other files, each fsync'ed; the manifest last, as the mark of a complete directory."""
    with (work / PASSAGES).open("w", encoding="utf-8") as fh:
        for passage in passages:
            fh.write(json.dumps(dataclasses.asdict(passage), ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    write_vectors(work / VECTORS, vectors)
    dense_index.save(work / DENSE)
    write_manifest(work, manifest)


def write_manifest(directory: Path, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest.json`` in ``directory`` atomically (temp file, fsync, rename).

    Also used on its own to update the document records of an index whose passages did not
    change, without rewriting the other files.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{MANIFEST}.", suffix=".tmp", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, ensure_ascii=False, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, directory / MANIFEST)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(directory)


def _is_replaceable(directory: Path) -> bool:
    """Whether a save may replace ``directory``: an index (even a damaged one), or empty."""
    if not directory.is_dir():
        return False
    if (directory / MANIFEST).is_file():
        return True
    return all(p.name in INDEX_FILES or p.name.startswith(".") for p in directory.iterdir())


def _replace_dir(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``; an existing ``target`` is moved aside first, then removed.

    POSIX cannot rename a directory over a non-empty one, so there is a moment when ``target``
    does not exist; a crash then leaves the old index beside it as ``.<name>.old-*`` and no
    half-written one at ``target`` (``qa.index.lock.recover_interrupted_save`` puts it back).
    """
    old: Path | None = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / target.name)
    try:
        os.replace(new, target)
    except BaseException:
        if old is not None:
            with contextlib.suppress(OSError):
                os.replace(old / target.name, target)
        raise
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
