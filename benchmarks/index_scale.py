"""How each FAISS index kind scales: build time, memory, single-query latency and recall@10.

Run ``python -m benchmarks.index_scale --sizes 100000 1000000 --out
benchmarks/results/index_scale.json`` (``--sizes 20000`` is a smoke test of a minute). It writes
the JSON and a Markdown summary next to it (same name, ``.md``).

The vectors are synthetic, because no corpus of a million passages ships with Ludao, but shaped
like sentence embeddings rather than noise (uniform random vectors have no neighbours worth the
name, which makes every approximate index look worse than it is, and well-separated blobs make
them look better): see :func:`synthetic_vectors`. Queries are noisy copies of held-out points, so
each has close but not identical neighbours, as a question has in a corpus; the truth is exact
flat search over the same vectors. Everything runs on ``--threads`` FAISS threads (default 2, the
target machine), one query at a time, as the chat asks them.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from embeddings.index import FaissIndex, IndexParams, default_nlist

logger = logging.getLogger(__name__)

DIMENSION = 384
RECALL_TARGET = 0.95
LATENCY_TARGET_MS = 10.0
DATA_DESCRIPTION = (
    "384-d unit vectors normalise(1.7*shared + centre + 1.2*noise): one shared direction, "
    "10,240 cluster centres (256 topics x 40 sub-topics), Gaussian noise with a decaying "
    "spectrum; queries are held-out points + 0.15 * random unit vector, renormalised"
)


@dataclass(frozen=True)
class Config:
    """One index to build, and the search settings to sweep on it."""

    name: str
    kind: str
    params: IndexParams
    sweep: tuple[int, ...] = ()

    @property
    def sweep_name(self) -> str | None:
        return {"hnsw": "ef_search", "ivf": "nprobe"}.get(self.kind)


CONFIGS: dict[str, Config] = {
    c.name: c
    for c in (
        Config("flat", "flat", IndexParams()),
        Config("hnsw", "hnsw", IndexParams(hnsw_m=16, ef_construction=40), (32, 64, 128, 256)),
        Config("hnsw-m32", "hnsw", IndexParams(hnsw_m=32, ef_construction=80), (32, 64, 128, 256)),
        Config("ivf-sq8", "ivf", IndexParams(ivf_encoding="sq8"), (16, 32, 64, 128, 256)),
        Config("ivf-flat", "ivf", IndexParams(ivf_encoding="flat"), (16, 32, 64, 128, 256)),
        Config("ivf-pq48", "ivf", IndexParams(ivf_encoding="pq", pq_m=48), (16, 64, 128)),
    )
}
DEFAULT_CONFIGS = ("flat", "hnsw", "ivf-sq8", "ivf-flat")


def synthetic_vectors(
    count: int, queries: int, *, dimension: int = DIMENSION, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` corpus vectors and ``queries`` query vectors, float32 and L2-normalised.

    Each point is ``normalise(1.7 * m + c + 1.2 * z)``:

    - ``m`` is one shared unit direction: sentence embeddings are anisotropic (two unrelated
      e5 passages still have cosine ~0.7); here two random points have cosine about 0.55;
    - ``c`` is one of 256 topics x 40 sub-topics = 10,240 cluster centres (a sub-topic is its
      topic's unit vector plus a unit-length random offset, renormalised), picked uniformly;
    - ``z`` is Gaussian noise of norm about 1 with a decaying spectrum (standard deviation
      ``i ** -0.5`` along the ``i``-th axis of a random rotation), since embeddings use a few
      directions much more than the rest.

    The noise is large enough that clusters overlap, so an IVF cell does not hold a query's
    whole neighbourhood. Queries are ``normalise(x + 0.15 * u)`` for held-out points ``x``
    (never added to the corpus) and random unit ``u``; their best match has cosine about 0.8.
    """
    rng = np.random.default_rng(seed)

    def unit(a: np.ndarray) -> np.ndarray:
        return (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)

    shared = unit(rng.standard_normal(dimension))
    topics = unit(rng.standard_normal((256, dimension)))
    offsets = unit(rng.standard_normal((256, 40, dimension)))
    centres = unit(topics[:, None, :] + offsets).reshape(-1, dimension)
    rotation, _ = np.linalg.qr(rng.standard_normal((dimension, dimension)))
    scales = np.arange(1, dimension + 1) ** -0.5
    basis = (rotation * (scales / np.linalg.norm(scales))[:, None]).astype(np.float32)

    total = count + queries
    points = np.empty((total, dimension), dtype=np.float32)
    for start in range(0, total, 100_000):  # chunks keep the temporaries small at 1M
        m = min(100_000, total - start)
        noise = rng.standard_normal((m, dimension), dtype=np.float32) @ basis
        picked = centres[rng.integers(0, len(centres), m)]
        points[start : start + m] = unit(1.7 * shared + picked + 1.2 * noise)
    held_out = points[count:]
    jitter = unit(rng.standard_normal((queries, dimension), dtype=np.float32))
    return points[:count], unit(held_out + 0.15 * jitter)


