"""Who may read which document: users with groups, documents with groups, one row filter.

Staff of one department must not read another department's restricted documents through the
chat. Every document carries access groups (``"everyone"`` unless a rule or an upload says
otherwise); every user carries groups (always including ``"everyone"``). A user may read a
document when the two share a group. The decision is made once per set of groups as a set of
allowed passage *positions* (:meth:`DocumentAccess.allowed_rows`), which retrieval applies
before anything is ranked, so a passage a user may not see is never scored, read, cited, cached
for someone else or counted.

Groups of a document come, in this order, from the group chosen when it was uploaded
(:class:`UploadGroups`, a hidden file in the upload folder) and from ``Settings.access_rules``
(``"pattern=group|group"``; a pattern matches the file's path or any tail of it, so ``hr/*``
matches every file under a folder named ``hr``); with neither, ``"everyone"``. They are stored
in the index manifest's document records (``qa.index.labels``), so changing the rules re-labels
documents without embedding anything again. A record without groups (an index written before
groups existed) means everyone.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa.schema import Passage

logger = logging.getLogger(__name__)

__all__ = [
    "ANONYMOUS",
    "EVERYONE",
    "AccessRule",
    "DocumentAccess",
    "UploadGroups",
    "User",
    "clean_group",
    "parse_groups",
    "parse_rules",
]

EVERYONE = "everyone"
"""The group every user and, by default, every document belongs to."""
_GROUP = re.compile(r"^[\w.@-]{1,64}$")
UPLOAD_GROUPS_FILE = ".ludao-groups.json"


def clean_group(name: object) -> str:
    """A group name as stored: stripped, 1-64 word characters, ``.``, ``@`` or ``-``.

    Raises:
        ValueError: anything else (a group name ends up in logs, manifests and headers).
    """
    if not isinstance(name, str) or not _GROUP.match(name.strip()):
        raise ValueError(f"invalid group name {name!r}: use 1-64 letters, digits, _ . @ -")
    return name.strip()


def parse_groups(value: str | Iterable[str] | None) -> frozenset[str]:
    """Groups from ``"a, b"`` / ``"a|b"`` or a list; invalid names are dropped with a log line."""
    if value is None:
        return frozenset()
    items = re.split(r"[,|;\s]+", value) if isinstance(value, str) else list(value)
    groups = set()
    for item in items:
        if not str(item).strip():
            continue
        try:
            groups.add(clean_group(item))
        except ValueError:
            logger.warning("ignoring invalid group name %r", item)
    return frozenset(groups)


@dataclass(frozen=True)
class User:
    """Who asks: a name (``"anonymous"`` without a login) and the groups they belong to.

    ``groups`` always holds :data:`EVERYONE`. ``admin`` users may upload, reload and read the
    details of ``/healthz``; what they may *read* is still decided by their groups.
    """

    name: str
    groups: frozenset[str] = field(default_factory=frozenset)
    admin: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", frozenset(self.groups) | {EVERYONE})

    @property
    def anonymous(self) -> bool:
        return self.name == ANONYMOUS.name

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "groups": sorted(self.groups)}


ANONYMOUS = User("anonymous")


@dataclass(frozen=True)
class AccessRule:
    """``pattern=group|group``: files whose path (or a tail of it) matches get these groups."""

    pattern: str
    groups: frozenset[str]

    def matches(self, source: str) -> bool:
        parts = PurePath(source.replace("\\", "/")).parts
        tails = ("/".join(parts[i:]) for i in range(len(parts)))
        return any(fnmatch.fnmatchcase(tail, self.pattern) for tail in tails)


def parse_rules(entries: Iterable[str]) -> list[AccessRule]:
    """``Settings.access_rules`` entries as rules, in order.

    Raises:
        ValueError: an entry without ``=``, or without a valid group.
    """
    rules = []
    for entry in entries:
        pattern, sep, groups = entry.partition("=")
        if not sep or not pattern.strip():
            raise ValueError(f"access rule {entry!r} must look like 'pattern=group|group'")
        parsed = frozenset(clean_group(g) for g in re.split(r"[|,]", groups) if g.strip())
        if not parsed:
            raise ValueError(f"access rule {entry!r} names no group")
        rules.append(AccessRule(pattern.strip().strip("/"), parsed))
    return rules


class UploadGroups:
    """The groups chosen for uploaded files: a hidden JSON file in the upload folder.

    Hidden files are not indexed, and the file travels with the uploads it describes. Keys are
    file names in that folder.
    """

    _lock = threading.Lock()

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / UPLOAD_GROUPS_FILE

    def read(self) -> dict[str, frozenset[str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): parse_groups(v) for k, v in data.items() if isinstance(v, list)}

    def set(self, name: str, groups: Iterable[str]) -> None:
        """Record ``groups`` for ``name`` (replacing earlier ones), atomically."""
        with self._lock:
            data = {k: sorted(v) for k, v in self.read().items()}
            data[name] = sorted(parse_groups(groups)) or [EVERYONE]
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
            os.replace(tmp, self.path)

    def for_source(self, source: str) -> frozenset[str] | None:
        path = Path(source)
        if path.parent.resolve() != self.directory.resolve():
            return None
        return self.read().get(path.name)


def groups_for_source(
    source: str, rules: Sequence[AccessRule], uploads: Sequence[UploadGroups] = ()
) -> frozenset[str]:
    """A document's groups: its upload's chosen group, else every matching rule's, else everyone."""
    for upload in uploads:
        chosen = upload.for_source(source)
        if chosen:
            return chosen
    matched = frozenset().union(*(r.groups for r in rules if source and r.matches(source)))
    return matched or frozenset({EVERYONE})


