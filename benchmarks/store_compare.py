"""FAISS vs Milvus Lite, side by side in one run: same answers, and how fast.

``python -m benchmarks.store_compare --out benchmarks/results/store_compare.json`` writes the
JSON and a Markdown summary beside it (same name, ``.md``). Two parts (``--parts``):

- ``quality``: the seed sets on the default corpus and the first ``--cmrc-limit`` questions of
  CMRC 2018 dev, open domain (the file's own paragraphs are the corpus, as ``ludao eval`` does),
  answered through the FAISS store and through a Milvus Lite store holding the same passages.
  Each passage is embedded once: the Milvus store is filled with the vectors of the FAISS index
  (so the comparison is of the stores, not of two embedding runs). The reader is shared and
  answers a (question, passages) pair once: where both stores retrieve the same passages, the
  reader's answer is necessarily the same, so it is not computed twice.
- ``speed``: index build rate and single-query latency (hybrid dense + BM25, top 5, one query
  at a time) of both stores at ``--sizes`` passages. Passages and vectors are synthetic (see
  :func:`synthetic_corpus`): embedding is the same cost for both stores and is left out, so
  the build rate is what the store itself costs (BM25 terms, index, writes).

The machine's load average is recorded before and after each part: the numbers are only as
calm as the machine was.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.index_scale import machine, synthetic_vectors
from qa.config import REPO_ROOT, Settings
from qa.corpus import Corpus, corpus_from_settings
from qa.eval.question_files import load_examples, load_squad_paragraphs
from qa.eval.runner import evaluate, pipeline_asker
from qa.index import locate_index, update_index
from qa.pipeline import Pipeline
from qa.schema import Passage

logger = logging.getLogger(__name__)

SEED_SETS = {
    "seed_dev": REPO_ROOT.parent / "shared" / "eval" / "seed_dev.jsonl",
    "seed_questions": REPO_ROOT / "qa" / "eval" / "data" / "seed_questions.jsonl",
}
CMRC_DEV = REPO_ROOT.parent / "shared" / "data" / "qa" / "cmrc2018_dev.json"


class ReusedVectors:
    """An encoder that hands out the vectors a FAISS retriever already holds, by passage text.

    Queries (and any text the retriever does not hold) go to the real encoder.
    """

    def __init__(self, retriever: Any) -> None:
        self.encoder = retriever.encoder
        self.model_id = self.encoder.model_id
        self.dimension = self.encoder.dimension
        vectors = retriever.vectors
        self.by_text = {p.text: vectors[i] for i, p in enumerate(retriever.passages)}
        self.missing = 0

    def encode_passages(self, texts: list[str], *, show_progress: bool | None = None) -> np.ndarray:
        unknown = [t for t in texts if t not in self.by_text]
        if unknown:
            self.missing += len(unknown)
            fresh = self.encoder.encode_passages(unknown)
            self.by_text.update(zip(unknown, fresh, strict=True))
        return np.stack([self.by_text[t] for t in texts]).astype(np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encoder.encode_query(text)


class OnceReader:
    """The reader, asked once per (question, passages, top_k); the answer is deterministic."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.name = reader.name
        self.answers: dict[tuple, Any] = {}
        self.calls = 0

    def read(self, question: str, passages: Sequence[Passage], top_k: int = 3) -> Any:
        key = (question, tuple(p.id for p in passages), top_k)
        if key not in self.answers:
            self.calls += 1
            self.answers[key] = self.reader.read(question, passages, top_k=top_k)
        return self.answers[key]


def load() -> dict[str, float]:
    one, five, _ = os.getloadavg()
    return {"load1": round(one, 2), "load5": round(five, 2)}


def milvus_twin(faiss: Pipeline, corpus: Corpus, uri: str, name: str, settings: Settings):
    """A pipeline over a Milvus Lite store filled with ``faiss``'s passages and vectors."""
    from qa.stores.milvus_store import MilvusStore

    encoder = ReusedVectors(faiss.retriever)
    t0 = time.perf_counter()
    update = MilvusStore(uri, name).sync(
        corpus,
        encoder,  # type: ignore[arg-type]  # the encoder's shape
        roots=list(settings.corpus),
        rrf_k=settings.rrf_k,
        dense_weight=settings.dense_weight,
        sparse_weight=settings.sparse_weight,
    )
    seconds = time.perf_counter() - t0
    pipeline = Pipeline(
        retriever=update.searcher,  # type: ignore[arg-type]
        reader=faiss.reader,
        top_k=settings.top_k,
        reader_top_k=settings.reader_top_k,
        max_question_chars=settings.max_question_chars,
    )
    filled = {
        "passages": update.passages,
        "seconds": round(seconds, 2),
        "embedded": encoder.missing,
    }
    return pipeline, filled


