"""Corpus → passages → saved index, updated incrementally as documents change.

An index lives in ``$LUDAO_HOME/indexes/<key>``, where the key names the corpus paths and the
embedding model. Opening it recomputes the passages (cheap) and compares them with the saved
ones: an unchanged corpus loads as is; a changed one reuses the saved vector of every passage
whose text is unchanged, embeds only new or edited passages and drops removed ones. Another
model, another layout or a damaged file leads to a full rebuild with a log line, never to answers
from stale or mismatched vectors.

The manifest records every document (source file, SHA-256 of its bytes, size, mtime, passage
and page counts) and the documents removed with ``ludao docs remove``, which later runs skip
until ``ludao docs restore`` brings them back. Files are still read and chunked on every run:
cleaning and chunking may change between versions while the file bytes do not, and they take
far less time than embedding.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from embeddings.encoder import Encoder

from .chunking import chunk
from .documents import load_documents
from .errors import IndexCorruptError, IndexMismatchError, LudaoError
from .index_guard import recover_interrupted_save, writer_lock
from .ingest import IngestReport
from .retrieval import (
    CorpusChangedError,
    Retriever,
    SavedIndex,
    corpus_hash,
    dense_index_from,
    text_key,
    write_index_dir,
    write_manifest,
)
from .schema import Document, Passage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DocumentRecord:
    """What the manifest says about one indexed document."""

    id: str
    source: str
    sha256: str | None
    size: int | None
    mtime: str | None
    passages: int
    pages: int | None = None
    indexed: str | None = None
    """When this content was first indexed (kept while the file's SHA-256 is unchanged)."""

    def same_file(self, other: DocumentRecord) -> bool:
        """Same document, file and passages, whenever it was indexed."""
        return asdict(self) | {"indexed": None} == asdict(other) | {"indexed": None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocumentRecord:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in fields})


@dataclass(frozen=True)
class Corpus:
    documents: list[Document]
    passages: list[Passage]
    records: list[DocumentRecord] = field(default_factory=list)
    report: IngestReport = field(default_factory=IngestReport)
    """What happened to every file looked at: loaded (with sizes) or skipped (with a reason)."""


@dataclass(frozen=True)
class IndexUpdate:
    """What :func:`update_index` did.

    ``reused + embedded`` is the number of passages in the index; ``removed`` counts saved
    passages whose text no longer occurs. ``mode`` is ``"unchanged"`` (loaded as saved),
    ``"updated"`` (saved vectors reused) or ``"built"`` (everything embedded; ``reason`` says why).
    """

    retriever: Retriever
    index_dir: Path
    mode: Literal["unchanged", "updated", "built"]
    reused: int
    embedded: int
    removed: int
    excluded: list[str] = field(default_factory=list)
    reason: str | None = None

    def counts(self) -> dict[str, int]:
        return {"reused": self.reused, "embedded": self.embedded, "removed": self.removed}


def read_corpus(
    paths: Sequence[str | Path],
    *,
    max_chars: int,
    min_chars: int,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
) -> Corpus:
    """Load every supported file under ``paths``, chunk it into passages, and describe its file.

    ``include``/``exclude`` are glob patterns for the files in folders (``qa.ingest.PathFilter``).
    """
    report = IngestReport()
    documents = list(
        load_documents([Path(p) for p in paths], include=include, exclude=exclude, report=report)
    )
    if not documents:
        raise LudaoError(
            f"no readable documents found in {', '.join(map(str, paths))} ({report.summary()})"
        )
    passages = [
        p for doc in documents for p in chunk(doc, max_chars=max_chars, min_chars=min_chars)
    ]
    per_doc: dict[str, int] = {}
    for passage in passages:
        per_doc[passage.doc_id] = per_doc.get(passage.doc_id, 0) + 1
    records = [_describe(doc, per_doc.get(doc.id, 0)) for doc in documents]
    report.set_passages(per_doc)
    logger.info("%d documents, %d passages", len(documents), len(passages))
    return Corpus(documents=documents, passages=passages, records=records, report=report)


