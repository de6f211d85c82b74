"""jieba's prefix dictionary, cached under ``$LUDAO_HOME`` and read in one piece.

jieba builds its prefix dictionary (~0.5 million words and word prefixes) from ``dict.txt`` on
first use, about 3 s, and caches it with ``marshal`` as ``jieba.cache`` in the system temp dir.
Two things about that cache matter to a server:

- **Where it lives.** ``/tmp`` is writable by every user of the host. Whoever writes
  ``/tmp/jieba.cache`` first decides how this server splits Chinese (and so what BM25 finds), and
  ``marshal`` is documented as unsafe for data from an untrusted source. Ours lives in
  ``$LUDAO_HOME/jieba`` (created private to its user), beside the converted models and indexes.
- **How it is read.** jieba calls ``marshal.load`` on the open file, which reads object by object;
  reading the file first and calling ``marshal.loads`` on the bytes is about 3x faster (0.21 s vs
  0.67 s here), and this load sits on the path of a server's first answer.

The cache is named by jieba's version, so an upgrade with another dictionary rebuilds it. A cache
that does not read back as ``(dict, int)`` is removed and rebuilt rather than trusted.
"""

from __future__ import annotations

import logging
import marshal
import threading
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jieba

logger = logging.getLogger(__name__)

_lock = threading.Lock()


def cache_dir() -> Path:
    """``$LUDAO_HOME/jieba``: this user's prefix dictionary, not the shared temp dir's."""
    from qa.config import ludao_home

    return ludao_home() / "jieba"


def jieba_version() -> str:
    """The installed jieba's version (its dictionary comes with it), or ``"unknown"``."""
    try:
        return version("jieba")
    except PackageNotFoundError:
        return "unknown"


def cache_name() -> str:
    """File name of the cached prefix dictionary: one per jieba version."""
    return f"prefix-dict-jieba-{jieba_version()}.marshal"


def _read_cache(path: Path) -> tuple[dict[str, int], int] | None:
    """The cached ``(FREQ, total)``, or ``None`` (after removing the file) when it is not one."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        freq, total = marshal.loads(data)
        if not isinstance(freq, dict) or not freq or not isinstance(total, int) or total <= 0:
            raise ValueError("not a (dict, int) pair")
    except (ValueError, EOFError, TypeError) as exc:
        logger.warning("jieba's cached prefix dictionary %s is unreadable (%s)", path, exc)
        path.unlink(missing_ok=True)
        return None
    return freq, total


def initialise(tokenizer: jieba.Tokenizer, directory: Path | None = None) -> jieba.Tokenizer:
    """``tokenizer`` with jieba's default dictionary loaded from (or built into) ``directory``.

    Safe to call from several threads and more than once: the first call does the work.
    """
    with _lock:
        if tokenizer.initialized:
            return tokenizer
        directory = directory or cache_dir()
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:  # jieba then builds in memory and logs that it cannot cache
            logger.warning("cannot create %s for jieba's cache: %s", directory, exc)
        tokenizer.tmp_dir = str(directory)
        # A dictionary of the user's own (jieba.set_dictionary) keeps jieba's naming of its cache.
        cached = None
        if tokenizer.dictionary is None:
            tokenizer.cache_file = cache_name()
            cached = _read_cache(directory / tokenizer.cache_file)
        if cached is not None:
            tokenizer.FREQ, tokenizer.total = cached
            tokenizer.initialized = True
        else:
            logger.info("building jieba's prefix dictionary into %s (once)", directory)
            tokenizer.initialize()  # builds from dict.txt and writes the cache in tmp_dir
    return tokenizer


def default_tokenizer() -> jieba.Tokenizer:
    """jieba's process-wide tokenizer (``jieba.cut`` and friends), initialised as above."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return initialise(jieba.dt)
