"""``ludao bench --json`` for the defaults before and after issue #14, rounds alternating.

Run ``python -m benchmarks.bench_before_after --rounds 2 --out
benchmarks/results/bench_before_after.json`` (a Markdown table is written beside it). "before"
is the path issue #14 started from (``LUDAO_QUERY_ENGINE=torch``, ``LUDAO_PASSAGE_ENGINE=torch``:
sentence-transformers' ``encode`` for both; ``LUDAO_READER_ENGINE=torch``: transformers' forward
for the reader); "lean-embeddings" has the lean embedding engines but the old reader (the
defaults of the stop before the lean reader); "after" is the current defaults. Each round runs
``ludao bench --json`` once per variant in a fresh process, the order rotating every round, so
a slow minute on a shared machine does not land on one side. Per stage the table gives the
median over rounds of each run's p50, the ratio of "before" to each other variant and the
fraction of the limit (``ludao bench`` measures the limits in the same process).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.checkouts import parse_variants
from benchmarks.query_engines import LoadMeter, cpu_info

VARIANTS = {
    "before": {
        "LUDAO_QUERY_ENGINE": "torch",
        "LUDAO_PASSAGE_ENGINE": "torch",
        "LUDAO_READER_ENGINE": "torch",
    },
    "lean-embeddings": {"LUDAO_READER_ENGINE": "torch"},
    "after": {},
}
STAGES = ("query_embedding", "dense_search", "bm25", "retrieve", "read", "total")


def one_bench(env: dict[str, str], repeat: int) -> dict:
    command = [sys.executable, "-m", "qa", "bench", "--json", "--repeat", str(repeat)]
    done = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def summarise(runs: dict[str, list[dict]]) -> dict:
    out: dict = {}
    for name, results in runs.items():
        stages = {
            s: round(statistics.median(r["latency_ms"][s]["p50"] for r in results), 2)
            for s in STAGES
        }
        shares = {
            s: round(
                statistics.median(r["fraction_of_limit"][s]["fraction_of_limit"] for r in results),
                3,
            )
            for s in ("query_embedding", "read")
            if all(s in r.get("fraction_of_limit", {}) for r in results)
        }
        build = [r["index_build"].get("fraction_of_limit") for r in results]
        out[name] = {
            "p50_ms": stages,
            "fraction_of_limit": shares,
            "index_build_fraction_of_fp32_limit": (
                round(statistics.median(build), 3) if all(b is not None for b in build) else None
            ),
            "load_ms": round(statistics.median(r["load_ms"] for r in results), 1),
        }
    return out


def markdown(result: dict) -> str:
    summary = result["summary"]
    names = list(summary)
    m = result["machine"]
    lines = [
        "# `ludao bench`, variants side by side",
        "",
        f"`{result['command']}`, {result['started']}. CPU: {m['model']}, {m['cpus']} CPUs, "
        f"flags {', '.join(m['flags'])}; CPU share of everything but this script (the bench "
        f"processes included): {m.get('others_cpu_share', '?')}.",
        "",
        f"Seed corpus and questions, {result['rounds']} rounds of `ludao bench --json --repeat "
        f"{result['repeat']}` per variant, alternating; medians of the per-run p50s (ms). "
        "Variants: "
        + "; ".join(f"{n}: {result['variants'][n] or 'the defaults'}" for n in names)
        + ".",
        "",
        "| stage | "
        + " | ".join(names)
        + " | "
        + " | ".join(f"{names[0]} / {n}" for n in names[1:])
        + " |",
        "|---" * (2 * len(names)) + "|",
    ]
    for stage in STAGES:
        values = [summary[n]["p50_ms"][stage] for n in names]
        ratios = [round(values[0] / v, 2) if v else "–" for v in values[1:]]
        lines.append(f"| {stage} | " + " | ".join(map(str, values + ratios)) + " |")
    lines += ["", "| fraction of the limit | " + " | ".join(names) + " |"]
    lines.append("|---" * (len(names) + 1) + "|")
    for stage in ("query_embedding", "read"):
        cells = [str(summary[n]["fraction_of_limit"].get(stage, "–")) for n in names]
        lines.append(f"| {stage} (own precision) | " + " | ".join(cells) + " |")
    cells = [str(summary[n]["index_build_fraction_of_fp32_limit"]) for n in names]
    lines.append("| index build (fp32 limit) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/bench_before_after.json")
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME:KEY=VALUE,... arms to run instead of the issue #14 ones (the first is the "
        "baseline of the ratios), e.g. --variant before:LUDAO_READER=artifacts/old --variant now:",
    )
    args = parser.parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    variants = parse_variants(args.variant) or VARIANTS
    meter = LoadMeter()
    meter.start()
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for number in range(args.rounds):
        order = list(variants)[number % len(variants) :] + list(variants)[: number % len(variants)]
        for name in order:
            runs[name].append(one_bench(variants[name], args.repeat))
            print(name, runs[name][-1]["latency_ms"]["total"], flush=True)
    result = {
        "command": "python -m benchmarks.bench_before_after " + " ".join(given),
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {**cpu_info(), **meter.stop()},
        "rounds": args.rounds,
        "repeat": args.repeat,
        "variants": variants,
        "summary": summarise(runs),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", "utf-8")
    args.out.with_suffix(".md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
