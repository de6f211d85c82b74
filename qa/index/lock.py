"""One writer per index directory, and clean-up after a writer that was killed.

Saving replaces the index directory by renames (``qa.index.store.write_index_dir``): a writer
killed midway leaves a ``.<name>.tmp-*`` folder with a partial index, and one killed between the
two renames leaves the old index moved aside as ``.<name>.old-*/<name>`` and nothing at
``<name>``. Neither is ever read as an index. Writers hold an exclusive lock on a sibling
``.<name>.lock`` file while they read, embed and save, so that clean-up never removes the work
of a living writer and two updates of one index cannot interleave; the operating system drops
the lock when a process dies, so a killed writer never blocks the next one.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .store import MANIFEST

logger = logging.getLogger(__name__)

try:  # POSIX advisory locks; elsewhere writers are not serialised (documented limitation)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


@contextmanager
def writer_lock(index_dir: Path) -> Iterator[None]:
    """Hold the exclusive writer lock of ``index_dir`` (waits for another writer to finish)."""
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = index_dir.parent / f".{index_dir.name}.lock"
    with lock_path.open("a") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def recover_interrupted_save(index_dir: Path) -> bool:
    """Put back an index that a killed save had moved aside, and remove leftover folders.

    Call only while holding :func:`writer_lock`. Returns whether an index was put back.
    """
    restored = False
    parent = index_dir.parent
    if not parent.is_dir():
        return False
    if not index_dir.exists():
        for aside in sorted(parent.glob(f".{index_dir.name}.old-*")):
            candidate = aside / index_dir.name
            if (candidate / MANIFEST).is_file():
                os.replace(candidate, index_dir)
                logger.warning(
                    "restored the index %s that an interrupted save had moved aside", index_dir
                )
                restored = True
                break
    for stray in [
        *parent.glob(f".{index_dir.name}.tmp-*"),
        *parent.glob(f".{index_dir.name}.old-*"),
    ]:
        logger.info("removing %s, left over by an interrupted save", stray)
        shutil.rmtree(stray, ignore_errors=True)
    return restored
