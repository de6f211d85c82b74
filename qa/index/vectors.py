"""The raw vectors file (``vectors.npy``): written, hashed and verified.

Kept beside the FAISS file because not every FAISS structure can give its vectors back, and an
incremental update reuses the vector of every passage whose text did not change. Its SHA-256 is
in the manifest, so a file altered or swapped after indexing is never reused.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from qa.errors import IndexCorruptError

REBUILD_HINT = "rebuild it with `ludao index --rebuild`"
"""The fix every damaged-index message ends with (here, the lowest module that raises one)."""


def vectors_digest(vectors: np.ndarray) -> str:
    """SHA-256 of the raw float32 rows: the manifest's check on ``vectors.npy``."""
    return hashlib.sha256(np.ascontiguousarray(vectors, dtype=np.float32).data).hexdigest()


def check_vectors_header(path: Path, count: int, dimension: int) -> None:
    """Cheap check of ``vectors.npy``: float32 ``(count, dimension)`` by its header and size.

    Raises:
        IndexCorruptError: missing, not a NumPy file, or another shape or type.
    """
    try:
        with path.open("rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            data_bytes = os.fstat(fh.fileno()).st_size - fh.tell()
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"{path} is missing or unreadable; {REBUILD_HINT}") from exc
    if shape != (count, dimension) or dtype != np.float32 or fortran:
        raise IndexCorruptError(
            f"{path} holds {dtype} vectors of shape {shape}, the manifest says float32 "
            f"({count}, {dimension}); {REBUILD_HINT}"
        )
    if data_bytes != count * dimension * 4:
        raise IndexCorruptError(
            f"{path} is truncated ({data_bytes} bytes of vectors, expected "
            f"{count * dimension * 4}); {REBUILD_HINT}"
        )


def read_vectors(path: Path, count: int, dimension: int, digest: str | None) -> np.ndarray:
    """Read ``vectors.npy`` whole and verify its shape and (if given) its SHA-256.

    Raises:
        IndexCorruptError: the file is missing, truncated, of another shape, or altered.
    """
    check_vectors_header(path, count, dimension)
    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise IndexCorruptError(f"{path} is truncated or unreadable; {REBUILD_HINT}") from exc
    if digest is not None and vectors_digest(vectors) != digest:
        raise IndexCorruptError(
            f"{path} does not match the manifest's checksum (altered after indexing?); "
            f"{REBUILD_HINT}"
        )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def write_vectors(path: Path, vectors: np.ndarray) -> None:
    """Write ``vectors`` as a NumPy file and fsync it (the folder is renamed into place later)."""
    with path.open("wb") as fh:
        np.save(fh, vectors, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
