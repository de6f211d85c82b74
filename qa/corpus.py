"""The documents of a corpus: which files, read into documents, chunked into passages.

A corpus is a list of files and folders plus include/exclude patterns. :func:`read_corpus` is the
one way to read it: walk the folders (:func:`corpus_files`), load each file
(``qa.documents.load_document``), skip and report the ones that fail, chunk the rest into
passages, and describe every document's file (:class:`DocumentRecord`) for the index manifest.
:func:`load_documents` is the same walk without chunking, for callers that want documents only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.chunking import chunk
from qa.documents import load_document
from qa.errors import LudaoError
from qa.ingest import IngestReport, PathFilter
from qa.loaders import DocumentError
from qa.schema import Document, Passage

if TYPE_CHECKING:
    from qa.config import Settings

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


def corpus_from_settings(settings: Settings) -> Corpus:
    """The documents and passages of ``settings.corpus``, chunked and filtered as configured."""
    return read_corpus(
        settings.corpus,
        max_chars=settings.max_chars,
        min_chars=settings.min_chars,
        include=settings.include,
        exclude=settings.exclude,
    )


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

    Raises:
        LudaoError: not one readable document was found.
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


def load_documents(
    paths_or_dirs: str | Path | Iterable[str | Path],
    *,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
    report: IngestReport | None = None,
) -> Iterator[Document]:
    """Load every file given, and the files under the folders given.

    Folders are walked recursively in sorted order, skipping hidden files and folders, and
    keeping the files that ``include``/``exclude`` glob patterns accept (matched against the
    path relative to the folder walked; see ``qa.ingest.PathFilter``). Files named directly
    are always taken. A file that fails is logged and skipped, so one bad file does not stop a
    whole corpus. Two files with the same stem get ids ``stem`` and ``stem-2`` (in walk order).

    With ``report``, every file taken is recorded there as loaded or skipped with its reason,
    including folder files without a loader (those are logged at INFO only: folders often hold
    spreadsheets and images next to the documents).
    """
    if isinstance(paths_or_dirs, (str, Path)):
        paths_or_dirs = [paths_or_dirs]
    seen: dict[str, int] = {}
    for path, in_folder in corpus_files(paths_or_dirs, PathFilter.of(include, exclude)):
        try:
            doc = load_document(path)
        except (DocumentError, OSError) as exc:
            error = exc if isinstance(exc, DocumentError) else _os_error(path, exc)
            quiet = in_folder and error.kind == "unsupported"
            logger.log(logging.INFO if quiet else logging.WARNING, "skipping %s", error)
            if report is not None:
                report.add_skipped(str(path), error.kind, error.reason)
            continue
        seen[doc.id] = seen.get(doc.id, 0) + 1
        if seen[doc.id] > 1:
            doc = dataclasses.replace(doc, id=f"{doc.id}-{seen[doc.id]}")
        if report is not None:
            report.add_loaded(
                str(path), doc_id=doc.id, characters=len(doc.text), pages=len(doc.pages)
            )
        yield doc


def _os_error(path: Path, exc: OSError) -> DocumentError:
    return DocumentError(path, exc.strerror or str(exc), "unreadable")


def corpus_files(
    paths: Iterable[str | Path], selection: PathFilter | None = None
) -> Iterator[tuple[Path, bool]]:
    """``(path, found_in_a_folder)`` for every file to try, missing paths included.

    Folders are walked in sorted order without hidden files and folders; ``selection`` (default:
    everything) decides which of their files are taken. Paths that are not folders are yielded
    as given, even when missing: whoever opens them reports why they cannot be read.
    """
    selection = PathFilter() if selection is None else selection
    for path in map(Path, paths):
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                relative = file.relative_to(path)
                hidden = any(part.startswith(".") for part in relative.parts)
                if file.is_file() and not hidden and selection.accepts(relative.as_posix()):
                    yield file, True
        else:
            yield path, False  # load_document reports it when it is missing or not a file
