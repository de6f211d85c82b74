"""Documents sent over HTTP: a safe file name, a size limit, and an atomic write into the corpus.

An upload name comes from a browser or a script and may be anything: ``../../etc/passwd``,
``C:\\Users\\x.txt``, a name with NUL bytes, a hidden ``.bashrc``. Only the last path component
is kept, made of printable characters, with a suffix some loader reads; the file is written to a
temporary name in the upload folder and renamed, so the index watcher never sees half a file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from .errors import LudaoError

logger = logging.getLogger(__name__)

MAX_NAME_CHARS = 120
MAX_NAME_BYTES = 200
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
_RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\.|$)", re.IGNORECASE)


class UploadError(LudaoError):
    """An upload that cannot be stored: bad name, unsupported type, too large, empty."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def safe_upload_name(name: object, allowed_suffixes: Iterable[str]) -> str:
    """The file name to store an upload under, or ``UploadError`` saying why there is none.

    Directory parts (``/`` and ``\\``), control characters and leading dots are removed, so the
    result can never leave the upload folder or hide from the indexer; the suffix must be one a
    loader reads (the check is case-insensitive, the case of the name is kept).
    """
    if not isinstance(name, str):
        raise UploadError("the upload has no file name")
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = name.strip().lstrip(". ").rstrip(". ")
    if not name:
        raise UploadError("the upload's file name is empty or only dots and separators")
    stem, suffix = os.path.splitext(name)
    allowed = {s.lower() for s in allowed_suffixes}
    if suffix.lower() not in allowed:
        raise UploadError(
            f"files of type {suffix or '(none)'!r} are not supported; "
            f"send one of {', '.join(sorted(allowed))}",
            status=415,
        )
    if _RESERVED.match(name):
        stem = f"_{stem}"
    stem = stem[: MAX_NAME_CHARS - len(suffix)] or "document"
    # File systems limit a name's *bytes* (255 on ext4): 120 Chinese characters are 360.
    while len((stem + suffix).encode("utf-8")) > MAX_NAME_BYTES and len(stem) > 1:
        stem = stem[:-1]
    return stem + suffix


def save_upload(
    directory: str | Path,
    name: str,
    chunks: Iterable[bytes],
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
) -> Path:
    """Write ``chunks`` to ``directory / name`` atomically, refusing more than ``max_bytes``.

    ``name`` must come from :func:`safe_upload_name`. An existing file of that name is replaced
    (an upload of a new version); a refused or failed upload leaves nothing behind.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    if target.resolve().parent != directory.resolve():
        raise UploadError(f"refusing to write outside the upload folder: {name!r}")
    fd, tmp_name = tempfile.mkstemp(prefix=".upload-", suffix=".part", dir=directory)
    tmp = Path(tmp_name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise UploadError(
                        f"the file is larger than the upload limit of {max_bytes // 2**20} MiB",
                        status=413,
                    )
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        if size == 0:
            raise UploadError("the file is empty")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    logger.info("stored upload %s (%d bytes)", target, size)
    return target
