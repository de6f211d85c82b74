"""Load files into cleaned ``Document`` objects that remember where each character came from.

Real documents arrive in legacy encodings (GBK, Big5), hard-wrapped mid-word, with paragraphs
pasted two or three times. Retrieval and reading work on the cleaned text, but citations must
point into the file the user has, so cleaning keeps a per-character map back to the original.

Loaders are registered by file suffix. A loader turns a path into ``RawText`` (text plus the
offsets where pages start, for paged formats); everything after that is shared, so a PDF, DOCX
or HTML loader only has to extract text. Plain text and Markdown are loaded here; the other
formats live in ``qa.loaders`` (one module each), imported at the end of this module so that
importing ``qa.documents`` is enough to have them all registered.
"""

from __future__ import annotations

import codecs
import dataclasses
import difflib
import logging
import re
import unicodedata
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from qa.chunking import CLOSERS, GAPS_KEY, ends_sentence
from qa.errors import LudaoError
from qa.ingest import IngestReport, PathFilter, SkipReason
from qa.schema import Document

logger = logging.getLogger(__name__)

HEADING_MAX_WIDTH = 60
"""Display columns (a Chinese character is two) above which a line is never taken for a heading."""
HEADING_SURE_WIDTH = 16
"""A line this short, without punctuation, is a heading whatever follows it."""
HEADING_RATIO = 0.6
"""Otherwise it is a heading only when at most this fraction of the width of the next line."""

TITLE_MAX_CHARS = 60
NEAR_DUPLICATE_RATIO = 0.9
NEAR_DUPLICATE_MIN_CHARS = 16
"""Shorter paragraphs, and headings, are dropped only when exactly equal to an earlier one (so a
title is not lost because the text cites it)."""


class DocumentError(LudaoError):
    """A file that cannot be turned into a document (binary, undecodable, unsupported).

    ``reason`` is the human-readable explanation; ``kind`` the category that ingestion reports
    count by (see ``qa.ingest.SkipReason``).
    """

    def __init__(self, path: str | Path, reason: str, kind: SkipReason = "unreadable") -> None:
        self.path = str(path)
        self.reason = reason
        self.kind: SkipReason = kind
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class RawText:
    """What a loader extracts: text as found, and where pages 1, 2, ... start in it (if paged).

    ``hard_breaks`` says that every line break in ``text`` ends a paragraph (DOCX paragraphs,
    HTML blocks, table rows), so cleaning must not join lines as it does for hard-wrapped plain
    text and PDF lines, where a break usually falls inside a sentence.
    """

    text: str
    page_starts: tuple[int, ...] = ()
    hard_breaks: bool = False


Loader = Callable[[Path], RawText]
_LOADERS: dict[str, Loader] = {}


def register_loader(suffixes: str | Iterable[str], func: Loader) -> Loader:
    """Use ``func`` for files ending in ``suffixes`` (``".pdf"`` or ``"pdf"``, any case).

    Returns ``func``, so it can also be used as ``register_loader(".x", f)`` at module level by
    the module that defines a format. A later registration for a suffix replaces an earlier one.
    """
    for suffix in [suffixes] if isinstance(suffixes, str) else suffixes:
        _LOADERS["." + suffix.lower().lstrip(".")] = func
    return func


def registered_suffixes() -> frozenset[str]:
    """Suffixes (lower case, with the dot) that ``load_documents`` picks up in folders."""
    return frozenset(_LOADERS)


