"""Tokens for BM25: jieba words for Chinese, lower-cased words and whole numbers for the rest.

A regex tokeniser treats a run of Chinese characters as one token, so a question about 转型 never
matches a passage that says 数字化转型工作由信息中心负责: BM25 over such tokens is blind to
Chinese. jieba's search mode (``cut_for_search``) also emits the short words inside long ones
(中华人民共和国 → 中华, 人民, 共和国, …), so a query word matches whatever its surrounding text.

Numbers are what staff ask about most, so they stay whole: ``448.53`` is one token, ``1,234.5``
becomes ``1234.5``, and a percentage yields both ``3.46%`` and ``3.46`` (a query for either form
matches, and one that says ``3.46%`` matches a passage with the percentage more strongly).
Documents and queries must go through the same function, so this is the only place that decides.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Iterator
from hashlib import sha256

from .jieba_dictionary import jieba_version

logger = logging.getLogger(__name__)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


CHINESE_STOPWORDS = _words(
    """
    的 了 是 在 和 与 及 以及 等 等等 或 或者 而 并 且 也 都 就 又 还 被 把 对 从 向 于 以 之 其
    这 那 这个 那个 这些 那些 个 着 过 吗 呢 吧 啊 呀 嘛 哦 哪 哪个 哪些 哪里 哪儿 什么 多少 几
    如何 怎么 怎样 怎么样 为什么 谁 是否 请问 请 一下 我 我们 你 你们 您 他 她 它 他们 她们 它们
    """
)
"""Function words and question words: frequent in questions, no help in finding a passage."""

ENGLISH_STOPWORDS = _words(
    """
    a an the and or but if of to in on at by for with from into as is are was were be been being
    am do does did doing have has had this that these those it its there their they them what
    which who whom whose when where why how not no than then so such can could will would shall
    should may might must i me my we our you your he him his she her s t about
    """
)

RULES_VERSION = 1
"""Bump when the rules below change how a text splits; saved BM25 (``qa.sparse_index``) made
by other rules is rebuilt, not searched with tokens it never saw."""


def _terms_version() -> str:
    stopwords = "\n".join(sorted(CHINESE_STOPWORDS | ENGLISH_STOPWORDS)).encode()
    digest = sha256(stopwords).hexdigest()[:12]
    return f"rules-{RULES_VERSION}/jieba-{jieba_version()}/stop-{digest}"


TERMS_VERSION = _terms_version()
"""What decides this module's tokens: rules, jieba version, stopword lists."""

_CJK_RUN = "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]+"
_NUMBER = r"\d+(?:,\d{3})+(?:\.\d+)?%?(?![a-z0-9])|\d+(?:\.\d+)?%?(?![a-z0-9])"
_WORD = r"[a-z0-9]+(?:['’][a-z]+)*"
_TOKEN = re.compile(f"(?P<cjk>{_CJK_RUN})|(?P<number>{_NUMBER})|(?P<word>{_WORD})")

_lock = threading.Lock()
_cut: Callable[[str], Iterator[str]] | None = None


def _jieba_cut() -> Callable[[str], Iterator[str]]:
    """jieba's search-mode cutter, its dictionary loaded once (``qa.jieba_dictionary``)."""
    global _cut
    if _cut is None:
        with _lock:
            if _cut is None:
                from qa.jieba_dictionary import default_tokenizer

                tokenizer = default_tokenizer()

                def cut(text: str) -> Iterator[str]:
                    return tokenizer.cut_for_search(text, HMM=True)

                _cut = cut
    return _cut


def tokenize_for_search(text: str) -> list[str]:
    """Split ``text`` into BM25 tokens, in order, stopwords and punctuation dropped.

    NFKC first, so full-width digits and letters (３．４６％, ＧＤＰ) tokenise like ASCII ones.

    Example:
        >>> tokenize_for_search("2023年营业收入增长3.46%")
        ['2023', '年', '营业', '收入', '增长', '3.46%', '3.46']
    """
    text = unicodedata.normalize("NFKC", text).lower()
    tokens: list[str] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        piece = match.group()
        if kind == "cjk":
            tokens.extend(w for w in _jieba_cut()(piece) if w not in CHINESE_STOPWORDS)
        elif kind == "number":
            number = piece.replace(",", "")
            tokens.append(number)
            if number.endswith("%"):
                tokens.append(number[:-1])
        else:
            word = re.sub(r"['’]s$", "", piece)
            if word not in ENGLISH_STOPWORDS:
                tokens.append(word)
    return tokens
