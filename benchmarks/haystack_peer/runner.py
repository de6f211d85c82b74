"""The Haystack side of the side-by-side benchmark; runs inside ``.venv-haystack`` only.

It imports nothing from Ludao (the Haystack venv does not have it), only Haystack, its
transformers / sentence-transformers integrations and the standard library. The comparison
script starts it once per corpus and talks to it over stdin/stdout in JSON lines, so that Ludao
and Haystack can answer the same question one after the other on the same machine:

1. ``--spec FILE`` names the passages, the two model folders and the settings. The runner
   builds an ``InMemoryDocumentStore`` from the passages, loads the reader and prints
   ``{"event": "ready", ...}`` with the index build time and the reader's settings.
2. Each stdin line ``{"op": "ask", "id", "question"}`` runs the whole Haystack pipeline and
   prints ``{"id", "latency_ms", "retrieved", "answers"}``; the latency is measured in here,
   around ``Pipeline.run``, so the pipe between the two processes is not counted.
3. ``{"op": "retrieve", "variant", "question"}`` runs one retrieval-only variant (for recall);
   ``{"op": "quit"}`` ends the loop.

Anything a library prints goes to stderr: stdout carries the protocol alone.

    .venv-haystack/bin/python benchmarks/haystack_peer/runner.py --spec spec.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

logger = logging.getLogger("haystack_runner")

# The regex that haystack-ai 2.x used by default: a run of Han characters is one token, so a
# Chinese question shares almost no BM25 term with a passage. Recorded for one retrieval variant.
LEGACY_BM25_REGEX = r"(?u)\b\w\w+\b"


@dataclass
class Built:
    """The Haystack objects one corpus needs: the full pipeline and the retrieval variants."""

    pipeline: Any
    variants: dict[str, Callable[[str], list[str]]]
    ready: dict[str, Any]


def _protocol_stdout() -> IO[str]:
    """A private handle on the real stdout; fd 1 itself is pointed at stderr."""
    handle = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return handle


def _documents(passages: list[dict[str, str]]) -> list[Any]:
    from haystack import Document

    # The id is Ludao's passage id, so both systems' retrieved lists compare directly.
    return [Document(id=p["id"], content=p["text"]) for p in passages]


def build(spec: dict[str, Any]) -> Built:
    """Embed and store the passages, wire the hybrid pipeline and load the reader."""
    import torch
    from haystack import Pipeline
    from haystack.components.joiners import DocumentJoiner
    from haystack.components.retrievers.in_memory import (
        InMemoryBM25Retriever,
        InMemoryEmbeddingRetriever,
    )
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from haystack.utils import ComponentDevice
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
        SentenceTransformersTextEmbedder,
    )
    from haystack_integrations.components.readers.transformers import (
        TransformersExtractiveReader,
    )

    torch.set_num_threads(int(spec["threads"]))
    cpu = ComponentDevice.from_str("cpu")
    embedding_model = spec["embedding_model"]
    candidates, top_k = int(spec["candidates"]), int(spec["top_k"])
    # Haystack's way to lower the precision: load the weights in bf16 (no autocast option).
    precision = spec.get("precision", "fp32")
    model_kwargs = {"dtype": torch.bfloat16} if precision == "bf16" else None

    t0 = time.perf_counter()
    doc_embedder = SentenceTransformersDocumentEmbedder(
        model=embedding_model,
        device=cpu,
        prefix="passage: ",
        normalize_embeddings=True,
        progress_bar=False,
        local_files_only=True,
        model_kwargs=model_kwargs,
    )
    doc_embedder.warm_up()
    embedded = doc_embedder.run(documents=_documents(spec["passages"]))["documents"]
    store = InMemoryDocumentStore()
    store.write_documents(embedded)
    index_build_s = time.perf_counter() - t0

    text_embedder = SentenceTransformersTextEmbedder(
        model=embedding_model,
        device=cpu,
        prefix="query: ",
        normalize_embeddings=True,
        progress_bar=False,
        local_files_only=True,
        model_kwargs=model_kwargs,
    )
    reader = TransformersExtractiveReader(
        model=spec["reader_model"], device=cpu, top_k=1, model_kwargs=model_kwargs
    )
    t1 = time.perf_counter()
    text_embedder.warm_up()
    reader.warm_up()
    models_load_s = time.perf_counter() - t1

    pipeline = Pipeline()
    pipeline.add_component("text_embedder", text_embedder)
    pipeline.add_component(
        "embedding_retriever", InMemoryEmbeddingRetriever(store, top_k=candidates)
    )
    pipeline.add_component("bm25_retriever", InMemoryBM25Retriever(store, top_k=candidates))
    pipeline.add_component(
        "joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=top_k)
    )
    pipeline.add_component("reader", reader)
    pipeline.connect("text_embedder.embedding", "embedding_retriever.query_embedding")
    pipeline.connect("embedding_retriever", "joiner")
    pipeline.connect("bm25_retriever", "joiner")
    pipeline.connect("joiner.documents", "reader.documents")

    # A second store over the same embedded documents, tokenised the 2.x way, for recall only.
    legacy = InMemoryDocumentStore(bm25_tokenization_regex=LEGACY_BM25_REGEX)
    legacy.write_documents(embedded)
    variants = _variants(
        store=store,
        legacy=legacy,
        text_embedder=text_embedder,
        candidates=candidates,
        top_k=top_k,
    )
    ready = {
        "event": "ready",
        "index_build_s": round(index_build_s, 3),
        "models_load_s": round(models_load_s, 3),
        "documents": store.count_documents(),
        "torch_threads": torch.get_num_threads(),
        "precision": precision,
        "bm25": {
            "algorithm": store.bm25_algorithm,
            "tokenization_regex": store.bm25_tokenization_regex,
        },
        "reader": {
            "class": type(reader).__name__,
            "top_k": reader.top_k,
            "max_seq_length": reader.max_seq_length,
            "stride": reader.stride,
            "no_answer": reader.no_answer,
            "answers_per_seq": reader.answers_per_seq,
            "max_batch_size": reader.max_batch_size,
        },
        "retrievers_top_k": candidates,
        "joiner": {"join_mode": "reciprocal_rank_fusion", "top_k": top_k},
        "versions": _versions(),
    }
    return Built(pipeline=pipeline, variants=variants, ready=ready)


def _variants(
    *, store: Any, legacy: Any, text_embedder: Any, candidates: int, top_k: int
) -> dict[str, Callable[[str], list[str]]]:
    """Retrieval-only variants: which passage ids each returns for a question, best first."""
    from haystack.components.joiners import DocumentJoiner
    from haystack.components.retrievers.in_memory import (
        InMemoryBM25Retriever,
        InMemoryEmbeddingRetriever,
    )

    dense = InMemoryEmbeddingRetriever(store, top_k=top_k)
    dense_wide = InMemoryEmbeddingRetriever(store, top_k=candidates)
    bm25 = InMemoryBM25Retriever(store, top_k=top_k)
    legacy_bm25 = InMemoryBM25Retriever(legacy, top_k=top_k)
    legacy_wide = InMemoryBM25Retriever(legacy, top_k=candidates)
    joiner = DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=top_k)

    def ids(documents: list[Any]) -> list[str]:
        return [d.id for d in documents]

    def embed(question: str) -> list[float]:
        return text_embedder.run(text=question)["embedding"]

    def legacy_hybrid(question: str) -> list[str]:
        lists = [
            dense_wide.run(query_embedding=embed(question))["documents"],
            legacy_wide.run(query=question)["documents"],
        ]
        return ids(joiner.run(documents=lists)["documents"])

    return {
        "dense_only": lambda q: ids(dense.run(query_embedding=embed(q))["documents"]),
        "bm25_only": lambda q: ids(bm25.run(query=q)["documents"]),
        "bm25_only_legacy_regex": lambda q: ids(legacy_bm25.run(query=q)["documents"]),
        "hybrid_legacy_regex": legacy_hybrid,
    }


def ask(pipeline: Any, question: str) -> dict[str, Any]:
    """Run the full pipeline once; return the answers, the joiner's passages and the time."""
    t0 = time.perf_counter()
    result = pipeline.run(
        {
            "text_embedder": {"text": question},
            "bm25_retriever": {"query": question},
            "reader": {"query": question},
        },
        include_outputs_from={"joiner"},
    )
    latency_ms = (time.perf_counter() - t0) * 1000
    answers = [
        {
            "text": answer.data,  # None is the reader's no-answer entry
            "score": float(answer.score),
            "doc": answer.document.id if answer.document is not None else None,
        }
        for answer in result["reader"]["answers"]
    ]
    return {
        "latency_ms": latency_ms,
        "retrieved": [d.id for d in result["joiner"]["documents"]],
        "answers": answers,
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    names = (
        "haystack-ai",
        "transformers-haystack",
        "sentence-transformers-haystack",
        "transformers",
        "sentence-transformers",
        "torch",
    )
    found: dict[str, str] = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def serve(built: Built, requests: IO[str], replies: IO[str]) -> None:
    """Answer protocol lines from ``requests`` until ``quit`` or end of input."""
    replies.write(json.dumps(built.ready, ensure_ascii=False) + "\n")
    replies.flush()
    for line in requests:
        if not line.strip():
            continue
        request = json.loads(line)
        op = request.get("op")
        if op == "quit":
            break
        try:
            if op == "ask":
                reply = {"id": request["id"], **ask(built.pipeline, request["question"])}
            elif op == "retrieve":
                variant = built.variants[request["variant"]]
                reply = {"id": request["id"], "retrieved": variant(request["question"])}
            else:
                reply = {"error": f"unknown op {op!r}"}
        except Exception as exc:  # report, keep serving: one bad question is not the whole run
            logger.exception("request %s failed", request.get("id"))
            reply = {"id": request.get("id"), "error": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply, ensure_ascii=False) + "\n")
        replies.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", required=True, help="JSON with passages, models and settings")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    replies = _protocol_stdout()
    with open(args.spec, encoding="utf-8") as fh:
        spec = json.load(fh)
    serve(build(spec), sys.stdin, replies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
