"""A real Ludao server in its own process, for tests, docs and benchmarks.

Running ``python ui.py`` in a subprocess, as production does, is the only way to check start-up,
the command line and settings together, and keeps a load generator out of the server's
interpreter. Each server gets its own ``LUDAO_HOME`` (fresh index and feedback file) while
sharing the converted models, so nothing is converted twice.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qa.config import REPO_ROOT, ludao_home

__all__ = ["count_feedback", "free_port", "server_env", "start_server"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    port: int, env: dict[str, str], timeout: float = 300, root: Path = REPO_ROOT
) -> subprocess.Popen:
    """Start ``root/ui.py`` on 127.0.0.1:port and wait until ``/healthz`` answers.

    ``root`` may be another working tree (``git worktree add``): the script's folder comes
    first on ``sys.path``, so that tree's ``qa`` serves, for a before/after in one run.

    The server's output goes to a temporary log whose tail is put in the error when start-up
    fails, so a failure on a CI machine says why.
    """
    import httpx

    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - the server keeps writing to it
        prefix="ludao-server-", suffix=".log", delete=False
    )
    proc = subprocess.Popen(
        [sys.executable, str(root / "ui.py"), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = Path(log.name).read_text(encoding="utf-8", errors="replace")[-3000:]
            raise RuntimeError(f"the server exited during start-up; its log ends:\n{tail}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(1)
    proc.kill()
    raise RuntimeError("the server did not answer /healthz in time")


def server_env(tmp: Path, models: Path | None = None) -> dict[str, str]:
    """Environment for a server with its own ``LUDAO_HOME`` (``tmp/home``: fresh feedback file
    and index) that shares converted models (``models``, default the user's cache), so nothing
    is converted twice."""
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    models = models if models is not None else ludao_home() / "models"
    models.mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(models, target_is_directory=True)
    return {**os.environ, "LUDAO_HOME": str(home)}


def count_feedback(path: Path) -> int:
    """Whole JSON records in a feedback file; a torn or interleaved line would not parse.

    ``ludao serve`` stores feedback in ``records.sqlite`` beside the file (``qa.records``); its
    rows are counted too.
    """
    count = 0
    database = path.parent / "records.sqlite"
    if database.exists():
        from qa.records import SqlFeedbackStore

        count += SqlFeedbackStore(f"sqlite:///{database}", migrate=False).count()
    if not path.exists():
        return count
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            json.loads(line)  # raises on a damaged record: that is a lost record too
            count += 1
    return count
