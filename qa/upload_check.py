"""Whether an uploaded file can be read, decided in a child process with time and memory limits.

An upload is untrusted input to parsers (PDF, DOCX, HTML) that can be made to take minutes or
gigabytes. Loading it once in a child process with ``RLIMIT_AS`` and a timeout, before it joins
the corpus, means a hostile file costs one child process and is reported (422) instead of being
kept, re-read at every reload, and answered "reloaded" (201).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["ReadCheck", "check_readable"]

TIMEOUT_S = 60.0
MEMORY_BYTES = 2 * 1024**3

_CHILD = """
import json, resource, sys
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from qa.documents import load_document
from qa.errors import LudaoError
try:
    doc = load_document(sys.argv[1])
except LudaoError as exc:
    print(json.dumps({"ok": False, "reason": getattr(exc, "reason", str(exc))}))
except MemoryError:
    print(json.dumps({"ok": False, "reason": "needs too much memory to read"}))
else:
    print(json.dumps({"ok": bool(doc.text.strip()), "reason": "no text in it",
                      "characters": len(doc.text)}))
"""


@dataclass(frozen=True)
class ReadCheck:
    """The outcome: ``ok``, else ``reason`` written for the person who uploaded the file."""

    ok: bool
    reason: str = ""
    characters: int = 0


def check_readable(
    path: str | Path, *, timeout: float = TIMEOUT_S, memory: int = MEMORY_BYTES
) -> ReadCheck:
    """Load ``path`` as the indexer would, in a limited child process."""
    command = [sys.executable, "-c", _CHILD, str(path), str(memory)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        logger.warning("reading upload %s took over %.0f s; refused", path, timeout)
        return ReadCheck(False, f"took longer than {timeout:.0f} s to read")
    lines = done.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict):
        logger.warning("reading upload %s failed: %s", path, done.stderr[-500:])
        return ReadCheck(False, "could not be read (the reader stopped: too large or damaged)")
    ok = bool(result.get("ok"))
    return ReadCheck(ok, "" if ok else str(result.get("reason", "")), result.get("characters", 0))