def percentiles(values_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(values_ms, 50)), 3),
        "p95_ms": round(float(np.percentile(values_ms, 95)), 3),
    }


def time_queries(index: FaissIndex, queries: np.ndarray, k: int) -> tuple[list[float], np.ndarray]:
    """Latency of each query searched alone (after a few warm-up queries), and the ids found."""
    for q in queries[:5]:
        index.search(q, k)
    times, found = [], []
    for q in queries:
        t0 = time.perf_counter()
        _, ids = index.search(q, k)
        times.append((time.perf_counter() - t0) * 1000)
        found.append(ids[0])
    return times, np.stack(found)


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the true top-k ids found, per query."""
    k = truth.shape[1]
    hits = [len(set(f[:k].tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True)]
    return round(sum(hits) / (k * len(truth)), 4)


@dataclass
class Result:
    """One index at one size; ``search`` has one row per swept setting."""

    size: int
    config: str
    kind: str
    params: dict[str, object]
    build_s: float
    index_bytes: int
    bytes_per_million: int
    search: list[dict[str, float]] = field(default_factory=list)
    load_average: float = 0.0


def bench_one(
    config: Config, base: np.ndarray, queries: np.ndarray, truth: np.ndarray, k: int
) -> Result:
    t0 = time.perf_counter()
    index = FaissIndex.from_vectors(base, kind=config.kind, params=config.params)
    build_s = time.perf_counter() - t0
    size = index.nbytes()
    params: dict[str, object] = {}
    if config.kind == "hnsw":
        params = {"M": config.params.hnsw_m, "efConstruction": config.params.ef_construction}
    elif config.kind == "ivf":
        params = {
            "nlist": config.params.nlist or default_nlist(len(base)),
            "encoding": config.params.ivf_encoding,
            "train_vectors": min(
                len(base),
                (config.params.nlist or default_nlist(len(base))) * config.params.train_per_cell,
            ),
        }
        if config.params.ivf_encoding == "pq":
            params["pq_m"] = config.params.pq_m
    result = Result(
        size=len(base),
        config=config.name,
        kind=config.kind,
        params=params,
        build_s=round(build_s, 2),
        index_bytes=size,
        bytes_per_million=round(size / len(base) * 1_000_000),
        load_average=round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else 0.0,
    )
    logger.info("%s at %d: built in %.1f s, %.1f MB", config.name, len(base), build_s, size / 1e6)
    for setting in config.sweep or (None,):
        if setting is not None:
            index.set_search_params(**{config.sweep_name: setting})  # type: ignore[arg-type]
        times, found = time_queries(index, queries, k)
        row: dict[str, float] = {config.sweep_name: setting} if setting is not None else {}
        row |= percentiles(times) | {"recall_at_10": recall_at(found, truth)}
        result.search.append(row)
        logger.info("  %s", row)
    return result


def run(
    sizes: list[int], configs: list[str], *, queries: int, seed: int, k: int = 10
) -> Iterator[Result]:
    import faiss

    for size in sizes:
        logger.info("generating %d vectors", size)
        base, qs = synthetic_vectors(size, queries, seed=seed)
        exact = faiss.IndexFlatIP(DIMENSION)
        exact.add(base)
        _, truth = exact.search(qs, k)
        del exact
        for name in configs:
            yield bench_one(CONFIGS[name], base, qs, truth, k)
            gc.collect()
        del base


def machine() -> dict[str, object]:
    import faiss

    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "faiss": faiss.__version__,
        "numpy": np.__version__,
    }


def best_setting(result: Result) -> dict[str, float] | None:
    """The cheapest swept setting that reaches the recall target, else the best recall."""
    rows = result.search
    good = [r for r in rows if r["recall_at_10"] >= RECALL_TARGET]
    return good[0] if good else max(rows, key=lambda r: r["recall_at_10"], default=None)


def markdown(report: dict) -> str:
    """The summary table: per size and index, the setting that meets the recall target."""
    m = report["machine"]
    lines = [
        "# Index kinds by corpus size",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Machine: {m['nproc']} cores, {m['cpu_model']}; FAISS {m['faiss']} on "
        f"{report['threads']} threads; {report['queries']} single queries, k=10.",
        "",
        f"Data: {report['data']}",
        "",
        f"Targets: recall@10 >= {RECALL_TARGET} at <= {LATENCY_TARGET_MS:g} ms per query. "
        "The setting shown is the cheapest swept one reaching the recall target "
        "(else the best recall); all swept settings are in the JSON. 'load avg' is the "
        "1-minute load average after the build: above 2, other processes shared the cores "
        "and latencies are inflated.",
        "",
        "| vectors | index | build params | build s | MB | MB per 1M | search setting "
        "| p50 ms | p95 ms | recall@10 | targets met | load avg |",
        "|---:|---|---|---:|---:|---:|---|---:|---:|---:|---|---:|",
    ]
    for r in report["results"]:
        result = Result(**r)
        best = best_setting(result) or {}
        setting = ", ".join(f"{k}={v}" for k, v in best.items() if not k.endswith(("ms", "10")))
        met = (
            best.get("recall_at_10", 0) >= RECALL_TARGET
            and best.get("p95_ms", 1e9) <= LATENCY_TARGET_MS
        )
        build = ", ".join(f"{k}={v}" for k, v in result.params.items()) or "-"
        lines.append(
            f"| {result.size:,} | {result.config} | {build} | {result.build_s:.1f} "
            f"| {result.index_bytes / 1e6:.0f} | {result.bytes_per_million / 1e6:.0f} "
            f"| {setting or '-'} | {best.get('p50_ms', 0):.2f} | {best.get('p95_ms', 0):.2f} "
            f"| {best.get('recall_at_10', 0):.3f} | {'yes' if met else 'no'} "
            f"| {result.load_average:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=DEFAULT_CONFIGS)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/index_scale.json"))
    parser.add_argument(
        "--markdown-only", action="store_true", help="rewrite the .md from an existing --out JSON"
    )
    args = parser.parse_args(argv)
    if args.markdown_only:
        report = json.loads(args.out.read_text(encoding="utf-8"))
        args.out.with_suffix(".md").write_text(markdown(report), encoding="utf-8")
        return 0
    if any(s < 1000 for s in args.sizes) or args.queries < 10 or args.threads < 1:
        parser.error("sizes must be >= 1000, queries >= 10, threads >= 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import faiss

    faiss.omp_set_num_threads(args.threads)
    started = time.perf_counter()
    results = []
    for result in run(args.sizes, list(args.configs), queries=args.queries, seed=args.seed):
        results.append(asdict(result))
    report = {
        "command": "python -m benchmarks.index_scale "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
        "threads": args.threads,
        "queries": args.queries,
        "data": DATA_DESCRIPTION + f"; seed {args.seed}",
        "total_s": round(time.perf_counter() - started, 1),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(markdown(report), encoding="utf-8")
    logger.info(
        "wrote %s and %s in %.0f s", args.out, args.out.with_suffix(".md"), report["total_s"]
    )
    return 0


if __name__ == "__main__":  # pragma: no cover - python -m benchmarks.index_scale
    raise SystemExit(main())
