"""How cost grows with the corpus: build, disk, load, memory and query time from 1k to 1M passages.

Run ``python -m benchmarks.growth --sizes 1000 10000 100000 1000000 --out
benchmarks/results/growth.json`` (``--sizes 1000 5000`` is a smoke test of two minutes). It
writes the JSON, a Markdown table beside it (same name, ``.md``) and, with matplotlib installed
(``pip install 'ludao[bench]'``), a PNG plot.

No corpus of a million passages ships with Ludao, so the script makes one from the CMRC 2018
*training* paragraphs (``../shared/data/qa/cmrc2018_train.json``), chunked as Ludao chunks
documents. The first ``--pool`` passages are embedded for real with the default model (that
gives the embedding rate); every further passage is a perturbed copy of one of them: its
sentences in another order, every number replaced by a random one and a record number added (so
BM25's vocabulary grows as an archive's does), with the pooled vector plus noise, renormalised.
Embedding a million passages on 2 cores takes 8 hours (benchmarks/results/ray_build.json), so
the build column adds the measured embedding rate to the measured rest (BM25, FAISS, writing).

Each size is built and saved through the real index code (``qa.index.save_retriever``), then
opened in a fresh process (``--measure``), so its load time and resident memory are what a
restarted server sees. Questions are CMRC training questions about pooled paragraphs, asked one
at a time; "dense" and "bm25" time one ranking each (the question already embedded for dense),
"end to end" is ``Pipeline.ask`` with the default reader.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.index_scale import percentiles
from benchmarks.query_engines import cpu_info

logger = logging.getLogger(__name__)

TRAIN = Path("../shared/data/qa/cmrc2018_train.json")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SENTENCE = re.compile(r"[^。！？]*[。！？]?")


def pool_passages(train: Path, limit: int):
    """Up to ``limit`` passages from the training paragraphs, and questions about them."""
    from qa.chunking import chunk
    from qa.schema import Document

    data = json.loads(train.read_text(encoding="utf-8"))
    passages, questions = [], []
    for article in data["data"]:
        for number, paragraph in enumerate(article["paragraphs"]):
            doc = Document(
                id=f"{article.get('id', 'a')}-{number}", title="", text=paragraph["context"]
            )
            passages.extend(chunk(doc))
            questions.extend(qa["question"] for qa in paragraph["qas"][:1])
            if len(passages) >= limit:
                return passages[:limit], questions
    return passages, questions


def perturbed_text(text: str, rng: random.Random, record: int) -> str:
    sentences = [s for s in _SENTENCE.findall(text) if s]
    rng.shuffle(sentences)
    body = _NUMBER.sub(lambda m: str(rng.randint(1, 10 ** len(m.group()))), "".join(sentences))
    return f"{body}（档案{record}号）"


def synthetic_corpus(pool, pool_vectors: np.ndarray, size: int, seed: int = 0):
    """``size`` passages and vectors: the pool itself, then perturbed copies of it."""
    from qa.schema import Passage

    rng, noise_rng = random.Random(seed), np.random.default_rng(seed)
    passages, vectors = list(pool[:size]), np.empty((size, pool_vectors.shape[1]), np.float32)
    vectors[: len(passages)] = pool_vectors[: len(passages)]
    for i in range(len(passages), size):
        base = pool[i % len(pool)]
        text = perturbed_text(base.text, rng, i)
        passages.append(
            Passage(
                id=f"copy{i}",
                doc_id=f"copy{i}",
                title="",
                text=text,
                start=0,
                end=len(text),
                orig_start=0,
                orig_end=len(text),
            )
        )
    for start in range(len(pool), size, 100_000):
        end = min(size, start + 100_000)
        rows = pool_vectors[np.arange(start, end) % len(pool)]
        rows = rows + 0.05 * noise_rng.standard_normal(rows.shape, dtype=np.float32)
        vectors[start:end] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return passages, vectors


def folder_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 1)


def build(size: int, pool, pool_vectors, encoder, embed_s_per_1k: float, work: Path) -> dict:
    from qa.index import save_retriever
    from qa.retrieval import Retriever

    passages, vectors = synthetic_corpus(pool, pool_vectors, size)
    t0 = time.perf_counter()
    retriever = Retriever(encoder, passages, vectors=vectors).build()
    index_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    directory = save_retriever(retriever, work / f"index-{size}")
    save_s = time.perf_counter() - t0
    rest_per_1k = (index_s + save_s) / size * 1000
    return {
        "passages": size,
        "index_kind": retriever.dense_index.kind,
        "bm25_and_faiss_s": round(index_s, 2),
        "save_s": round(save_s, 2),
        "build_s_per_1k": round(embed_s_per_1k + rest_per_1k, 2),
        "build_s_per_1k_without_embedding": round(rest_per_1k, 3),
        "disk_mb": folder_mb(directory),
        "directory": str(directory),
    }


def _encoder():
    from qa.config import Settings
    from qa.index import locate_index

    return locate_index(Settings.load()).encoder


def measure(directory: Path, questions: list[str]) -> dict:
    """In a fresh process: open the saved index, then time each stage per question."""
    from qa.config import Settings
    from qa.index import load_retriever
    from qa.pipeline import Pipeline
    from qa.readers import reader_from_settings

    settings = Settings.load(answer_cache_size=0)
    encoder = _encoder()
    encoder.encode_query("预热")  # the model load is the server's, not the index's
    reader = reader_from_settings(settings)
    t0 = time.perf_counter()
    retriever = load_retriever(directory, encoder)
    load_s = time.perf_counter() - t0
    rss_after_load = _rss_mb()
    pipeline = Pipeline(
        retriever=retriever, reader=reader, top_k=settings.top_k, reader_top_k=settings.reader_top_k
    )
    for question in questions[:3]:
        pipeline.ask(question)
    dense, sparse, end_to_end = [], [], []
    for question in questions:
        vector = encoder.encode_query(question)
        t0 = time.perf_counter()
        retriever.dense_ranking(question, retriever.candidates, vector=vector)
        t1 = time.perf_counter()
        retriever.sparse_ranking(question, retriever.candidates)
        t2 = time.perf_counter()
        pipeline.ask(question)
        t3 = time.perf_counter()
        dense.append((t1 - t0) * 1000)
        sparse.append((t2 - t1) * 1000)
        end_to_end.append((t3 - t2) * 1000)
    return {
        "load_s": round(load_s, 2),
        "rss_mb_after_load": rss_after_load,
        "rss_mb_peak": _rss_mb("VmHWM"),
        **{
            f"{name}_{key}": value
            for name, times in (("dense", dense), ("bm25", sparse), ("end_to_end", end_to_end))
            for key, value in percentiles(times).items()
        },
    }


def _rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def table(result: dict) -> str:
    lines = [
        "| passages | dense index | build s per 1k (without embedding) | disk MB | load s | "
        "RSS MB (peak) | dense p50/p95 ms | BM25 p50/p95 ms | end to end p50/p95 ms |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['passages']:,} | {row['index_kind']} | {row['build_s_per_1k']} "
            f"({row['build_s_per_1k_without_embedding']}) | {row['disk_mb']:,} | {row['load_s']} | "
            f"{row['rss_mb_after_load']:,} ({row['rss_mb_peak']:,}) | "
            f"{row['dense_p50_ms']} / {row['dense_p95_ms']} | {row['bm25_p50_ms']} / "
            f"{row['bm25_p95_ms']} | {row['end_to_end_p50_ms']} / {row['end_to_end_p95_ms']} |"
        )
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed (pip install 'ludao[bench]'): no plot")
        return False
    rows = result["rows"]
    sizes = [r["passages"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (
        ("end_to_end_p50_ms", "end to end p50"),
        ("bm25_p50_ms", "BM25 p50"),
        ("dense_p50_ms", "dense p50"),
    ):
        left.plot(sizes, [r[key] for r in rows], marker="o", label=label)
    left.set(xscale="log", yscale="log", xlabel="passages", ylabel="ms per question")
    left.legend()
    right.plot(sizes, [r["rss_mb_after_load"] for r in rows], marker="o", label="RSS after load")
    right.plot(sizes, [r["disk_mb"] for r in rows], marker="s", label="index on disk")
    right.set(xscale="log", yscale="log", xlabel="passages", ylabel="MB")
    right.legend()
    machine = result["machine"]
    fig.suptitle(f"Ludao cost by corpus size ({machine['model']}, {machine['cpus']} cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--pool", type=int, default=1000, help="passages embedded for real")
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/growth.json"))
    parser.add_argument("--train", type=Path, default=TRAIN)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    pool, questions = pool_passages(args.train, args.pool)
    questions = questions[: args.questions]
    if args.measure:
        print(json.dumps(measure(args.measure, questions)))
        return
    encoder = _encoder()
    encoder.encode_passages([p.text for p in pool[:16]], show_progress=False)
    t0 = time.perf_counter()
    pool_vectors = encoder.encode_passages([p.text for p in pool], show_progress=False)
    embed_s_per_1k = (time.perf_counter() - t0) / len(pool) * 1000
    logger.info("embedded %d pool passages: %.1f s per 1k", len(pool), embed_s_per_1k)
    result = {
        "benchmark": "benchmarks.growth",
        "command": "python -m benchmarks.growth --sizes " + " ".join(map(str, args.sizes)),
        "machine": cpu_info(),
        "data": str(args.train),
        "pool_passages": len(pool),
        "questions": len(questions),
        "embed_s_per_1k": round(embed_s_per_1k, 2),
        "rows": [],
    }
    work = Path(tempfile.mkdtemp(prefix="ludao-growth-"))
    try:
        for size in args.sizes:
            logger.info("building %d passages", size)
            row = build(size, pool, pool_vectors, encoder, embed_s_per_1k, work)
            child = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.growth",
                    "--measure",
                    row.pop("directory"),
                    "--questions",
                    str(args.questions),
                    "--pool",
                    str(args.pool),
                    "--train",
                    str(args.train),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            row.update(json.loads(child.stdout.strip().splitlines()[-1]))
            logger.info("%s", row)
            result["rows"].append(row)
            shutil.rmtree(work / f"index-{size}")
            write_results(result, args.out)  # after each size: a long run keeps what it measured
    finally:
        shutil.rmtree(work, ignore_errors=True)
    plot(result, args.out.with_suffix(".png"))


def write_results(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(table(result), encoding="utf-8")


if __name__ == "__main__":
    main()
