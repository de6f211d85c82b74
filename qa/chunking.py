"""Split cleaned documents into sentences and pack them into retrieval passages.

Passages are what gets embedded, retrieved and read, so they must hold whole sentences (an answer
cut in half cannot be extracted), stay small enough for the reader's window, and keep exact offsets
back into the document: ``passage.text == doc.text[passage.start:passage.end]``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from qa.schema import Document, Passage

logger = logging.getLogger(__name__)

STOPS = "。！？；…"
"""Chinese sentence stops; runs such as ``……`` or ``！？`` count as one stop."""

CLOSERS = "”’」』）)》】〕〉\"'"
"""Closing quotes and brackets that stay with the sentence they follow (``。”`` ends a sentence)."""

_PARAGRAPH = re.compile(r"\S(?:.*?\S)?(?=\s*\n[^\S\n]*\n|\s*$)", re.DOTALL)
_END = re.compile(rf"[{STOPS}]+[{CLOSERS}]*|[.!?;]+[{CLOSERS}]*")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")
_LAST_WORD = re.compile(r"([A-Za-z][A-Za-z.]*)$")
_ABBREVIATIONS = {"e.g", "i.e", "etc", "vs", "cf", "al", "fig", "no", "approx", "inc", "ltd"}
_ABBREVIATIONS |= {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "co"}
_CLAUSE = "，,；;：:、"
_TOKEN_CHARS = re.compile(r"[0-9A-Za-z.,%]{2}")


def ends_sentence(text: str) -> bool:
    """Whether ``text`` ends with a sentence stop, possibly followed by closing quotes."""
    text = text.rstrip().rstrip(CLOSERS)
    return bool(text) and (text[-1] in STOPS or text[-1] in ".!?;")


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """Spans of the paragraphs of ``text`` (separated by blank lines), without outer whitespace."""
    return [m.span() for m in _PARAGRAPH.finditer(text)]


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans into ``text``, stripped of surrounding whitespace.

    A sentence ends at a Chinese stop (``。！？；…``, runs like ``……`` included), at English
    ``.!?;`` followed by whitespace or the end of the paragraph (so ``3.46%`` and ``e.g.`` do not
    split, nor does a full stop before a lower-case word), and always at a paragraph break. Closing
    quotes and brackets after a stop belong to the sentence they close. Together the spans cover
    every non-whitespace character of ``text``.
    """
    spans: list[tuple[int, int]] = []
    for para_start, para_end in paragraph_spans(text):
        cursor = para_start
        for match in _END.finditer(text, para_start, para_end):
            if match.start() < cursor or not _is_sentence_end(text, match, para_end):
                continue
            _add_stripped(spans, text, cursor, match.end())
            cursor = match.end()
        _add_stripped(spans, text, cursor, para_end)
    return spans


def _is_sentence_end(text: str, match: re.Match[str], para_end: int) -> bool:
    """Decide whether a stop found by ``_END`` really ends a sentence."""
    mark = match.group()[0]
    if mark in STOPS:
        return True
    after = match.end()
    followed_by_space = after >= para_end or text[after].isspace()
    if mark != ".":
        # '!', '?', ';' typed half-width inside Chinese text still end the sentence.
        return followed_by_space or (
            match.start() > 0 and bool(_CJK.match(text[match.start() - 1]))
        )
    if not followed_by_space:
        return False
    word = _LAST_WORD.search(text, max(0, match.start() - 20), match.start())
    if word and (len(word.group(1)) == 1 or word.group(1).lower() in _ABBREVIATIONS):
        return False
    rest = text[after:para_end].lstrip()
    return not (rest and rest[0].isascii() and rest[0].islower())


