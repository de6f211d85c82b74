"""A throwaway PostgreSQL for tests: Debian's binaries, ``initdb`` + ``pg_ctl`` in a temp dir.

Run as the ``postgres`` user through ``runuser`` (PostgreSQL refuses to run as root), trusting
local connections, on a free port of 127.0.0.1; stopped by the postmaster's PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def pg_bin() -> Path | None:
    """Debian's PostgreSQL binaries, newest version first, or ``None``."""
    root = Path("/usr/lib/postgresql")
    for version in sorted(root.glob("*"), reverse=True) if root.is_dir() else []:
        if (version / "bin" / "pg_ctl").is_file():
            return version / "bin"
    return None


def missing_reason() -> str | None:
    """Why no test PostgreSQL can start here, or ``None`` when one can."""
    if pg_bin() is None:
        return "PostgreSQL binaries absent (apt-get install postgresql)"
    if shutil.which("runuser") is None or os.geteuid() != 0:
        return "starting PostgreSQL as the postgres user needs root and runuser"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg not installed (pip install 'ludao[postgres]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server; yields its SQLAlchemy URL; stops it by PID and removes its files."""
    binaries = pg_bin()
    assert binaries is not None
    work = Path(tempfile.mkdtemp(prefix="ludao-pg-"))
    data = work / "data"
    port = _free_port()
    shutil.chown(work, "postgres")
    as_pg = ["runuser", "-u", "postgres", "--"]
    try:
        subprocess.run(
            [*as_pg, str(binaries / "initdb"), "-D", str(data), "-U", "postgres",
             "--auth=trust", "--encoding=UTF8", "--no-sync"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        options = f"-p {port} -k {work} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*as_pg, str(binaries / "pg_ctl"), "-D", str(data), "-o", options,
             "-l", str(work / "log"), "-w", "-t", "60", "start"],
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip
        pid = int((data / "postmaster.pid").read_text().split()[0])
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            os.kill(pid, signal.SIGINT)  # "fast" shutdown
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
