"""Access groups in the index manifest: written beside each document record, never embedded.

Groups are a label, not content: changing ``Settings.access_rules`` or an upload's group must
not re-embed a single passage. :func:`label_documents` computes every document's groups and,
when they differ from what the manifest says, rewrites only ``manifest.json`` (under the
writer lock). The returned mapping is what :class:`qa.access.DocumentAccess` filters with. A
record without ``groups`` (an index written before groups existed) reads as everyone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from qa.access import EVERYONE, DocumentAccess, UploadGroups, groups_for_source, parse_rules

from .lock import writer_lock
from .store import read_manifest, write_manifest

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.schema import Passage

logger = logging.getLogger(__name__)

__all__ = ["document_access", "label_documents", "saved_groups"]


def saved_groups(manifest: dict) -> dict[str, frozenset[str]]:
    """Document id → groups as the manifest records them (everyone where none are recorded)."""
    out: dict[str, frozenset[str]] = {}
    for entry in manifest.get("documents", []) if isinstance(manifest, dict) else []:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            groups = entry.get("groups")
            valid = isinstance(groups, list) and all(isinstance(g, str) for g in groups)
            out[entry["id"]] = frozenset(groups) if valid and groups else frozenset({EVERYONE})
    return out


def label_documents(
    index_dir: str | Path, groups_for: Callable[[str], frozenset[str]]
) -> dict[str, frozenset[str]]:
    """Store ``groups_for(record source)`` in each document record; return id → groups.

    Only the manifest is rewritten, and only when a label changed.
    """
    index_dir = Path(index_dir)
    with writer_lock(index_dir):
        manifest = read_manifest(index_dir)
        entries = manifest.get("documents", [])
        if not isinstance(entries, list):
            return {}
        changed = 0
        labelled = []
        for entry in entries:
            if not isinstance(entry, dict):
                labelled.append(entry)
                continue
            groups = sorted(groups_for(str(entry.get("source") or "")))
            if entry.get("groups") != groups:
                changed += 1
                entry = {**entry, "groups": groups}
            labelled.append(entry)
        if changed:
            manifest = {**manifest, "documents": labelled}
            write_manifest(index_dir, manifest)
            logger.info("index %s: access groups of %d document(s) updated", index_dir, changed)
    return saved_groups(manifest)


def document_access(
    settings: Settings, index_dir: str | Path, passages: Sequence[Passage]
) -> DocumentAccess:
    """Label the index's documents from ``settings.access_rules`` and upload choices; the filter.

    Every folder of the corpus may hold an upload-groups file (``qa.access.UploadGroups``): the
    upload folder joins the corpus, so uploads keep the group chosen for them.
    """
    rules = parse_rules(settings.access_rules)
    uploads = [UploadGroups(p) for p in settings.corpus if Path(p).is_dir()]
    groups = label_documents(index_dir, lambda source: groups_for_source(source, rules, uploads))
    return DocumentAccess(passages, groups)