def compare(name: str, examples: list, faiss: Pipeline, milvus: Pipeline) -> dict[str, Any]:
    """Both stores on ``examples``: metrics, and how often the two retrieved the same."""
    out: dict[str, Any] = {"n": len(examples)}
    predictions = {}
    for store, pipeline in (("faiss", faiss), ("milvus", milvus)):
        t0 = time.perf_counter()
        report, preds = evaluate(
            examples,
            pipeline_asker(pipeline, top_k=5),
            reader_name=pipeline.reader.name,
            embedding_model=None,
            mode=f"{name} ({store})",
            with_retrieval=True,
        )
        record = report.to_dict()
        out[store] = {
            "recall@5": record["recall@5"],
            "recall@1": record["recall@1"],
            "f1": record["f1"],
            "exact_match": record["exact_match"],
            "mrr": record["mrr"],
            "seconds": round(time.perf_counter() - t0, 1),
        }
        predictions[store] = preds
    pairs = list(zip(predictions["faiss"], predictions["milvus"], strict=True))
    out["same_top5_passages"] = sum(a.retrieved == b.retrieved for a, b in pairs)
    out["same_top5_set"] = sum(set(a.retrieved) == set(b.retrieved) for a, b in pairs)
    out["same_answer"] = sum(a.prediction == b.prediction for a, b in pairs)
    out["delta_points"] = {
        metric: round(out["milvus"][metric] - out["faiss"][metric], 2)
        for metric in ("recall@5", "f1")
    }
    return out


def quality(settings: Settings, work: Path, cmrc_limit: int) -> dict[str, Any]:
    settings = replace(settings, answer_cache_size=0)  # every question goes to the store
    faiss = Pipeline.from_settings(settings)  # the default corpus; its saved index is reused
    faiss.reader = OnceReader(faiss.reader)  # type: ignore[assignment]
    results: dict[str, Any] = {"load_before": load()}
    corpus = corpus_from_settings(settings)
    milvus, filled = milvus_twin(faiss, corpus, str(work / "quality.db"), "seed_corpus", settings)
    results["default_corpus"] = filled
    for name, path in SEED_SETS.items():
        if path.is_file():
            results[name] = compare(name, load_examples(path), faiss, milvus)
            logger.info("%s: %s", name, results[name]["delta_points"])
    if cmrc_limit and CMRC_DEV.is_file():
        passages = [
            Passage(id=pid, doc_id=pid, title=CMRC_DEV.stem, text=text, start=0, end=len(text))
            for pid, text in load_squad_paragraphs(CMRC_DEV)
        ]
        where = locate_index(settings, [CMRC_DEV])  # the index `ludao eval` saves and reuses
        cmrc_corpus = Corpus(documents=[], passages=passages)
        retriever = update_index(cmrc_corpus, where.encoder, where.index_dir).retriever
        cmrc_faiss = Pipeline(
            retriever=retriever,
            reader=faiss.reader,
            top_k=settings.top_k,
            reader_top_k=settings.reader_top_k,
        )
        cmrc_milvus, filled = milvus_twin(
            cmrc_faiss, cmrc_corpus, str(work / "cmrc.db"), "cmrc_dev", settings
        )
        examples = load_examples(CMRC_DEV)[:cmrc_limit]
        results["cmrc_dev_open"] = {
            "store": filled,
            **compare("cmrc", examples, cmrc_faiss, cmrc_milvus),
        }
    results["reader_calls"] = faiss.reader.calls  # type: ignore[attr-defined]
    results["load_after"] = load()
    return results


# -- speed ------------------------------------------------------------------------------------


def dictionary_words(count: int = 30_000) -> list[str]:
    """jieba's ``count`` most frequent words of two or more characters, most frequent first."""
    import jieba

    entries = []
    with (Path(jieba.__file__).parent / "dict.txt").open(encoding="utf-8") as fh:
        for line in fh:
            word, freq, *_ = line.split()
            if len(word) >= 2:
                entries.append((int(freq), word))
    return [w for _, w in sorted(entries, reverse=True)[:count]]


