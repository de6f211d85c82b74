"""Ludao vs Haystack on CMRC 2018 dev (open domain) and the seed corpus, in one run.

    python -m benchmarks.haystack_peer                # first 200 CMRC questions + seed set
    python -m benchmarks.haystack_peer --limit 100 --skip-seed

Creates (or reuses) ``.venv-haystack/``, exports the shipped reader to
``artifacts/haystack-peer/reader-zh``, then writes ``benchmarks/results/haystack_side_by_side``
``.json``, ``.md`` and ``.predictions.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from qa.config import REPO_ROOT, Settings
from qa.errors import LudaoError
from qa.eval.question_files import SEED_QUESTIONS

from .compare import CorpusResult, HaystackProcess, RunnerError, build_ludao, run_corpus, write_spec
from .provision import SetupError, ensure_haystack_venv, export_reader
from .report import render_markdown

logger = logging.getLogger("benchmarks.haystack_peer")

DEFAULT_CMRC = REPO_ROOT.parent / "shared" / "data" / "qa" / "cmrc2018_dev.json"
RESULT_STEM = "haystack_side_by_side"
NOTES = [
    "Same passages: Haystack's InMemoryDocumentStore receives Ludao's passages (ids and text), "
    "so retrieval is compared on identical chunks; a Haystack user would otherwise split "
    "documents with Haystack's own DocumentSplitter. CMRC: one passage per paragraph (848).",
    "Same models: the converted multilingual-e5-small folder for both embedders (Haystack with "
    "prefix 'query: ' / 'passage: ' and normalize_embeddings=True), and Ludao's shipped reader "
    "exported with save_pretrained for Haystack's TransformersExtractiveReader.",
    "Haystack pipeline: SentenceTransformersTextEmbedder → InMemoryEmbeddingRetriever (top_k 50) "
    "and InMemoryBM25Retriever (top_k 50, default BM25L and tokeniser) → DocumentJoiner "
    "(reciprocal_rank_fusion, top_k 5) → TransformersExtractiveReader (top_k 1, its default "
    "max_seq_length 384 / stride 128, no_answer on). Ludao: Pipeline as the CLI builds it (top_k 5;"
    " 50 candidates per retriever; reader windows 256 / stride 96 from reader.json).",
    "BM25 tokenisation of Chinese: haystack-ai 3.x's default regex makes every CJK character a "
    "token (character unigrams); haystack-ai 2.x's default `(?u)\\b\\w\\w+\\b` made a whole run "
    "of Han characters one token. The variant rows show recall with that old regex. Haystack is "
    "not patched; Ludao's BM25 uses jieba words.",
    "Ludao's answer cache (a repeated question is answered from memory) is switched off: "
    "Haystack has none, and each question is asked once after the warm-up.",
    "Each system runs in its own process with torch threads = 2; the Haystack process waits on "
    "its pipe while Ludao answers and the other way round, and the order flips every question.",
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.haystack_peer",
        description="Ludao vs Haystack (haystack-ai + its transformers integration): latency "
        "ratio, recall@5 and EM/F1 on the same passages, models and questions.",
    )
    parser.add_argument("--limit", type=int, default=200, help="CMRC questions (default 200)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed questions per corpus")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per process")
    parser.add_argument("--cmrc", type=Path, default=DEFAULT_CMRC, help="CMRC 2018 dev JSON")
    parser.add_argument("--seed-questions", type=Path, default=SEED_QUESTIONS)
    parser.add_argument(
        "--seed-limit", type=int, default=None, help="seed questions (default: all)"
    )
    parser.add_argument(
        "--ludao-precision",
        choices=("auto", "fp32", "bf16"),
        default=None,
        help="Ludao's reader and embedding precision (default: its settings, i.e. auto)",
    )
    parser.add_argument(
        "--haystack-precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="bf16 loads Haystack's three models with dtype=bfloat16 (default: fp32, "
        "Haystack's own default)",
    )
    parser.add_argument(
        "--out-stem", default=RESULT_STEM, help=f"result file names (default {RESULT_STEM})"
    )
    parser.add_argument("--skip-seed", action="store_true", help="CMRC only")
    parser.add_argument("--skip-cmrc", action="store_true", help="seed corpus only")
    parser.add_argument("--venv", type=Path, default=REPO_ROOT / ".venv-haystack")
    parser.add_argument("--work-dir", type=Path, default=REPO_ROOT / "artifacts" / "haystack-peer")
    parser.add_argument("--out-dir", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    return parser


def _check_args(args: argparse.Namespace) -> None:
    if args.limit < 1 or (args.seed_limit is not None and args.seed_limit < 1):
        raise ValueError("--limit and --seed-limit must be at least 1")
    if args.warmup < 0 or args.threads < 1:
        raise ValueError("--warmup must be 0 or more and --threads at least 1")
    if args.skip_seed and args.skip_cmrc:
        raise ValueError("--skip-seed and --skip-cmrc together leave nothing to run")
    if not args.skip_cmrc and not args.cmrc.is_file():
        raise ValueError(f"CMRC file not found: {args.cmrc} (pass --cmrc or --skip-cmrc)")
    if not args.skip_seed and not args.seed_questions.is_file():
        raise ValueError(f"seed questions not found: {args.seed_questions}")


def _versions() -> dict[str, str]:
    found = {}
    for name in ("ludao", "transformers", "sentence-transformers", "torch", "faiss-cpu", "bm25s"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _corpora(args: argparse.Namespace, settings: Settings) -> list[tuple[str, Any, list[Any]]]:
    """(name, pipeline factory, questions) for each corpus to run."""
    from qa.eval.question_files import load_examples
    from qa.eval.runner import squad_paragraph_pipeline
    from qa.pipeline import Pipeline

    corpora: list[tuple[str, Any, list[Any]]] = []
    if not args.skip_cmrc:
        examples = load_examples(args.cmrc)[: args.limit]
        name = f"CMRC 2018 dev, open domain over all paragraphs (first {len(examples)} questions)"
        corpora.append((name, lambda: squad_paragraph_pipeline(args.cmrc, settings), examples))
    if not args.skip_seed:
        seed = replace(settings, corpus=Settings().corpus)
        examples = load_examples(args.seed_questions)[: args.seed_limit]
        name = f"Seed corpus data/corpus/ ({len(examples)} seed questions)"
        corpora.append((name, lambda: Pipeline.from_settings(seed, rebuild=True), examples))
    return corpora


def run(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    import torch

    from embeddings.models import resolve_model

    started = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    python = ensure_haystack_venv(args.venv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    base = Settings.load()
    if args.ludao_precision:
        base = replace(
            base, reader_precision=args.ludao_precision, embedding_precision=args.ludao_precision
        )
    reader_dir = export_reader(Path(base.reader), args.work_dir / "reader-zh")
    embedding_model = resolve_model(base.embedding_model)
    results: list[CorpusResult] = []
    haystack_versions: dict[str, str] = {}
    # A fresh index home, so Ludao's index is built (and timed) rather than reused.
    with tempfile.TemporaryDirectory(prefix="ludao-haystack-peer-") as home:
        settings = replace(base, home=home)
        for number, (name, factory, examples) in enumerate(_corpora(args, settings)):
            logger.info("%s: building Ludao's index", name)
            ludao = build_ludao(factory)
            spec = write_spec(
                args.work_dir / f"spec-{number}.json",
                ludao.passages,
                embedding_model=embedding_model,
                reader_model=reader_dir,
                threads=args.threads,
                candidates=ludao.pipeline.retriever.candidates,
                top_k=settings.top_k,
                precision=args.haystack_precision,
            )
            precision = {
                "ludao_reader": ludao.pipeline.reader.resolved_precision,
                "ludao_embedding": ludao.pipeline.retriever.encoder.resolved_precision,
                "haystack": args.haystack_precision,
            }
            logger.info("%s: starting Haystack", name)
            haystack = HaystackProcess(
                python, spec, args.work_dir / f"runner-{number}.log", args.threads
            )
            try:
                result = run_corpus(
                    name, examples, ludao, haystack, warmup=args.warmup, top_k=settings.top_k
                )
            finally:
                haystack.close()
            haystack_versions = haystack.ready.get("versions", {})
            results.append(result)
            # Written after every corpus, so a run cut short still leaves what it measured.
            report = _report(
                results,
                args=args,
                argv=argv,
                started=started,
                wall_s=time.perf_counter() - t0,
                haystack_versions=haystack_versions,
                precision=precision,
            )
            _write(args.out_dir, report, results, args.out_stem)
    return report


def _report(
    results: list[CorpusResult],
    *,
    args: argparse.Namespace,
    argv: list[str],
    started: str,
    wall_s: float,
    haystack_versions: dict[str, str],
    precision: dict[str, str],
) -> dict[str, Any]:
    return {
        "headline": _headline(results[0]),
        "precision": precision,
        "started": started,
        "wall_s": round(wall_s, 1),
        "command": " ".join(["python -m benchmarks.haystack_peer", *argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "torch_threads": args.threads,
        },
        "versions": {"Ludao venv": _versions(), "Haystack venv": haystack_versions},
        "notes": NOTES,
        "corpora": [r.to_dict() for r in results],
    }


def _headline(result: CorpusResult) -> str:
    lu, hs = result.systems["ludao"], result.systems["haystack"]
    ratio = result.latency_ratio["p50"]
    verdict = "met" if ratio >= 3 else "not met"
    quality = (
        "not lower"
        if lu.f1 >= hs.f1 and (lu.recall_at_5 or 0) >= (hs.recall_at_5 or 0)
        else "lower"
    )
    return (
        f"{result.name}: Haystack takes {ratio}× as long as Ludao per question at p50 "
        f"({hs.latency_ms['p50']} ms vs {lu.latency_ms['p50']} ms); target ≥ 3×: {verdict}. "
        f"Recall@5 {lu.recall_at_5} vs {hs.recall_at_5}, F1 {lu.f1} vs {hs.f1} "
        f"(Ludao vs Haystack): Ludao's quality is {quality}."
    )


def _write(
    out_dir: Path, report: dict[str, Any], results: list[CorpusResult], stem: str = RESULT_STEM
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out_dir / f"{stem}.md").write_text(render_markdown(report), encoding="utf-8")
    with (out_dir / f"{stem}.predictions.jsonl").open("w", encoding="utf-8") as fh:
        for result in results:
            for line in result.predictions:
                fh.write(json.dumps(line, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("transformers", "sentence_transformers", "jieba", "bm25s", "httpx", "qa"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        _check_args(args)
        report = run(args, argv)
    except (ValueError, SetupError, RunnerError, LudaoError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report["headline"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