def _describe(doc: Document, passages: int) -> DocumentRecord:
    """The manifest record of ``doc``; file fields stay empty when it has no readable source."""
    source = str(Path(doc.source).resolve()) if doc.source else ""
    digest = size = mtime = None
    if source:
        try:
            data = Path(source).read_bytes()
            stat = Path(source).stat()
        except OSError as exc:  # removed since loading: the next run notices
            logger.warning("cannot hash %s: %s", source, exc)
        else:
            digest = hashlib.sha256(data).hexdigest()
            size = len(data)
            mtime = datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(timespec="seconds")
    return DocumentRecord(
        id=doc.id,
        source=source,
        sha256=digest,
        size=size,
        mtime=mtime,
        passages=passages,
        pages=len(doc.pages) or None,
    )


def index_dir_for(paths: Sequence[str | Path], model_id: str, home: Path) -> Path:
    """A stable folder name for this corpus location and embedding model."""
    key = "\0".join(sorted(str(Path(p).resolve()) for p in paths)) + "\0" + model_id
    return home / "indexes" / hashlib.sha1(key.encode()).hexdigest()[:16]


def open_index(
    corpus: Corpus,
    encoder: Encoder,
    index_dir: Path,
    *,
    rebuild: bool = False,
    **retriever_options: object,
) -> Retriever:
    """The index of ``corpus``: loaded, updated or built (see :func:`update_index`)."""
    return update_index(corpus, encoder, index_dir, rebuild=rebuild, **retriever_options).retriever


def update_index(
    corpus: Corpus,
    encoder: Encoder,
    index_dir: Path,
    *,
    rebuild: bool = False,
    **retriever_options: Any,
) -> IndexUpdate:
    """Bring the saved index at ``index_dir`` up to date with ``corpus`` and return it.

    Documents removed with :func:`remove_document` stay out. The whole update runs under the
    directory's writer lock, so concurrent updates (a server reload and ``ludao index``) queue
    up instead of racing.

    Args:
        corpus: the freshly read documents and passages.
        encoder: the embedding model; an index built with another one is rebuilt.
        index_dir: where the index is saved.
        rebuild: embed everything even if saved vectors could be reused.
        retriever_options: passed to :class:`Retriever` (``rrf_k``, weights, ``candidates``).
    """
    with writer_lock(index_dir):
        recover_interrupted_save(index_dir)
        old_manifest = _tolerant_manifest(index_dir)
        excluded = _excluded(old_manifest)
        corpus, skipped = _without_excluded(corpus, excluded)
        if skipped:
            logger.info(
                "leaving out %d removed document(s): %s (`ludao docs restore` brings them back)",
                len(skipped),
                ", ".join(skipped),
            )
        previous: SavedIndex | None = None
        reason = "--rebuild" if rebuild else "no saved index"
        if not rebuild and old_manifest:
            try:
                retriever = Retriever.load(
                    index_dir,
                    encoder,
                    expected_corpus_hash=corpus_hash(corpus.passages),
                    **retriever_options,
                )
            except CorpusChangedError:
                previous, reason = _saved_for_reuse(index_dir, encoder)
            except IndexMismatchError as exc:
                reason = str(exc)
                logger.info("index %s is out of date (%s); rebuilding", index_dir, exc)
            except IndexCorruptError as exc:
                reason = str(exc)
                logger.warning("index %s is damaged (%s); rebuilding", index_dir, exc)
            else:
                _refresh_records(index_dir, old_manifest, corpus.records)
                logger.info("reusing index %s (%d passages)", index_dir, len(retriever))
                n = len(retriever)
                return IndexUpdate(retriever, index_dir, "unchanged", n, 0, 0, skipped)
        vectors, reused, embedded, removed = _vectors_for(corpus.passages, encoder, previous)
        retriever = Retriever(
            encoder,
            corpus.passages,
            dense_index=dense_index_from(vectors, encoder.dimension),
            vectors=vectors,
            **retriever_options,
        ).build()
        records = _dated(corpus.records, old_manifest)
        retriever.save(index_dir, extra={"documents": records, "excluded": excluded})
        mode: Literal["updated", "built"] = "updated" if previous is not None else "built"
        logger.info(
            "index %s %s: %d passages reused, %d embedded, %d removed",
            index_dir,
            mode,
            reused,
            embedded,
            removed,
        )
        return IndexUpdate(
            retriever,
            index_dir,
            mode,
            reused,
            embedded,
            removed,
            skipped,
            None if previous is not None else reason,
        )