def synthetic_corpus(count: int, queries: int, *, seed: int) -> tuple[Corpus, list[str], dict]:
    """``count`` passages of 48 words each (~130 characters; 10 passages per document) drawn
    Zipf-wise from jieba's 30,000 most frequent words, ``queries`` query texts (5 consecutive
    words of a random passage) and the vectors of both
    (``benchmarks.index_scale.synthetic_vectors``: shaped like sentence embeddings; query vectors
    are noisy copies of held-out points, so dense and BM25 disagree as they do on real text).
    """
    rng = np.random.default_rng(seed)
    vocabulary = dictionary_words()
    ranks = np.arange(1, len(vocabulary) + 1)
    weights = 1 / ranks
    weights /= weights.sum()
    words = rng.choice(len(vocabulary), size=(count, 48), p=weights)
    texts = ["".join(vocabulary[w] for w in row) for row in words]
    passages = [
        Passage(id=f"s{i}", doc_id=f"doc{i // 10}", title="synthetic", text=t, start=0, end=len(t))
        for i, t in enumerate(texts)
    ]
    picks = rng.integers(0, count, queries)
    query_texts = [
        f"{''.join(vocabulary[w] for w in words[p][s : s + 5])}？{i}"
        for i, (p, s) in enumerate(zip(picks, rng.integers(0, 40, queries), strict=True))
    ]
    vectors, query_vectors = synthetic_vectors(count, queries, seed=seed)
    lookup = {t: vectors[i] for i, t in enumerate(texts)}
    lookup.update({q: query_vectors[i] for i, q in enumerate(query_texts)})
    return Corpus(documents=[], passages=passages), query_texts, lookup


@dataclass
class LookupEncoder:
    """Vectors from a table (no model): the speed part measures the stores, not embedding."""

    table: dict[str, np.ndarray]
    model_id: str = "synthetic-384"
    dimension: int = 384
    calls: list[int] = field(default_factory=list)

    def encode_passages(self, texts: list[str], *, show_progress: bool | None = None) -> np.ndarray:
        self.calls.append(len(texts))
        return np.stack([self.table[t] for t in texts])

    def encode_query(self, text: str) -> np.ndarray:
        return self.table[text]


def latencies(searcher: Any, queries: list[str]) -> dict[str, float]:
    for q in queries[:10]:
        searcher.search(q, top_k=5)
    times = []
    for q in queries:
        t0 = time.perf_counter()
        hits = searcher.search(q, top_k=5)
        times.append((time.perf_counter() - t0) * 1000)
        assert hits, q
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
        "queries": len(times),
    }


