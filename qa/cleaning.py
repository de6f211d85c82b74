"""Clean extracted text and keep a map from every cleaned character back to the original.

Real documents arrive hard-wrapped mid-word, with headings glued to the line before them and
paragraphs pasted two or three times. Retrieval and reading work on the cleaned text, but
citations must point into the file the user has, so cleaning keeps a per-character map back to
the original. Cleaning knows nothing of file formats: loaders (``qa.loaders``) extract the text,
``qa.documents`` runs this on it.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field

from qa.chunking import CLOSERS, ends_sentence

HEADING_MAX_WIDTH = 60
"""Display columns (a Chinese character is two) above which a line is never taken for a heading."""
HEADING_SURE_WIDTH = 16
"""A line this short, without punctuation, is a heading whatever follows it."""
HEADING_RATIO = 0.6
"""Otherwise it is a heading only when at most this fraction of the width of the next line."""

NEAR_DUPLICATE_RATIO = 0.9
NEAR_DUPLICATE_MIN_CHARS = 16
"""Shorter paragraphs, and headings, are dropped only when exactly equal to an earlier one (so a
title is not lost because the text cites it)."""

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


@dataclass(frozen=True)
class CleanedText:
    """What :func:`clean` returns: the text, its map back to the raw text, and what was dropped.

    ``offsets`` is as in :func:`clean_text`. ``dropped`` counts the duplicate paragraphs left out;
    ``gaps`` are the positions in ``text`` of paragraphs that did not follow the previous kept
    one in the raw text (what lay between was dropped), so chunking can avoid straddling them.
    """

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
    cleaned = clean(raw)
    return cleaned.text, cleaned.offsets


def clean(raw: str, *, hard_breaks: bool = False) -> CleanedText:
    """Clean ``raw`` as :func:`clean_text` does, keeping the duplicate count and the gaps.

    With ``hard_breaks`` every line is its own paragraph (step 2 only flags headings): loaders
    set it for formats whose line breaks are paragraph ends (see ``qa.loaders.RawText``).
    """
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
    return CleanedText(out.text, [*out.offsets, end], len(paragraphs) - len(kept), gaps)


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
