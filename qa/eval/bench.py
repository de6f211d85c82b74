"""``ludao bench``: per-stage latency of Ludao on a corpus (query embedding, dense search, BM25,
reader, total).

Every figure is measured in one run on one machine, and reported with the machine's core count
and torch thread setting so that numbers from different runs are not mixed up. Besides the
stages it reports a repeated question answered from the answer cache, the index build rate
(passages embedded per second, on the corpus's own passages, also as a fraction of the fp32
limit measured in the same run) and the process's peak RSS.

It lives in the package, not in ``benchmarks/``, because ``ludao bench`` is a product command
that must work from an installed wheel; its default questions ship as package data.
"""

from __future__ import annotations

import logging
import os
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path

from ..config import Settings, portable_path
from .latency import latency_summary
from .limit import flop_per_token, fraction_of_limit, measure_limit, passage_tokens
from .question_files import SEED_QUESTIONS, load_examples

__all__ = ["run_latency_benchmark"]

logger = logging.getLogger(__name__)


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    value = fn()
    return (time.perf_counter() - t0) * 1000, value


def run_latency_benchmark(
    settings: Settings, *, questions: str | Path | None = None, repeat: int = 3
) -> dict:
    """Time each stage for every question ``repeat`` times after one warm-up question."""
    from ..pipeline import Pipeline

    # from_settings applies the thread policy, which must happen before torch is imported.
    load_ms, pipeline = _timed(lambda: Pipeline.from_settings(settings))
    import torch

    retriever, reader = pipeline.retriever, pipeline.reader
    texts = [ex.question for ex in load_examples(questions or SEED_QUESTIONS)]
    # Warmed on this thread, as the stages are timed, not through ``ask``: the micro-batcher's
    # thread would keep a second OpenMP team alive, and libgomp stops spinning while it has more
    # threads than CPUs (a script measured 17 vs 7.6 ms per query embedding that way).
    warm = retriever.search(texts[0], top_k=settings.top_k)
    reader.read(texts[0], [h.passage for h in warm], settings.reader_top_k)
    stages: dict[str, list[float]] = {
        k: []
        for k in (
            "fit_threads",
            "query_embedding",
            "dense_search",
            "bm25",
            "retrieve",
            "read",
            "total",
        )
    }
    fitted: dict[int, int] = {}
    k = settings.top_k
    read_tokens = 0
    for _ in range(repeat):
        for q in texts:
            # As the pipeline does before each question (the ``adaptive`` thread policy).
            ms, threads = _timed(pipeline.fit_threads)
            stages["fit_threads"].append(ms)
            fitted[threads] = fitted.get(threads, 0) + 1
            ms, vector = _timed(lambda q=q: retriever.encoder.encode_query(q))
            stages["query_embedding"].append(ms)
            ms, _ = _timed(lambda v=vector: retriever.dense_index.search(v, retriever.candidates))
            stages["dense_search"].append(ms)
            ms, _ = _timed(lambda q=q: retriever.sparse_ranking(q, retriever.candidates))
            stages["bm25"].append(ms)
            ms, hits = _timed(lambda q=q: retriever.search(q, top_k=k))
            stages["retrieve"].append(ms)
            passages = [h.passage for h in hits]  # type: ignore[union-attr]
            ms, reading = _timed(lambda q=q, p=passages: reader.read(q, p, settings.reader_top_k))
            stages["read"].append(ms)
            read_tokens += getattr(reading, "tokens", 0) or 0
            stages["total"].append(
                stages["fit_threads"][-1] + stages["retrieve"][-1] + stages["read"][-1]
            )
    cache_ms: list[float] = []
    if pipeline.cache.size:
        for q in texts:
            pipeline.ask(q)  # fills the cache (or hits it if already there)
            ms, _ = _timed(lambda q=q: pipeline.ask(q))
            cache_ms.append(ms)
    limit = measure_limit()
    shares, limits = _stage_shares(retriever, reader, stages, texts, repeat, read_tokens, limit)
    build = _index_build_rate(retriever, limit_gflops=limit["gflops_best"])
    return {
        "corpus": [portable_path(p) for p in settings.corpus],
        "passages": len(retriever),
        "questions": len(texts),
        "repeat": repeat,
        "top_k": k,
        "reader": reader.name,
        "embedding_model": settings.embedding_model,
        "load_ms": round(load_ms, 1),
        "latency_ms": {name: latency_summary(v) for name, v in stages.items()},
        "cache_hit_ms": latency_summary(cache_ms) if cache_ms else None,
        "fraction_of_limit": shares,
        "index_build": build,
        "fp32_limit": limit,
        "limits_gflops": limits,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "speed_settings": {
            "reader_precision": settings.reader_precision,
            "reader_runs_at": getattr(reader, "resolved_precision", None),
            "embedding_precision": settings.embedding_precision,
            "embedding_runs_at": getattr(retriever.encoder, "resolved_precision", None),
            "reader_passages": settings.reader_passages,
            "reader_max_length": settings.reader_max_length,
            "reader_early_exit": settings.reader_early_exit,
            "query_engine": settings.query_engine,
            "passage_engine": settings.passage_engine,
            "reader_engine": settings.reader_engine,
            "answer_cache_size": settings.answer_cache_size,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
            "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", "default"),
            "omp_policy_setting": settings.omp_wait_policy,
            # Questions per torch thread count the adaptive policy chose (0: the count is fixed).
            "threads_fitted": {str(n): c for n, c in sorted(fitted.items())},
            "processor": platform.processor() or platform.machine(),
        },
    }