def wait_indexed(client: Any, collection: str, timeout: float = 900) -> float:
    """When every index of ``collection`` says all rows are indexed (``perf_counter`` time)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        names = client.list_indexes(collection)
        infos = [client.describe_index(collection, name) for name in names]
        if all(i.get("pending_index_rows", 0) == 0 for i in infos):
            return time.perf_counter()
        time.sleep(0.5)
    return time.perf_counter()


def disk_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return round(sum(p.stat().st_size for p in files) / 2**20, 1)


def speed(sizes: Sequence[int], queries: int, work: Path) -> dict[str, Any]:
    from qa.stores.milvus_search import MilvusSearcher
    from qa.stores.milvus_store import MilvusStore

    out: dict[str, Any] = {}
    for n in sizes:
        corpus, query_texts, table = synthetic_corpus(n, queries, seed=n)
        row: dict[str, Any] = {"load_before": load()}
        encoder = LookupEncoder(table)
        folder = work / f"faiss_{n}"
        t0 = time.perf_counter()
        retriever = update_index(corpus, encoder, folder).retriever  # type: ignore[arg-type]
        built = time.perf_counter() - t0
        row["faiss"] = {
            "build_s": round(built, 1),
            "passages_per_s": round(n / built),
            "disk_mb": disk_mb(folder),
            **latencies(retriever, query_texts),
        }
        del retriever
        logger.info("FAISS %d: %s", n, row["faiss"])
        data = work / f"milvus_{n}.db"
        t0 = time.perf_counter()
        store = MilvusStore(str(data), f"synthetic_{n}")
        searcher = store.sync(corpus, encoder).searcher  # type: ignore[arg-type]
        built = time.perf_counter() - t0
        indexed = wait_indexed(store.client, store.collection) - t0
        first = latencies(searcher, query_texts)  # while background index merges may still run
        row["milvus_lite"] = {
            "build_s": round(built, 1),
            "passages_per_s": round(n / built),
            "indexed_s": round(indexed, 1),
            "disk_mb": disk_mb(data),
            "first_round": first,
            **latencies(searcher, query_texts),
        }
        for part, weights in (("dense_only", (1.0, 0.0)), ("sparse_only", (0.0, 1.0))):
            one = MilvusSearcher(
                store.client,
                uri=store.uri,
                collection=store.collection,
                encoder=encoder,  # type: ignore[arg-type]
                passages=n,
                dense_weight=weights[0],
                sparse_weight=weights[1],
            )
            row["milvus_lite"][part] = latencies(one, query_texts)
        store.client.close()
        logger.info("Milvus Lite %d: %s", n, row["milvus_lite"])
        row["load_after"] = load()
        out[str(n)] = row
        shutil.rmtree(folder, ignore_errors=True)
    return out


# -- report -----------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# FAISS vs Milvus Lite",
        "",
        f"{report['machine']['nproc']} cores "
        f"({report['machine']['cpu_model']}), pymilvus {report['versions']['pymilvus']}, "
        f"milvus-lite {report['versions']['milvus_lite']}. The machine was shared: load "
        "averages before/after each part are in the JSON and below.",
        "",
    ]
    quality_part = report.get("quality")
    if quality_part:
        lines += [
            "## Same answers",
            "",
            "Both stores hold the same passages with the same vectors (embedded once); one reader.",
            f"`{quality_part.get('command', '')}`",
            "",
            "| set | n | recall@5 FAISS | recall@5 Milvus | F1 FAISS | F1 Milvus "
            "| Δ recall@5 | Δ F1 | same top-5 (order) | same answer |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name in ("seed_dev", "seed_questions", "cmrc_dev_open"):
            r = quality_part.get(name)
            if not r:
                continue
            f, m = r["faiss"], r["milvus"]
            lines.append(
                f"| {name} | {r['n']} | {f['recall@5']} | {m['recall@5']} | {f['f1']} | {m['f1']} "
                f"| {r['delta_points']['recall@5']:+} | {r['delta_points']['f1']:+} "
                f"| {r['same_top5_passages']} | {r['same_answer']} |"
            )
        lines += [
            "",
            f"Load average before/after: {quality_part['load_before']} / "
            f"{quality_part['load_after']}.",
            "",
        ]
    speed_part = report.get("speed")
    if speed_part:
        lines += [
            "## Build rate and query latency (synthetic passages and vectors)",
            "",
            f"`{report.get('speed_command', '')}`",
            "",
            "Hybrid search (dense + BM25, RRF), top 5, one query at a time; build excludes "
            "embedding (vectors come from a table) and includes BM25 terms, index and writes. "
            "Milvus Lite keeps building segment indexes in the background after the last "
            "write: *indexed s* is when `describe_index` reports no pending rows; *first "
            "round* is the latency measured right after that, the main columns a second round.",
            "",
            "| passages | store | build s | passages/s | indexed s | query p50 ms | query p95 ms "
            "| first round p50/p95 | disk MB | load before → after |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |",
        ]
        for n, row in speed_part.items():
            for store in ("faiss", "milvus_lite"):
                s = row[store]
                first = s.get("first_round")
                early = f"{first['p50_ms']} / {first['p95_ms']}" if first else "–"
                lines.append(
                    f"| {int(n):,} | {store} | {s['build_s']} | {s['passages_per_s']:,} "
                    f"| {s.get('indexed_s', s['build_s'])} | {s['p50_ms']} | {s['p95_ms']} "
                    f"| {early} "
                    f"| {s['disk_mb']} "
                    f"| {row['load_before']['load1']} → {row['load_after']['load1']} |"
                )
        lines += ["", "Milvus Lite, one request alone (p50 / p95 ms):", ""]
        for n, row in speed_part.items():
            m = row["milvus_lite"]
            if "dense_only" in m:
                d, sp = m["dense_only"], m["sparse_only"]
                lines.append(
                    f"- {int(n):,} passages: dense only {d['p50_ms']} / {d['p95_ms']}, "
                    f"BM25 sparse only {sp['p50_ms']} / {sp['p95_ms']}"
                )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", nargs="+", default=["quality", "speed"])
    parser.add_argument("--cmrc-limit", type=int, default=500)
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/store_compare.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import milvus_lite
    import pymilvus

    command = "python -m benchmarks.store_compare " + " ".join(argv or sys.argv[1:])
    report: dict[str, Any] = {}
    if args.out.is_file():  # a part run alone replaces only its own part
        report = json.loads(args.out.read_text(encoding="utf-8"))
    report |= {
        "machine": machine(),
        "versions": {"pymilvus": pymilvus.__version__, "milvus_lite": milvus_lite.__version__},
    }
    work = Path(tempfile.mkdtemp(prefix="ludao-store-compare-"))
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def write() -> None:  # after each part, so a later failure keeps what was measured
        text = json.dumps(report, ensure_ascii=False, indent=1) + "\n"
        args.out.write_text(text, encoding="utf-8")
        args.out.with_suffix(".md").write_text(markdown(report), encoding="utf-8")

    try:
        if "quality" in args.parts:
            report["quality"] = quality(Settings.load(), work, args.cmrc_limit)
            report["quality"]["command"] = command
            write()
        if "speed" in args.parts:
            report["speed"] = speed(args.sizes, args.queries, work)
            report["speed_command"] = command
            write()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


if __name__ == "__main__":
    main()
