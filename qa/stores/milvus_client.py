"""Talking to Milvus: the client, the two collections and their schema, errors made readable.

One URI reaches Milvus Lite (a local ``.db`` file, in this process), a ``milvus-lite server``,
a Milvus standalone server or a cluster: ``pymilvus.MilvusClient`` speaks to all of them.
``pymilvus`` is the optional extra ``ludao[milvus]`` and is imported only here, only when a
Milvus store is opened.

A store is two collections: ``<name>`` holds one row per passage (text, citation fields, document
id, access groups, content hash, dense and sparse vectors) and ``<name>_meta`` the rows that are
not passages, keyed by a string: ``stats`` (passage count, total length, the average length the
sparse weights were computed with, the model), ``doc:<id>`` (a document's record), ``excluded:<id>``
(a removed document) and ``term:<dimension>`` (a term's document frequency in ``df``). Milvus wants
a vector in every collection; the meta rows carry a constant 2-d one.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .base import StoreUnavailableError

if TYPE_CHECKING:
    from pymilvus import MilvusClient

logger = logging.getLogger(__name__)
T = TypeVar("T")

PASSAGE_FIELDS = (
    "id",
    "doc_id",
    "title",
    "text",
    "start",
    "end",
    "orig_start",
    "orig_end",
    "page",
    "source",
    "groups",
    "content_hash",
)
"""Scalar fields of a passage row (the vectors are ``dense`` and ``sparse``)."""
META_VECTOR = [0.0, 1.0]
BATCH = 500
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")


def collection_name(name: str) -> str:
    """``name`` if Milvus accepts it as a collection name (letters, digits, underscores)."""
    if not _NAME.match(name):
        raise ValueError(f"invalid Milvus collection name {name!r}: letters, digits and _ only")
    return name


def connect(uri: str, token: str = "") -> MilvusClient:
    """A client for ``uri``; a missing extra or an unreachable server is a clear error."""
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise StoreUnavailableError(
            "LUDAO_VECTOR_STORE=milvus needs the Milvus client: pip install 'ludao[milvus]'"
        ) from exc
    return guarded(uri, lambda: MilvusClient(uri=uri, token=token))


def guarded(uri: str, call: Callable[[], T]) -> T:
    """Run a Milvus call; any failure of the client or server becomes StoreUnavailableError.

    The client raises ``MilvusException`` subclasses, gRPC errors or ``OSError``s depending on
    where the connection broke; callers need one answer ("the store is not usable now, this is
    why"), and the server's log keeps the details.
    """
    try:
        return call()
    except StoreUnavailableError:
        raise
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        logger.warning("Milvus at %s failed: %s", uri, reason, exc_info=logger.isEnabledFor(10))
        raise StoreUnavailableError(f"vector store {uri} is unavailable: {reason[:300]}") from exc


def create_collections(client: MilvusClient, name: str, dimension: int) -> None:
    """Create the passage and meta collections if they are missing, and load them."""
    from pymilvus import DataType

    if not client.has_collection(name):
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=1024)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=1024)
        schema.add_field("title", DataType.VARCHAR, max_length=8192)
        schema.add_field("text", DataType.VARCHAR, max_length=65535)
        for number in ("start", "end", "orig_start", "orig_end", "page"):
            schema.add_field(number, DataType.INT64)
        schema.add_field("source", DataType.VARCHAR, max_length=4096)
        schema.add_field("groups", DataType.VARCHAR, max_length=4096)
        schema.add_field("content_hash", DataType.VARCHAR, max_length=64)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dimension)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        index = client.prepare_index_params()
        index.add_index("dense", index_type="AUTOINDEX", metric_type="IP")
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        index.add_index("doc_id", index_type="INVERTED")
        client.create_collection(
            name, schema=schema, index_params=index, consistency_level="Strong"
        )
        logger.info("created Milvus collection %s (%d-d)", name, dimension)
    meta = f"{name}_meta"
    if not client.has_collection(meta):
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=1100)
        schema.add_field("value", DataType.VARCHAR, max_length=65535)
        schema.add_field("df", DataType.INT64)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=len(META_VECTOR))
        index = client.prepare_index_params()
        index.add_index("vec", index_type="FLAT", metric_type="L2")
        client.create_collection(
            meta, schema=schema, index_params=index, consistency_level="Strong"
        )
    client.load_collection(name)
    client.load_collection(meta)


def meta_row(key: str, value: Any = None, df: int = 0) -> dict[str, Any]:
    return {
        "key": key,
        "value": "" if value is None else json.dumps(value, ensure_ascii=False),
        "df": df,
        "vec": META_VECTOR,
    }


def quote(value: str) -> str:
    """A string literal for a Milvus filter expression."""
    return json.dumps(value, ensure_ascii=False)


def in_filter(field: str, values: Sequence[str]) -> str:
    return f"{field} in [{', '.join(quote(v) for v in values)}]"


def batches(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def iterate(
    client: MilvusClient, collection: str, filter: str, fields: Sequence[str]
) -> Iterator[dict[str, Any]]:
    """Every row matching ``filter``, in batches (a plain query is capped at 16,384 rows)."""
    iterator = client.query_iterator(
        collection, batch_size=BATCH, filter=filter, output_fields=list(fields)
    )
    try:
        while rows := iterator.next():
            yield from rows
    finally:
        iterator.close()
