"""Index build engines side by side (issue #14): passages per second and fraction of the limit.

Run ``python -m benchmarks.build_engines --out benchmarks/results/build_engines.json`` (a
Markdown table is written beside it). Each precision loads the default model once; its
``torch`` engine (sentence-transformers' ``encode``, batches of 32 sorted by characters, the
old default) and its ``lean`` engine (``embeddings.lean``: batches cut by a token budget, sorted
by tokens, no padding outside attention) embed the same passages in rotating order, round after
round, so a slow minute on a shared machine hits every variant alike. Every round measures the
fp32 limit (and, for bf16, the bf16 limit) right before it: fractions use the limit of their
own round. ``--budgets`` adds lean variants with other token budgets.

The passages are CMRC 2018 *training* paragraphs chunked as Ludao chunks documents (the same
pool as ``benchmarks.growth``). "cosine min" compares each variant's vectors with the fp32
``torch`` ones: an index built by one engine must serve queries embedded by the other.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks.growth import TRAIN, pool_passages
from benchmarks.query_engines import LoadMeter, _rotations, cpu_info

logger = logging.getLogger(__name__)


def build_variants(precisions: list[str], budgets: list[int]) -> dict:
    """``{"lean@fp32": (encoder, budget or None), ...}``, one loaded model per precision."""
    from embeddings.encoder import SentenceEncoder

    variants: dict = {}
    for precision in precisions:
        torch_engine = SentenceEncoder(precision=precision, passage_engine="torch")  # type: ignore[arg-type]
        lean = SentenceEncoder(precision=precision)  # type: ignore[arg-type]
        lean._model, lean._resolved = torch_engine.model, torch_engine.resolved_precision
        variants[f"torch@{precision}"] = (torch_engine, None)
        variants[f"lean@{precision}"] = (lean, None)
        for budget in budgets:
            variants[f"lean{budget}@{precision}"] = (lean, budget)
    return variants


def embed(variant: tuple, texts: list[str]) -> np.ndarray:
    encoder, budget = variant
    if budget is None:
        return encoder.encode_passages(texts, show_progress=False)
    prompt = encoder.model.prompts.get("passage", "")
    return encoder._lean_encoder().encode_all(texts, prompt, token_budget=budget)


def run(args: argparse.Namespace) -> dict:
    import torch

    from embeddings.lean import TOKEN_BUDGET
    from qa.eval.limit import fraction_of_limit, measure_limit, passage_tokens

    if args.threads:
        torch.set_num_threads(args.threads)
    passages, _ = pool_passages(args.train, args.passages)
    texts = [p.text for p in passages]
    variants = build_variants(args.precisions, args.budgets)
    first = next(iter(variants.values()))[0]
    tokens = passage_tokens(first, texts)
    reference = variants.get("torch@fp32")
    ref_vectors = embed(reference, texts) if reference else None
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    fractions: dict[str, list[float]] = {name: [] for name in variants}
    own_limit: dict[str, list[float]] = {name: [] for name in variants}
    cosine: dict[str, float] = {}
    limits: list[dict] = []
    for variant in variants.values():  # warm: weights packed, kernels chosen
        embed(variant, texts[:16])
    meter = LoadMeter()
    meter.start()
    rotation = _rotations(list(variants))
    for round_number in range(args.rounds):
        limit = {"fp32": measure_limit()["gflops_best"]}
        if "bf16" in args.precisions:
            limit["bf16"] = measure_limit(dtype="bf16")["gflops_best"]
        limits.append(limit)
        for name in next(rotation):
            t0 = time.perf_counter()
            vectors = embed(variants[name], texts)
            elapsed = time.perf_counter() - t0
            seconds[name].append(elapsed)
            share = fraction_of_limit(tokens, elapsed, limit["fp32"])["fraction_of_limit"]
            fractions[name].append(share)
            precision = name.split("@")[1]
            if precision in limit:
                own_limit[name].append(
                    fraction_of_limit(tokens, elapsed, limit[precision])["fraction_of_limit"]
                )
            if ref_vectors is not None and round_number == 0:
                cosine[name] = round(float((vectors * ref_vectors).sum(axis=1).min()), 6)
        logger.info("round %d of %d: limits %s", round_number + 1, args.rounds, limit)
    machine = {**cpu_info(), **meter.stop(), "torch": torch.__version__}
    machine["torch_threads"] = torch.get_num_threads()
    rows = {}
    for name in variants:
        median_s = statistics.median(seconds[name])
        same = f"torch@{name.split('@')[1]}"
        rows[name] = {
            "passages_per_s": round(len(texts) / median_s, 2),
            "seconds_per_round": [round(s, 2) for s in seconds[name]],
            "fraction_of_fp32_limit": round(statistics.median(fractions[name]), 3),
            "fraction_of_own_limit": (
                round(statistics.median(own_limit[name]), 3) if own_limit[name] else None
            ),
            "speedup_vs_torch_same_precision": round(
                statistics.median(seconds[same]) / median_s, 3
            ),
            "cosine_min_vs_torch_fp32": cosine.get(name),
        }
    return {
        "command": "python -m benchmarks.build_engines " + " ".join(args.argv),
        "started": args.started,
        "machine": machine,
        "passages": len(texts),
        "mean_tokens": round(tokens / len(texts), 1) if tokens else None,
        "rounds": args.rounds,
        "token_budget_default": TOKEN_BUDGET,
        "limits_per_round": limits,
        "variants": rows,
    }


def markdown(result: dict) -> str:
    m = result["machine"]
    limits = "; ".join(
        ", ".join(f"{k} {v}" for k, v in r.items()) for r in result["limits_per_round"]
    )
    lines = [
        "# Index build engines (issue #14)",
        "",
        f"`{result['command']}`, {result['started']}.",
        "",
        f"CPU: {m['model']}, {m['cpus']} CPUs, flags {', '.join(m['flags'])}; torch {m['torch']}, "
        f"{m['torch_threads']} threads. Other processes used {m.get('others_cpu_share', '?')} of "
        f"the CPUs while measuring.",
        "",
        f"{result['passages']} CMRC training passages, {result['mean_tokens']} tokens on average "
        f"(with the prompt); {result['rounds']} rounds, variants rotating; medians over rounds. "
        f"Limits per round (GFLOP/s, 2048² matmul): {limits}.",
        "",
        "| variant | passages/s | × torch same precision | fraction of fp32 limit | "
        "fraction of own-precision limit | cosine min vs torch@fp32 |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in result["variants"].items():
        lines.append(
            f"| {name} | {row['passages_per_s']} | {row['speedup_vs_torch_same_precision']} | "
            f"{row['fraction_of_fp32_limit']} | {row['fraction_of_own_limit']} | "
            f"{row['cosine_min_vs_torch_fp32']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/build_engines.json"))
    parser.add_argument("--train", type=Path, default=TRAIN)
    parser.add_argument("--passages", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--budgets", nargs="*", type=int, default=[])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's)")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    args.started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S%z")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
