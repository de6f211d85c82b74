"""The documents of a saved index: list them, remove one, restore a removed one (``ludao docs``).

A removal takes a document's passages out of the saved index at once, rewriting it from the saved
vectors (nothing is embedded), and records the document in the manifest's ``excluded`` list, so
later updates of the same corpus leave it out although its file is still there, until
:func:`restore_document` forgets the removal. The manifest's ``documents`` and ``excluded``
entries are read here and nowhere else.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qa.corpus import Corpus, DocumentRecord
from qa.errors import IndexCorruptError, IndexMismatchError, LudaoError
from qa.retrieval import dense_index_from

from .lock import recover_interrupted_save, writer_lock
from .store import SavedIndex, read_manifest, write_index_dir, write_manifest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemovedDocument:
    """One entry of the manifest's ``excluded`` list: a document removed with ``ludao docs``.

    ``source`` is the resolved path of its file (``""`` for a document without one), ``removed``
    when it was removed (ISO 8601, UTC).
    """

    id: str
    source: str = ""
    sha256: str | None = None
    removed: str | None = None

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> RemovedDocument:
        return cls(
            id=entry.get("id", ""),
            source=entry.get("source") or "",
            sha256=entry.get("sha256"),
            removed=entry.get("removed"),
        )

    def to_entry(self) -> dict[str, Any]:
        """The manifest entry, with the keys the manifest has always had."""
        return asdict(self)

    def excludes(self, doc_id: str, source: str) -> bool:
        """Whether a document of the corpus is this one: matched by file, without a file by id."""
        if self.source:
            return self.source == source
        return self.id == doc_id

    def is_named(self, key: str) -> bool:
        """Whether ``key`` (an id or a file's path, as typed by a user) names this document."""
        source = _as_source(key)
        return self.id == key or bool(source and self.source == source)


def removed_documents(manifest: dict[str, Any]) -> list[RemovedDocument]:
    """The manifest's removed-document entries; malformed ones ignored."""
    entries = manifest.get("excluded", [])
    if not isinstance(entries, list):
        return []
    return [RemovedDocument.from_entry(e) for e in entries if isinstance(e, dict)]


def document_records(manifest: dict[str, Any]) -> list[DocumentRecord]:
    """The manifest's per-document records; a hand-edited record that does not fit is skipped."""
    records = manifest.get("documents", [])
    if not isinstance(records, list):
        return []
    out = []
    for item in records:
        try:
            out.append(DocumentRecord.from_dict(item))
        except TypeError:  # a hand-edited record: treat the document as new
            continue
    return out


def now() -> str:
    """The time stamp the manifest records: UTC, ISO 8601, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class DocumentListing:
    """The documents of a saved index and those removed from it."""

    index_dir: Path
    documents: list[DocumentRecord]
    excluded: list[RemovedDocument]
    created: str | None


def list_documents(index_dir: Path) -> DocumentListing:
    """What the manifest at ``index_dir`` says about its documents.

    Raises:
        LudaoError: there is no index, or it cannot be read.
    """
    manifest = _manifest_for_docs(index_dir)
    return DocumentListing(
        index_dir=index_dir,
        documents=document_records(manifest),
        excluded=removed_documents(manifest),
        created=manifest.get("created"),
    )


def remove_document(index_dir: Path, key: str) -> DocumentRecord:
    """Take one document's passages out of the saved index, without embedding anything.

    ``key`` is a document id or the path of its file. The rest of the index is rewritten
    atomically from the saved vectors, and the document is recorded as removed, so later
    updates of the same corpus leave it out until :func:`restore_document`.

    Raises:
        LudaoError: no index, no such document, or a damaged index.
    """
    with writer_lock(index_dir):
        recover_interrupted_save(index_dir)
        manifest = _manifest_for_docs(index_dir)
        records = document_records(manifest)
        target = _find(records, key)
        if target is None:
            raise LudaoError(_unknown(key, index_dir, manifest))
        try:
            saved = SavedIndex.read(index_dir)
            vectors = saved.vectors()
        except (IndexMismatchError, IndexCorruptError) as exc:
            raise LudaoError(f"cannot remove {key!r}: {exc}") from exc
        keep = [i for i, p in enumerate(saved.passages) if p.doc_id != target.id]
        kept_vectors = vectors[keep]
        removed = RemovedDocument(target.id, target.source, target.sha256, now())
        write_index_dir(
            index_dir,
            model_id=saved.manifest["embedding_model"],
            passages=[saved.passages[i] for i in keep],
            vectors=kept_vectors,
            dense_index=dense_index_from(kept_vectors, saved.dimension),
            extra={
                "documents": [asdict(r) for r in records if r is not target],
                "excluded": [e.to_entry() for e in [*removed_documents(manifest), removed]],
            },
        )
    logger.info("removed %s (%d passages) from %s", target.id, saved.count - len(keep), index_dir)
    return target


def restore_document(index_dir: Path, key: str) -> RemovedDocument:
    """Forget the removal of a document; the next update of the corpus indexes it again.

    Raises:
        LudaoError: no index, or no removed document matches ``key``.
    """
    with writer_lock(index_dir):
        recover_interrupted_save(index_dir)
        manifest = _manifest_for_docs(index_dir)
        excluded = removed_documents(manifest)
        match = next((e for e in excluded if e.is_named(key)), None)
        if match is None:
            names = ", ".join(str(e.id) for e in excluded) or "none"
            raise LudaoError(
                f"no removed document {key!r} in the index at {index_dir} (removed: {names})"
            )
        rest = [e.to_entry() for e in excluded if e is not match]
        write_manifest(index_dir, manifest | {"excluded": rest})
    return match


def _manifest_for_docs(index_dir: Path) -> dict[str, Any]:
    try:
        manifest = read_manifest(index_dir)
    except FileNotFoundError as exc:
        raise LudaoError(f"no index at {index_dir}; run `ludao index` first") from exc
    except IndexCorruptError as exc:
        raise LudaoError(str(exc)) from exc
    if "documents" not in manifest:
        raise LudaoError(
            f"the index at {index_dir} has no document records (an older layout); "
            "run `ludao index` to update it"
        )
    return manifest


def _as_source(key: str) -> str:
    try:
        return str(Path(key).resolve())
    except (OSError, ValueError):
        return ""


def _find(records: list[DocumentRecord], key: str) -> DocumentRecord | None:
    for record in records:
        if record.id == key:
            return record
    source = _as_source(key)
    for record in records:
        if source and record.source == source:
            return record
    return None


def _unknown(key: str, index_dir: Path, manifest: dict[str, Any]) -> str:
    if any(e.is_named(key) for e in removed_documents(manifest)):
        return f"{key!r} was already removed from the index at {index_dir}"
    return (
        f"no document {key!r} in the index at {index_dir}; "
        "`ludao docs list` shows the ids and sources"
    )


def without_removed(corpus: Corpus, excluded: list[RemovedDocument]) -> tuple[Corpus, list[str]]:
    """``corpus`` less the documents removed with ``ludao docs remove``, and their ids.

    Every store applies the same removals before it indexes, so a removed file stays out of
    the FAISS folder and the Milvus collection alike until it is restored.
    """
    if not excluded or not corpus.records:
        return corpus, []
    out = {r.id for r in corpus.records if any(e.excludes(r.id, r.source) for e in excluded)}
    if not out:
        return corpus, []
    return (
        replace(
            corpus,
            documents=[d for d in corpus.documents if d.id not in out],
            passages=[p for p in corpus.passages if p.doc_id not in out],
            records=[r for r in corpus.records if r.id not in out],
        ),
        sorted(out),
    )
