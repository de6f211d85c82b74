"""Plain text and Markdown, and decoding text files whatever their encoding.

Office text files arrive in legacy encodings (GBK, Big5) as often as in UTF-8, so decoding tries
the BOMs and UTF-8 first and then asks charset-normalizer, with the Chinese encodings preferred.
The HTML loader decodes through ``read_text_file`` too when a page declares no usable charset.
"""

from __future__ import annotations

import codecs
import logging
import unicodedata
from pathlib import Path

from .registry import DocumentError, RawText, register_loader

logger = logging.getLogger(__name__)


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


def load_plain(path: Path) -> RawText:
    """Plain text and Markdown: the text as is (Markdown markup is left for the reader to see)."""
    return RawText(read_text_file(path))


register_loader((".txt", ".md", ".markdown"), load_plain)