def _saved_for_reuse(index_dir: Path, encoder: Encoder) -> tuple[SavedIndex | None, str]:
    """The saved passages with their vectors verified, or ``None`` and why not."""
    try:
        saved = SavedIndex.read(index_dir, encoder)
        saved.vectors()  # verify now: a damaged file means a full rebuild, not wrong vectors
    except (IndexMismatchError, IndexCorruptError, FileNotFoundError) as exc:
        logger.warning("index %s cannot be updated (%s); rebuilding", index_dir, exc)
        return None, str(exc)
    logger.info("index %s: documents changed; updating", index_dir)
    return saved, "documents changed"


def _vectors_for(
    passages: list[Passage], encoder: Encoder, previous: SavedIndex | None
) -> tuple[np.ndarray, int, int, int]:
    """Vectors for ``passages``, reused by text where saved; and reused/embedded/removed counts."""
    keys = [text_key(p.text) for p in passages]
    stored: dict[str, int] = {}
    old_vectors = np.zeros((0, encoder.dimension), dtype=np.float32)
    removed = 0
    if previous is not None:
        old_vectors = previous.vectors()
        for row, passage in enumerate(previous.passages):
            stored.setdefault(text_key(passage.text), row)
        wanted = set(keys)
        removed = sum(1 for p in previous.passages if text_key(p.text) not in wanted)
    missing = list(dict.fromkeys(k for k in keys if k not in stored))
    texts = {k: p.text for k, p in zip(keys, passages, strict=True)}
    if missing:
        logger.info("embedding %d passages with %s", len(missing), encoder.model_id)
        fresh = np.asarray(encoder.encode_passages([texts[k] for k in missing]), dtype=np.float32)
        if fresh.shape != (len(missing), encoder.dimension):
            raise ValueError(
                f"encoder returned vectors of shape {fresh.shape} for {len(missing)} passages"
            )
    else:
        fresh = np.zeros((0, encoder.dimension), dtype=np.float32)
    fresh_row = {k: i for i, k in enumerate(missing)}
    vectors = np.empty((len(passages), encoder.dimension), dtype=np.float32)
    reused = 0
    for i, key in enumerate(keys):
        if key in stored:
            vectors[i] = old_vectors[stored[key]]
            reused += 1
        else:
            vectors[i] = fresh[fresh_row[key]]
    return vectors, reused, len(passages) - reused, removed


def _tolerant_manifest(index_dir: Path) -> dict[str, Any]:
    """The saved manifest, or ``{}`` when there is none or it cannot be read."""
    try:
        return Retriever.read_manifest(index_dir)
    except (FileNotFoundError, IndexCorruptError):
        return {}


def _is_excluded(entry: dict[str, Any], doc_id: str, source: str) -> bool:
    """Removed documents are matched by file; documents without a file by id."""
    if entry.get("source"):
        return entry["source"] == source
    return entry.get("id") == doc_id