class DocumentAccess:
    """Document groups over a passage list, answered as sets of allowed positions.

    Args:
        passages: in index order (position ``i`` is row ``i`` of the retriever).
        doc_groups: document id → groups; a document not listed belongs to everyone.
    """

    def __init__(self, passages: Sequence[Passage], doc_groups: Mapping[str, Iterable[str]]):
        self.doc_groups = {k: frozenset(v) or frozenset({EVERYONE}) for k, v in doc_groups.items()}
        self._doc_of_row = [p.doc_id for p in passages]
        self._cache: dict[frozenset[str], frozenset[int]] = {}
        self._lock = threading.Lock()

    @property
    def restricted(self) -> bool:
        """Whether any document is closed to somebody (if not, filtering can be skipped)."""
        return any(g != {EVERYONE} for g in self.doc_groups.values())

    def may_read(self, doc_id: str, groups: frozenset[str]) -> bool:
        return bool(self.doc_groups.get(doc_id, {EVERYONE}) & (groups | {EVERYONE}))

    def allowed_rows(self, groups: frozenset[str] | None) -> frozenset[int] | None:
        """Passage positions a user of ``groups`` may read; ``None`` means all (no filter).

        ``groups=None`` is an unrestricted caller (the operator's CLI without ``--as-groups``).
        """
        if groups is None or not self.restricted:
            return None
        key = frozenset(groups) | {EVERYONE}
        with self._lock:
            rows = self._cache.get(key)
            if rows is None:
                rows = frozenset(
                    i for i, doc in enumerate(self._doc_of_row) if self.may_read(doc, key)
                )
                self._cache[key] = rows
        return rows

    def visible_documents(self, groups: frozenset[str] | None) -> set[str]:
        """The ids of documents (with passages) a user of ``groups`` may read."""
        docs = set(self._doc_of_row)
        if groups is None:
            return docs
        return {d for d in docs if self.may_read(d, frozenset(groups))}


class GroupScoped:
    """A pipeline that answers every question as a user of ``groups`` (``--as-groups``).

    For scripted checks (``ludao ask/eval --as-groups hr``): what would staff of these groups
    get? Other attributes are the wrapped pipeline's.
    """

    def __init__(self, pipeline: object, groups: Iterable[str]) -> None:
        self.pipeline = pipeline
        self.groups = frozenset(groups) | {EVERYONE}

    def ask(self, question: str, *args: object, **options: object) -> object:
        return self.pipeline.ask(question, *args, groups=self.groups, **options)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.pipeline, name)
