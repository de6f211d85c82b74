"""Which files of a folder to ingest, and what happened to each of them.

A corpus folder on a shared drive holds drafts, scans, spreadsheets and old copies next to the
documents that matter. ``PathFilter`` picks files by glob patterns; ``IngestReport`` records,
file by file, whether it was loaded or why it was skipped, so that "why is my PDF not found?"
has an answer without reading logs.

This module knows nothing about formats (``qa.loaders`` does), so both can import it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Any, Literal

SkipReason = Literal[
    "unsupported", "empty", "binary", "encrypted", "broken", "undecodable", "missing", "unreadable"
]
"""Why a file was not loaded: no loader for its suffix; no text in it; binary content;
password-protected; damaged or not the format its suffix claims; text in no known encoding;
no such file; any other read error (permissions, I/O)."""


# --- glob patterns --------------------------------------------------------------------------


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob pattern for ``/``-separated relative paths (case-insensitive).

    ``*`` and ``?`` stay inside one path segment, ``[abc]``/``[!abc]`` are character classes,
    and a ``**`` segment matches any number of folders (none included), so ``**/*.pdf`` also
    matches ``a.pdf``. A trailing ``/`` is dropped (a folder pattern covers its content anyway,
    see :class:`PathFilter`). Case is ignored because office files arrive as ``.PDF`` and
    ``.pdf`` alike, often from Windows shares where case never mattered.
    """
    segments = [s for s in pattern.strip().strip("/").split("/") if s not in ("", ".")]
    parts: list[str] = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "**":
            parts.append(".*" if last else "(?:[^/]+/)*")
            continue
        parts.append(_segment_regex(segment) + ("" if last else "/"))
    return re.compile("".join(parts), re.IGNORECASE)


def _segment_regex(segment: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (end := segment.find("]", i + 2)) != -1:
            body = segment[i + 1 : end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            out.append("[" + ("^/" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class PathFilter:
    """Include/exclude glob patterns, matched against paths relative to the folder walked.

    A pattern matches a file when it matches the file's relative path or the path of a folder
    that contains it (so ``drafts``, ``drafts/`` and ``drafts/*`` all cover ``drafts/old/a.pdf``).
    A pattern without ``/`` also matches a bare name at any depth, as in ``.gitignore``:
    ``*.pdf`` is every PDF, ``drafts`` every folder called ``drafts``. A file is taken when no
    include is given or some include matches it, and no exclude matches it.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @classmethod
    def of(cls, include: Iterable[str] | None, exclude: Iterable[str] | None) -> PathFilter:
        return cls(_patterns(include), _patterns(exclude))

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)

    def accepts(self, relative: str | PurePosixPath) -> bool:
        path = PurePosixPath(relative)
        if self.include and not any(_matches(p, path) for p in self.include):
            return False
        return not any(_matches(p, path) for p in self.exclude)


def _patterns(patterns: Iterable[str] | None) -> tuple[str, ...]:
    return tuple(p for p in (patterns or ()) if p.strip())


def _matches(pattern: str, path: PurePosixPath) -> bool:
    regex = glob_regex(pattern)
    candidates = [str(path), *(str(parent) for parent in path.parents if str(parent) != ".")]
    if "/" not in pattern.strip().strip("/"):
        candidates += path.parts
    return any(regex.fullmatch(candidate) for candidate in candidates)


# --- the report -----------------------------------------------------------------------------


@dataclass
class FileReport:
    """One file: ``loaded`` (with its document id and sizes) or ``skipped`` (with a reason)."""

    path: str
    status: Literal["loaded", "skipped"]
    reason: SkipReason | None = None
    detail: str | None = None
    doc_id: str | None = None
    characters: int | None = None
    pages: int | None = None
    passages: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that apply: a skipped file has no sizes, a loaded one no reason."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class IngestReport:
    """What happened to every file looked at, in the order they were looked at."""

    files: list[FileReport] = field(default_factory=list)

    def add_loaded(self, path: str, *, doc_id: str, characters: int, pages: int) -> None:
        self.files.append(
            FileReport(path, "loaded", doc_id=doc_id, characters=characters, pages=pages or None)
        )

    def add_skipped(self, path: str, reason: SkipReason, detail: str) -> None:
        self.files.append(FileReport(path, "skipped", reason=reason, detail=detail))

    @property
    def loaded(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "loaded"]

    @property
    def skipped(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "skipped"]

    def set_passages(self, per_doc: Mapping[str, int]) -> None:
        """Record passage counts (known only after chunking) by document id."""
        for file in self.loaded:
            file.passages = per_doc.get(file.doc_id or "", 0)

    def counts(self) -> dict[str, Any]:
        return {
            "files": len(self.files),
            "loaded": len(self.loaded),
            "skipped": len(self.skipped),
            "skipped_by_reason": dict(sorted(Counter(f.reason for f in self.skipped).items())),
        }

    def to_dict(self) -> dict[str, Any]:
        return {"files": [f.to_dict() for f in self.files], **self.counts()}

    def summary(self, limit: int = 5) -> str:
        """One line for error messages: which files were skipped and why (the first few)."""
        skipped = self.skipped
        if not skipped:
            return f"{len(self.files)} files looked at, none skipped"
        shown = "; ".join(f"{f.path}: {f.detail or f.reason}" for f in skipped[:limit])
        more = f"; and {len(skipped) - limit} more" if len(skipped) > limit else ""
        return f"{len(skipped)} of {len(self.files)} files skipped: {shown}{more}"