def _add_stripped(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        start += len(piece) - len(piece.lstrip())
        spans.append((start, start + len(stripped)))


@dataclass(frozen=True)
class _Unit:
    """A sentence (or a piece of an over-long one) with the paragraph and region it belongs to."""

    start: int
    end: int
    paragraph: int
    region: int


def chunk(
    doc: Document,
    *,
    max_chars: int = 300,
    min_chars: int = 80,
    overlap_sentences: int = 1,
) -> list[Passage]:
    """Pack whole sentences of ``doc`` into passages of at most ``max_chars`` characters.

    Rules, in order of priority:

    - every non-whitespace character of ``doc.text`` lies in at least one passage;
    - a passage never crosses a gap where duplicate text was dropped or a page starts
      (``doc.paragraph_gaps``), so its original-file span holds only its own text;
    - a sentence longer than ``max_chars`` is cut at the last clause mark (，；：、) that fits, or
      hard at ``max_chars`` (moved back so a number such as ``448.53`` is not cut);
    - a passage that already holds ``min_chars`` ends at a paragraph break, so passages follow
      paragraphs; shorter paragraphs (headings, one-liners) are packed with their neighbours;
    - when a passage ends inside a paragraph, the next one repeats its last
      ``overlap_sentences`` sentences, so an answer near the cut is whole in one of them;
    - a passage shorter than ``min_chars`` is merged with a neighbour when the result fits.

    Lengths are ``end - start`` in the document text, paragraph breaks included.
    """
    if max_chars < 1 or not 0 <= min_chars <= max_chars or overlap_sentences < 0:
        raise ValueError("need max_chars >= 1, 0 <= min_chars <= max_chars, overlap_sentences >= 0")
    units = _units(doc, max_chars)
    spans = _merge_small(
        _pack(units, max_chars, min_chars, overlap_sentences), max_chars, min_chars
    )
    passages = []
    for start, end, _ in spans:
        text = doc.text[start:end]
        passages.append(
            Passage(
                id=Passage.make_id(doc.id, start, text),
                doc_id=doc.id,
                title=doc.title,
                text=text,
                start=start,
                end=end,
                orig_start=doc.original_offset(start),
                orig_end=doc.original_offset(end - 1) + 1,
                page=doc.page_at(start),
            )
        )
    logger.debug("chunked %s into %d passages", doc.id, len(passages))
    return passages


def _units(doc: Document, max_chars: int) -> list[_Unit]:
    """Sentences of ``doc`` tagged with paragraph and region, over-long ones cut to fit."""
    gaps = sorted(doc.paragraph_gaps)
    units: list[_Unit] = []
    region = 0
    for number, (para_start, para_end) in enumerate(paragraph_spans(doc.text)):
        while gaps and gaps[0] <= para_start:
            gaps.pop(0)
            region += 1 if units else 0
        for start, end in split_sentences(doc.text[para_start:para_end]):
            for piece in _cut_long(doc.text, para_start + start, para_start + end, max_chars):
                units.append(_Unit(*piece, paragraph=number, region=region))
    return units


def _cut_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut one sentence into pieces of at most ``max_chars``, preferring clause boundaries."""
    pieces: list[tuple[int, int]] = []
    while end - start > max_chars:
        window = text[start : start + max_chars + 1]
        cut = max(window.rfind(mark, 0, max_chars) for mark in _CLAUSE) + 1
        if cut <= max_chars // 3:
            cut = max_chars
            # Do not cut inside a number or a Latin word: answers must come back whole.
            while cut > max_chars // 2 + 1 and _TOKEN_CHARS.match(window[cut - 1] + window[cut]):
                cut -= 1
        _add_stripped(pieces, text, start, start + cut)
        start += cut
    _add_stripped(pieces, text, start, end)
    return pieces


def _pack(
    units: list[_Unit], max_chars: int, min_chars: int, overlap: int
) -> list[tuple[int, int, int]]:
    """Greedy packing of units into ``(start, end, region)`` spans; see ``chunk`` for the rules."""
    spans: list[tuple[int, int, int]] = []
    current: list[_Unit] = []
    for unit in units:
        if current:
            first, last = current[0], current[-1]
            same_paragraph = unit.paragraph == last.paragraph
            if (
                unit.region != last.region
                or unit.end - first.start > max_chars
                or (not same_paragraph and last.end - first.start >= min_chars)
            ):
                spans.append((first.start, last.end, last.region))
                keep = min(overlap, len(current) - 1) if same_paragraph else 0
                while keep and (
                    current[-keep].paragraph != unit.paragraph
                    or unit.end - current[-keep].start > max_chars
                ):
                    keep -= 1
                current = current[len(current) - keep :] if keep else []
        current.append(unit)
    if current:
        spans.append((current[0].start, current[-1].end, current[-1].region))
    return spans


def _merge_small(
    spans: list[tuple[int, int, int]], max_chars: int, min_chars: int
) -> list[tuple[int, int, int]]:
    """Merge a passage shorter than ``min_chars`` into its predecessor when the union fits."""
    merged: list[tuple[int, int, int]] = []
    for start, end, region in spans:
        if merged:
            prev_start, prev_end, prev_region = merged[-1]
            small = end - start < min_chars or prev_end - prev_start < min_chars
            if small and region == prev_region and end - prev_start <= max_chars:
                merged[-1] = (prev_start, max(end, prev_end), region)
                continue
        merged.append((start, end, region))
    return merged
