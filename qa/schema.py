"""Plain data types that travel through the pipeline.

Every stage hands the next one frozen dataclasses rather than dicts, so a reader of the code can
see which fields exist at each step: Document → Passage → Hit → Answer → Response.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Document:
    """A cleaned document.

    ``text`` is the cleaned text; ``offsets[i]`` is the character offset in the original file of
    ``text[i]`` (one entry per character plus a final end offset), so that passages and answers
    can cite positions in the file a user actually has.
    """

    id: str
    title: str
    text: str
    source: str = ""
    offsets: tuple[int, ...] = ()
    pages: tuple[tuple[int, int], ...] = ()
    """(start offset in ``text``, page number) pairs, for formats that have pages (PDF)."""
    paragraph_gaps: tuple[int, ...] = ()
    """Sorted positions in ``text`` of paragraphs that do not follow the previous one in the file
    (a duplicate between them was dropped, or a new page starts there). Chunking never lets a
    passage straddle one, so a passage's original-file span holds only its own text and its
    page is the page its answer is on."""
    dropped_paragraphs: int = 0
    """How many paragraphs cleaning dropped as duplicates of others."""
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def original_offset(self, position: int) -> int:
        """Map a character position of the cleaned text back to the original file."""
        if not self.offsets:
            return position
        position = max(0, min(position, len(self.offsets) - 1))
        return self.offsets[position]

    def page_at(self, position: int) -> int | None:
        """The page that holds cleaned-text position ``position``, if the format has pages."""
        page = None
        for start, number in self.pages:
            if start > position:
                break
            page = number
        return page


@dataclass(frozen=True)
class Passage:
    """A sentence-aligned slice of a document, the unit that is embedded and retrieved.

    ``start``/``end`` are offsets into the cleaned document text; ``orig_start``/``orig_end`` into
    the original file.
    """

    id: str
    doc_id: str
    title: str
    text: str
    start: int
    end: int
    orig_start: int = 0
    orig_end: int = 0
    page: int | None = None

    @staticmethod
    def make_id(doc_id: str, start: int, text: str) -> str:
        """Deterministic id: the same document chunked the same way gives the same ids."""
        digest = hashlib.sha1(f"{doc_id}\0{start}\0{text}".encode()).hexdigest()[:12]
        return f"{doc_id}:{start}:{digest}"


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its fused score and the ranks it had in each retriever."""

    passage: Passage
    score: float
    dense_rank: int | None = None
    sparse_rank: int | None = None


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class Answer:
    """An extracted answer: ``span`` is in passage characters, ``score`` in [0, 1]."""

    text: str
    score: float
    passage: Passage
    span: Span

    @property
    def doc_start(self) -> int:
        """Start of the answer in the cleaned document text."""
        return self.passage.start + self.span.start


@dataclass(frozen=True)
class Response:
    """What ``Pipeline.ask`` returns: answers best first, the passages they were read from."""

    question: str
    answers: list[Answer]
    hits: list[Hit]
    no_answer: bool
    reader: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    interpreted_as: str | None = None
    """The self-contained question answered when ``question`` was a follow-up that leaned on
    the conversation's history (``qa.conversation``); ``None`` when it stood alone."""

    def to_dict(self) -> dict:
        """The JSON contract of ``ludao ask --json`` and ``POST /api/ask``."""
        return {
            "question": self.question,
            "answers": [
                {
                    "text": a.text,
                    "score": round(a.score, 4),
                    "doc": a.passage.doc_id,
                    "passage_id": a.passage.id,
                    "start": a.span.start,
                    "end": a.span.end,
                    "page": a.passage.page,
                }
                for a in self.answers
            ],
            "no_answer": self.no_answer,
            "passages": [
                {
                    "id": h.passage.id,
                    "doc": h.passage.doc_id,
                    "title": h.passage.title,
                    "text": h.passage.text,
                    "score": round(h.score, 6),
                    "page": h.passage.page,
                    "orig_start": h.passage.orig_start,
                    "orig_end": h.passage.orig_end,
                }
                for h in self.hits
            ],
            "reader": self.reader,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "interpreted_as": self.interpreted_as,
        }


@dataclass(frozen=True, kw_only=True)
class PipelineInfo:
    """What a pipeline has loaded: shown above the chat, returned by ``/healthz``, stored with
    feedback. A field that is ``None`` was not known to whoever built the pipeline (a test or a
    one-file ``ludao ask``) and is left out of :meth:`to_dict`; the order of the fields is the
    order of the ``/healthz`` keys."""

    corpus: tuple[str, ...] | None = None
    documents: int | None = None
    passages: int | None = None
    embedding_model: str | None = None
    index_dir: str | None = None
    reader: str
    generation: int | None = None
    """Set by ``qa.reloading.ReloadablePipeline``: how many pipelines it has served so far."""

    def to_dict(self) -> dict[str, object]:
        data = {k: v for k, v in asdict(self).items() if v is not None}
        if self.corpus is not None:
            data["corpus"] = list(self.corpus)
        return data