def read_text_file(path: str | Path) -> str:
    """Decode a text file: UTF-8 (BOM or not), UTF-16 with BOM, else detect GBK/GB18030/Big5.

    Raises ``DocumentError`` for binary files (NUL bytes, many control characters) and for bytes
    that no encoding explains, so callers can skip them with a clear message.
    """
    path = Path(path)
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DocumentError(path, "invalid UTF-16", "undecodable") from exc
    if b"\x00" in data:
        raise DocumentError(path, "binary file (contains NUL bytes)", "binary")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = _detect_encoding(path, data)
    controls = sum(1 for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n\r\f\v")
    if controls > 0.05 * len(text):
        raise DocumentError(path, "binary file (control characters)", "binary")
    return text


_CHINESE = ["gb18030", "big5"]
CHINESE_LOOSE_MESS = 0.3
"""charset-normalizer's mess ratio allowed on the last try (its default is 0.2)."""


def _detect_encoding(path: Path, data: bytes) -> str:
    try:
        from charset_normalizer import from_bytes
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise DocumentError(path, "not UTF-8, and charset-normalizer is not installed") from exc
    # Chinese encodings first: unrestricted detection mistakes short GBK text for cp949 etc.
    match = (
        from_bytes(data, cp_isolation=_CHINESE).best()
        or from_bytes(data).best()
        # Short GB18030 text dense in Tibetan, Mongolian or Yi letters next to Chinese looks
        # "messy" to the detector (mixed scripts), though it decodes exactly: last, a looser
        # mess threshold for the Chinese encodings only, once nothing else fits.
        or from_bytes(data, cp_isolation=_CHINESE, threshold=CHINESE_LOOSE_MESS).best()
    )
    if match is None:
        raise DocumentError(
            path, "undecodable: not UTF-8, GBK/GB18030, Big5 or a known encoding", "undecodable"
        )
    logger.info("%s: decoded as %s", path, match.encoding)
    return str(match)


def _load_plain(path: Path) -> RawText:
    """Plain text and Markdown: the text as is (Markdown markup is left for the reader to see)."""
    return RawText(read_text_file(path))


register_loader((".txt", ".md", ".markdown"), _load_plain)


# --- cleaning -------------------------------------------------------------------------------

_NEWLINES = "\n\r\x0b\x0c\x85\u2028\u2029"
_CJK = re.compile(
    r"[\u2e80-\u2fdf\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]"
)
_CLAUSE_PUNCT = re.compile(r"[。！？；…，、：,;:!?]|\.(?:\s|$)")
_ENUMERATOR = re.compile(
    r"^(?:第[一二三四五六七八九十百零\d]+[章节条部分篇]|[一二三四五六七八九十]+、"
    r"|[（(][一二三四五六七八九十\d]+[)）]|\d+(?:\.\d+)*[.、]?)\s*"
)
_BLOCK_START = re.compile(r"(?:#{1,6}|[-*+>]|\d{1,3}[.)])\s|```|\|")


@dataclass
class _Piece:
    """Cleaned text being built, with the original offset of each character."""

    parts: list[str] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add(self, text: str, offset: int) -> None:
        self.parts.append(text)
        self.offsets.extend([offset] * len(text))

    def extend(self, other: _Piece) -> None:
        self.parts.extend(other.parts)
        self.offsets.extend(other.offsets)


@dataclass
class _Cleaned:
    text: str
    offsets: list[int]
    dropped: int
    gaps: list[int]


def clean_text(raw: str) -> tuple[str, list[int]]:
    """Clean ``raw`` and map every cleaned character back to ``raw``.

    Returns ``(text, offsets)`` with ``raw[offsets[i]] == text[i]`` for every character that was
    kept as is; a space or paragraph break inserted by cleaning maps to the original whitespace
    (or the gap) it replaces. ``offsets`` has one more entry: the end of the last kept character.

    Steps, all generic:

    1. Lines: any newline convention; control and format characters (zero-width spaces, BOMs)
       removed; runs of whitespace become one space; lines trimmed; blank lines ignored.
    2. Paragraphs: a line continues on the next non-empty line (blank lines between or not)
       unless it ends a sentence (``。！？；…`` or ``.!?;``, closing quotes allowed after), the
       next line starts a Markdown block (``#``, list item, quote, table, fence), or either
       line is a heading. Joining inserts nothing in Chinese text, where lines are cut anywhere
       (``核``/``心理念``, even inside numbers), and one space between Latin words (none after
       a hyphen).

       A heading is a Markdown ``#`` line, or a line (not the last) of at most 30 Chinese
       characters (60 columns) with no sentence or clause punctuation (``。，、：；`` etc.; a
       leading enumerator such as ``一、`` or ``（二）`` is allowed) that is either very short
       (at most 8 characters) or starts a block (it is the first line, or the line before ends
       a sentence or is itself short and bare) and is followed by a heading or by a line at
       least 1/0.6 times as wide. Why: a wrapped line is about as wide as the next one, or
       follows an unfinished line, or holds a comma, so it still joins; a title such as
       ``一张蓝图绘到底`` stays apart even when the line before it was cut off at a page end:
       that line is left unfinished rather than glued to the title into a sentence that never
       existed.
    3. Duplicates: a paragraph is dropped when its normalised form (letters and digits only)
       equals an earlier kept one, or (both 16+ characters and not headings) is contained in one
       or is at least 90% similar to one (``difflib`` ratio). When a later paragraph contains an
       earlier kept one, the later, fuller one is kept and the earlier dropped (the cut-off copy
       of a paragraph may come first). Otherwise the first occurrence wins.

    Paragraphs are separated by ``"\\n\\n"``.
    """
    cleaned = _clean(raw)
    return cleaned.text, cleaned.offsets


def _clean(raw: str, *, hard_breaks: bool = False) -> _Cleaned:
    lines = _lines(raw)
    if hard_breaks:
        paragraphs, headings = lines, _heading_flags([line.text for line in lines])
    else:
        paragraphs, headings = _join_lines(lines)
    kept = _dedupe([p.text for p in paragraphs], headings)
    out = _Piece()
    gaps: list[int] = []
    previous = -1
    for index in kept:
        if out.offsets:
            out.add("\n\n", out.offsets[-1] + 1)
            if index != previous + 1:
                gaps.append(len(out.offsets))
        out.extend(paragraphs[index])
        previous = index
    end = out.offsets[-1] + 1 if out.offsets else 0
    return _Cleaned(out.text, [*out.offsets, end], len(paragraphs) - len(kept), gaps)


def _lines(raw: str) -> list[_Piece]:
    """Non-empty lines of ``raw`` with whitespace collapsed and control characters removed."""
    lines: list[_Piece] = []
    line = _Piece()
    space_at: int | None = None
    for i, char in enumerate(raw):
        if char in _NEWLINES:
            if line.offsets:
                lines.append(line)
            line, space_at = _Piece(), None
        elif char.isspace():
            if space_at is None:
                space_at = i
        elif unicodedata.category(char) not in ("Cc", "Cf"):
            if space_at is not None and line.offsets:
                line.add(" ", space_at)
            space_at = None
            line.add(char, i)
    if line.offsets:
        lines.append(line)
    return lines


def _join_lines(lines: list[_Piece]) -> tuple[list[_Piece], list[bool]]:
    """Group lines into paragraphs (rule in ``clean_text`` step 2); flag heading paragraphs."""
    texts = [line.text for line in lines]
    headings = _heading_flags(texts)
    paragraphs: list[_Piece] = []
    paragraph_headings: list[bool] = []
    for i, line in enumerate(lines):
        if i == 0 or not _continues(texts[i - 1], texts[i], headings[i - 1] or headings[i]):
            paragraphs.append(line)
            paragraph_headings.append(headings[i])
            continue
        current = paragraphs[-1]
        current.add(_joiner(texts[i - 1], texts[i]), current.offsets[-1] + 1)
        current.extend(line)
    return paragraphs, paragraph_headings


def _continues(previous: str, line: str, heading: bool) -> bool:
    return not (heading or ends_sentence(previous) or _BLOCK_START.match(line))


def _heading_flags(lines: list[str]) -> list[bool]:
    """Which lines look like headings (rule in ``clean_text`` step 2)."""
    widths = [_width(line) for line in lines]
    short = [_short_without_punctuation(line) for line in lines]
    flags = [False] * len(lines)
    for i in reversed(range(len(lines) - 1)):  # decided from the bottom: it looks at the next
        if lines[i].startswith("#"):
            flags[i] = bool(re.match(r"#{1,6}\s", lines[i]))
        elif short[i]:
            starts_block = i == 0 or short[i - 1] or ends_sentence(lines[i - 1])
            shorter_than_next = flags[i + 1] or widths[i] <= HEADING_RATIO * widths[i + 1]
            flags[i] = widths[i] <= HEADING_SURE_WIDTH or (starts_block and shorter_than_next)
    return flags


def _width(text: str) -> int:
    """Display columns: Chinese characters count two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _short_without_punctuation(line: str) -> bool:
    body = _ENUMERATOR.sub("", line, count=1)
    return (
        _width(line) <= HEADING_MAX_WIDTH
        and any(c.isalnum() for c in body)
        and not _CLAUSE_PUNCT.search(body.rstrip(CLOSERS))
    )


def _joiner(before: str, after: str) -> str:
    """What replaces a line break: nothing in Chinese text, a space between Latin words."""
    if _CJK.search(before[-8:]) or _CJK.search(after[:8]) or before.endswith("-"):
        return ""
    return " "


def _normalise(text: str) -> str:
    return "".join(c for c in text if c.isalnum()).lower()


def _dedupe(paragraphs: list[str], headings: list[bool]) -> list[int]:
    """Indices of the paragraphs to keep, in order (rule in ``clean_text`` step 3).

    Fuzzy comparisons only run against kept paragraphs that share a 4-character shingle, so a
    long document is not compared pair by pair.
    """
    seen: set[str] = set()
    kept: dict[int, str] = {}  # fuzzy-comparable kept paragraphs: index -> normalised text
    keep: set[int] = set()
    postings: dict[str, set[int]] = defaultdict(set)
    for index, (paragraph, heading) in enumerate(zip(paragraphs, headings, strict=True)):
        norm = _normalise(paragraph)
        if norm and norm in seen:
            continue
        seen.add(norm)
        if len(norm) >= NEAR_DUPLICATE_MIN_CHARS and not heading:
            shingles = {norm[i : i + 4] for i in range(len(norm) - 3)}
            candidates = {c for s in shingles for c in postings[s] if c in kept}
            if any(_is_near_duplicate(norm, kept[c]) for c in candidates):
                continue
            for contained in [c for c in candidates if kept[c] in norm]:
                del kept[contained]
                keep.discard(contained)
            kept[index] = norm
            for shingle in shingles:
                postings[shingle].add(index)
        keep.add(index)
    return sorted(keep)


def _is_near_duplicate(norm: str, other: str) -> bool:
    if norm in other:
        return True
    matcher = difflib.SequenceMatcher(None, norm, other, autojunk=False)
    return (
        matcher.real_quick_ratio() >= NEAR_DUPLICATE_RATIO
        and matcher.quick_ratio() >= NEAR_DUPLICATE_RATIO
        and matcher.ratio() >= NEAR_DUPLICATE_RATIO
    )


# --- documents ------------------------------------------------------------------------------


def load_document(path: str | Path) -> Document:
    """Load, decode and clean one file with the loader registered for its suffix.

    ``id`` is the file name stem (characters other than letters, digits, ``_.-`` replaced by
    ``_``), so it is stable across runs and machines; ``title`` is the first paragraph when it
    is a short line that does not end a sentence (a title), else the stem. ``meta`` holds
    ``dropped_paragraphs`` (a count) and ``GAPS_KEY`` (see ``qa.chunking``).

    For paged formats, page starts are added to the gaps too: a passage then never runs from
    one page into the next, except within a paragraph that itself continues across the page
    break, so a passage's page (where it starts) is the page its answer is on. Without this, a
    short page 1 is packed with page 2 and an answer from page 2 is cited as "p. 1".

    Raises ``DocumentError`` (with a ``kind``) for anything wrong with the file; a loader that
    fails in an unforeseen way on a damaged file is reported as ``broken``, never a traceback.
    """
    path = Path(path)
    if not path.exists():
        raise DocumentError(path, "no such file or folder", "missing")
    loader = _LOADERS.get(path.suffix.lower())
    if loader is None:
        raise DocumentError(
            path, f"no loader for {path.suffix or 'suffix-less'} files", "unsupported"
        )
    if not path.is_file():
        raise DocumentError(path, "not a file", "unreadable")
    if path.stat().st_size == 0:
        raise DocumentError(path, "empty file", "empty")
    try:
        raw = loader(path)
    except (DocumentError, OSError):
        raise
    except Exception as exc:  # third-party parsers raise anything on hostile input
        logger.debug("loader failed on %s", path, exc_info=True)
        raise DocumentError(path, f"broken: {type(exc).__name__}: {exc}", "broken") from exc
    cleaned = _clean(raw.text, hard_breaks=raw.hard_breaks)
    if not cleaned.text:
        raise DocumentError(path, "no text", "empty")
    last = len(cleaned.offsets) - 1  # the final entry is the end offset, not a character
    pages = tuple(
        (bisect_left(cleaned.offsets, start, 0, last), number)
        for number, start in enumerate(raw.page_starts, start=1)
    )
    logger.info(
        "loaded %s: %d characters, %d duplicate paragraphs dropped",
        path,
        len(cleaned.text),
        cleaned.dropped,
    )
    return Document(
        id=re.sub(r"[^\w.-]+", "_", path.stem) or "document",
        title=_title(cleaned.text, path.stem),
        text=cleaned.text,
        source=str(path),
        offsets=tuple(cleaned.offsets),
        pages=pages,
        meta={
            "dropped_paragraphs": str(cleaned.dropped),
            GAPS_KEY: " ".join(map(str, sorted({*cleaned.gaps, *(s for s, _ in pages if s)}))),
        },
    )


def _title(text: str, fallback: str) -> str:
    first = text.split("\n\n", 1)[0].lstrip("#").strip()
    if first and len(first) <= TITLE_MAX_CHARS and not ends_sentence(first):
        return first
    return fallback


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
    selection = PathFilter.of(include, exclude)
    seen: dict[str, int] = {}
    for path, in_folder in _files(paths_or_dirs, selection):
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


def scan_documents(
    paths_or_dirs: str | Path | Iterable[str | Path],
    *,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
) -> tuple[list[Document], IngestReport]:
    """Load like :func:`load_documents` and return the documents with the per-file report."""
    report = IngestReport()
    documents = list(load_documents(paths_or_dirs, include=include, exclude=exclude, report=report))
    return documents, report


def _os_error(path: Path, exc: OSError) -> DocumentError:
    return DocumentError(path, exc.strerror or str(exc), "unreadable")


def _files(paths: Iterable[str | Path], selection: PathFilter) -> Iterator[tuple[Path, bool]]:
    """``(path, found_in_a_folder)`` for every file to try, missing paths included."""
    for path in map(Path, paths):
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                relative = file.relative_to(path)
                hidden = any(part.startswith(".") for part in relative.parts)
                if file.is_file() and not hidden and selection.accepts(relative.as_posix()):
                    yield file, True
        else:
            yield path, False  # load_document reports it when it is missing or not a file


# Format loaders register themselves on import; they import their parsers lazily, so this
# costs a few small modules. Placed last because they import the names defined above.
import qa.loaders  # noqa: E402, F401
