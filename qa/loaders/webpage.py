"""HTML: the text a browser shows, with block elements as paragraph breaks.

Parser: BeautifulSoup with the standard library's ``html.parser``. It needs no C library, so it
gives the same tree on every platform and Python build, and it never refuses input: broken
markup is read as well as it can be. ``lxml`` would parse several times faster, but intranet
pages are small next to embedding time, and lxml is present only as a dependency of
python-docx, which this module should not lean on.

What is kept: text nodes outside ``script``, ``style``, ``noscript``, ``template``, ``head``
(and ``svg``, ``math``, ``iframe``, ``object``, elements with the ``hidden`` attribute);
comments and processing instructions are dropped; attributes (inline ``onclick`` handlers,
``title`` tooltips) are never text. Entities are decoded by the parser. Every block element
(``p``, ``div``, headings, list items, table rows, ...) and ``<br>`` ends a line, and lines are
hard breaks for cleaning. Inside a block, whitespace collapses to one space as a browser does,
except that a source line break between two Chinese characters disappears (the CSS rule for
segment breaks in East Asian text), so ``厦门\\n大学`` reads ``厦门大学``. Table cells are joined
by ``" | "`` like DOCX rows; ``<pre>`` keeps its lines.

Bytes are decoded with the charset a BOM or ``<meta>`` declares when it decodes cleanly (the
labels ``gb2312``/``gbk`` mean GB18030 and ``big5`` means Big5-HKSCS, as browsers read them);
otherwise, or without a declaration, ``read_text_file`` detects the encoding as for text files.
"""

from __future__ import annotations

import codecs
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from .registry import RawText, register_loader
from .text import read_text_file

if TYPE_CHECKING:
    from bs4 import Tag

logger = logging.getLogger(__name__)

HIDDEN = frozenset(
    {"script", "style", "noscript", "template", "head", "svg", "math", "iframe", "object"}
)
_BLOCK_NAMES = (
    "address article aside blockquote body caption dd details dialog div dl dt fieldset "
    "figcaption figure footer form h1 h2 h3 h4 h5 h6 header hr html legend li main nav ol p "
    "section summary table tbody tfoot thead tr ul"
)
BLOCKS = frozenset(_BLOCK_NAMES.split())
CELLS = frozenset({"td", "th"})
CELL_SEPARATOR = " | "
_CHARSET_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "big5": "big5hkscs"}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_CJK = "\u2e80-\u2fdf\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_BREAK = re.compile(rf"(?<=[{_CJK}])[ \t\r\f]*\n\s*(?=[{_CJK}])")
_SPACES = re.compile(r"\s+")


def load_html(path: Path) -> RawText:
    """Visible text, one line per block."""
    from bs4 import BeautifulSoup

    html = decode_html(path)
    soup = BeautifulSoup(html, "html.parser")
    return RawText(visible_text(soup), hard_breaks=True)


def decode_html(path: Path) -> str:
    """The page as text: its declared charset if that decodes cleanly, else detection."""
    data = path.read_bytes()
    charset = _declared_charset(data)
    if charset and b"\x00" not in data:
        try:
            return data.decode(charset)
        except UnicodeDecodeError:
            logger.info("%s: declares %s but is not; detecting the encoding", path, charset)
    return read_text_file(path)


def _declared_charset(data: bytes) -> str | None:
    if data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None  # read_text_file honours the BOM
    match = _META_CHARSET.search(data[:4096])
    if not match:
        return None
    label = match.group(1).decode("ascii").lower()
    try:
        name = codecs.lookup(_CHARSET_ALIASES.get(label, label)).name
    except LookupError:
        return None
    return None if name.startswith("utf-16") else name  # a declared UTF-16 without BOM lies


def visible_text(root: Tag) -> str:
    """Walk the tree (iteratively: pages can nest deeper than Python's recursion limit)."""
    from bs4 import NavigableString, Tag

    out: list[str] = []
    stack: list[object] = [root]
    while stack:
        node = stack.pop()
        if node is _LINE_END:
            out.append("\n")
        elif isinstance(node, Tag):
            name = (node.name or "").lower()
            if name in HIDDEN or node.has_attr("hidden"):
                continue
            if name == "br":
                out.append("\n")
            elif name == "pre":
                out.append("\n" + node.get_text() + "\n")
            else:
                if name in CELLS and node.find_previous_sibling(CELLS) is not None:
                    out.append(CELL_SEPARATOR)
                if name in BLOCKS:
                    out.append("\n")
                    stack.append(_LINE_END)
                stack.extend(reversed(node.contents))
        elif type(node) is NavigableString:  # not Comment, Doctype, CData, ...
            out.append(_SPACES.sub(" ", _CJK_BREAK.sub("", str(node))))
    return "".join(out)


_LINE_END = object()
"""Pushed below a block's children: the block's line ends once they are all out."""


register_loader((".html", ".htm", ".xhtml"), load_html)