def _without_excluded(corpus: Corpus, excluded: list[dict[str, Any]]) -> tuple[Corpus, list[str]]:
    if not excluded or not corpus.records:
        return corpus, []
    out = {r.id for r in corpus.records if any(_is_excluded(e, r.id, r.source) for e in excluded)}
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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _excluded(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's removed-document entries (``ludao docs remove``); malformed ones ignored."""
    entries = manifest.get("excluded", [])
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _saved_records(manifest: dict[str, Any]) -> list[DocumentRecord]:
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


def _dated(records: list[DocumentRecord], old_manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Records as manifest entries; a file indexed before with the same bytes keeps its date."""
    before = {(r.source, r.sha256): r.indexed for r in _saved_records(old_manifest)}
    now = _now()
    dated = []
    for record in records:
        indexed = before.get((record.source, record.sha256)) if record.sha256 else None
        dated.append(asdict(record) | {"indexed": indexed or now})
    return dated


def _refresh_records(
    index_dir: Path, manifest: dict[str, Any], records: list[DocumentRecord]
) -> None:
    """Rewrite only the manifest when the passages are the same but a file was touched or moved."""
    saved = _saved_records(manifest)
    if len(saved) == len(records) and all(
        a.same_file(b) for a, b in zip(saved, records, strict=True)
    ):
        return
    write_manifest(index_dir, manifest | {"documents": _dated(records, manifest)})
    logger.info("index %s: document records refreshed", index_dir)


# -- documents of a saved index (``ludao docs``) ------------------------------------------------


@dataclass(frozen=True)
class DocumentListing:
    """The documents of a saved index and those removed from it."""

    index_dir: Path
    documents: list[DocumentRecord]
    excluded: list[dict[str, Any]]
    created: str | None


def list_documents(index_dir: Path) -> DocumentListing:
    """What the manifest at ``index_dir`` says about its documents.

    Raises:
        LudaoError: there is no index, or it cannot be read.
    """
    manifest = _manifest_for_docs(index_dir)
    return DocumentListing(
        index_dir=index_dir,
        documents=_saved_records(manifest),
        excluded=_excluded(manifest),
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
        records = _saved_records(manifest)
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
        excluded = _excluded(manifest)
        entry = {"id": target.id, "source": target.source, "sha256": target.sha256}
        write_index_dir(
            index_dir,
            model_id=saved.manifest["embedding_model"],
            passages=[saved.passages[i] for i in keep],
            vectors=kept_vectors,
            dense_index=dense_index_from(kept_vectors, saved.dimension),
            extra={
                "documents": [asdict(r) for r in records if r is not target],
                "excluded": [*excluded, entry | {"removed": _now()}],
            },
        )
    logger.info("removed %s (%d passages) from %s", target.id, saved.count - len(keep), index_dir)
    return target


def restore_document(index_dir: Path, key: str) -> dict[str, Any]:
    """Forget the removal of a document; the next update of the corpus indexes it again.

    Raises:
        LudaoError: no index, or no removed document matches ``key``.
    """
    with writer_lock(index_dir):
        recover_interrupted_save(index_dir)
        manifest = _manifest_for_docs(index_dir)
        excluded = _excluded(manifest)
        source = _as_source(key)
        match = [
            e for e in excluded if e.get("id") == key or (source and e.get("source") == source)
        ]
        if not match:
            names = ", ".join(str(e.get("id")) for e in excluded) or "none"
            raise LudaoError(
                f"no removed document {key!r} in the index at {index_dir} (removed: {names})"
            )
        rest = [e for e in excluded if e is not match[0]]
        write_manifest(index_dir, manifest | {"excluded": rest})
    return match[0]


def _manifest_for_docs(index_dir: Path) -> dict[str, Any]:
    try:
        manifest = Retriever.read_manifest(index_dir)
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
    removed = _excluded(manifest)
    if any(e.get("id") == key or e.get("source") == _as_source(key) for e in removed):
        return f"{key!r} was already removed from the index at {index_dir}"
    return (
        f"no document {key!r} in the index at {index_dir}; "
        "`ludao docs list` shows the ids and sources"
    )
