"""Access groups in a Milvus store: labels on the passage rows, and who may see what.

The FAISS store keeps groups in its manifest and filters positions in process
(``qa.index.labels``, ``qa.access.DocumentAccess``); a Milvus store is shared by servers that
do not see each other's upload folders, so a document's groups travel with it: in its
``doc:<id>`` record (for counting) and in every passage row's ``groups`` field (for the filter
inside the engine query, :func:`qa.stores.base.group_filter`). A sync labels only the documents
of its own corpus; the others keep the groups their writer gave them.

Changing a rule re-labels rows without embedding anything: the rows are read back with their
dense vectors and upserted with the new label (the sparse vector is recomputed from the text
with the store's average length, which is what it held).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qa.access import EVERYONE

from .base import stored_groups
from .bm25_weights import PassageTerms
from .milvus_client import PASSAGE_FIELDS, batches, in_filter, iterate

if TYPE_CHECKING:
    from pymilvus import MilvusClient

GroupsFor = Callable[[str], Collection[str]]
"""A document's groups from its source path (``qa.access.groups_for_source`` with the rules)."""
EVERYONE_ONLY = frozenset({EVERYONE})


def record_groups(entry: Mapping[str, Any] | None) -> frozenset[str]:
    """The groups a ``doc:<id>`` record names; everyone for a record written before groups."""
    groups = (entry or {}).get("groups")
    if isinstance(groups, list) and groups and all(isinstance(g, str) for g in groups):
        return frozenset(groups)
    return EVERYONE_ONLY


def relabel(
    client: MilvusClient,
    collection: str,
    labels: Mapping[str, Collection[str]],
    avglen: float,
) -> int:
    """Rewrite the ``groups`` field of every passage of the documents in ``labels``."""
    rewritten = 0
    fields = [*PASSAGE_FIELDS, "dense"]
    for chunk in batches(sorted(labels), 100):
        rows = list(iterate(client, collection, in_filter("doc_id", list(chunk)), fields))
        updated = [
            {
                **row,
                "groups": stored_groups(labels[row["doc_id"]]),
                "sparse": PassageTerms.of(row["text"]).weights(avglen),
            }
            for row in rows
        ]
        for part in batches(updated):
            client.upsert(collection, list(part))
        rewritten += len(updated)
    return rewritten


@dataclass(frozen=True)
class StoreVisibility:
    """Each stored document's groups and passage count, as the searcher's sync saw them.

    What ``/healthz`` counts for a user and whether a question needs a filter at all: with no
    restricted document, queries go to the engine unfiltered, as with FAISS.
    """

    documents: Mapping[str, tuple[frozenset[str], int]]

    @classmethod
    def of(cls, records: Mapping[str, Mapping[str, Any]]) -> StoreVisibility:
        return cls({d: (record_groups(e), int(e.get("passages") or 0)) for d, e in records.items()})

    @property
    def restricted(self) -> bool:
        return any(groups != EVERYONE_ONLY for groups, _ in self.documents.values())

    def scope(self, groups: Collection[str] | None) -> frozenset[str] | None:
        """The groups to filter by for a user of ``groups``; ``None``: no filter needed."""
        if groups is None or not self.restricted:
            return None
        return frozenset(groups) | {EVERYONE}

    def counts(self, groups: Collection[str] | None) -> dict[str, int]:
        """Documents and passages a user of ``groups`` may read (``None``: all)."""
        scope = self.scope(groups)
        seen = [
            n for g, n in self.documents.values() if scope is None or g & scope or EVERYONE in g
        ]
        return {"documents": len(seen), "passages": sum(seen)}