def _layers(model) -> int:
    """Transformer layers of a transformers model (or a sentence-transformers one), 0 unknown."""
    if hasattr(model, "prompts"):  # a SentenceTransformer: its first module wraps the model
        model = getattr(model[0], "auto_model", None)
    return int(getattr(getattr(model, "config", None), "num_hidden_layers", 0) or 0)


def _stage_shares(
    retriever, reader, stages: dict, texts: list[str], repeat: int, read_tokens: int, limit: dict
) -> tuple[dict, dict]:
    """Query embedding and reading as fractions of the limit of the precision each runs at.

    bf16 gets its own limit (a bf16 2048² matmul, measured now); int8 is held to the fp32 one,
    having no matmul limit of its own here. Tokens are those the models saw: the questions with
    their prompt, and the reader's windows as padded in their batches.
    """
    limits = {"fp32": limit["gflops_best"]}
    encoder = retriever.encoder
    precisions = {
        "query_embedding": getattr(encoder, "resolved_precision", None),
        "read": getattr(reader, "resolved_precision", None),
    }
    if "bf16" in precisions.values():
        limits["bf16"] = measure_limit(dtype="bf16")["gflops_best"]
    encoder_layers = _layers(getattr(encoder, "model", None))
    reader_layers = _layers(getattr(reader, "_model", None))
    work = {
        "query_embedding": (
            (passage_tokens(encoder, texts, "query") or 0) * repeat,
            encoder_layers,
        ),
        "read": (read_tokens, reader_layers),
    }
    shares = {}
    for stage, (tokens, layers) in work.items():
        precision = precisions[stage]
        own = limits.get("fp32" if precision == "int8" else str(precision))
        if tokens and layers and own:
            shares[stage] = {
                "tokens": tokens,
                "precision": precision,
                "limit_gflops": own,
                **fraction_of_limit(tokens, sum(stages[stage]) / 1000, own, flop_per_token(layers)),
            }
    return shares, limits


def _index_build_rate(retriever, limit: int = 64, limit_gflops: float | None = None) -> dict:
    """Passages per second when embedding (up to ``limit`` of) the corpus's own passages.

    With ``limit_gflops`` (the machine's fp32 limit, measured in the same run) and an encoder
    whose tokenizer can count the tokens, the rate is also given as a fraction of that limit.
    """
    texts = [p.text for p in retriever.passages[:limit]]
    retriever.encoder.encode_passages(texts[:2], show_progress=False)  # warm
    ms, _ = _timed(lambda: retriever.encoder.encode_passages(texts, show_progress=False))
    rate = {
        "passages": len(texts),
        "mean_chars": round(sum(map(len, texts)) / max(len(texts), 1), 1),
        "passages_per_s": round(len(texts) / (ms / 1000), 2) if ms else None,
    }
    tokens = passage_tokens(retriever.encoder, texts)
    if ms and limit_gflops and tokens:
        rate["mean_tokens"] = round(tokens / len(texts), 1)
        rate.update(fraction_of_limit(tokens, ms / 1000, limit_gflops))
    return rate
