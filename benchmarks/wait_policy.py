"""``ludao bench`` under each OpenMP wait policy, on a quiet machine and beside busy processes.

Run ``python -m benchmarks.wait_policy --rounds 2 --out benchmarks/results/wait_policy.json``
(a Markdown table is written beside it). Why it exists: the policy decides what a torch thread
does between two parallel regions. A question's forward pass is ~100 small ones a few µs apart,
so sleeping at once (``passive``) pays a futex wake-up each time, while spinning for libgomp's
default 3 ms lets a thread burn its time slice waiting for a peer the kernel has descheduled
when other processes share the 2 cores. Each run is a fresh ``ludao bench --json`` process with
``LUDAO_OMP_WAIT_POLICY`` set; the "loaded" condition starts ``--hogs`` busy-looping Python
processes first (stopped by PID afterwards), the order of policies rotating every round.
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

from benchmarks.bench_before_after import STAGES, one_bench
from benchmarks.query_engines import LoadMeter, cpu_info
from qa.pipeline import LIBGOMP_VARIABLES

POLICIES = ("passive", "adaptive", "brief", "active")
"""``passive`` was the default before ``adaptive`` (the ratio column compares the two)."""
BUSY_LOOP = "while True: pass"


def start_hogs(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(count)]


def stop_hogs(hogs: list[subprocess.Popen]) -> None:
    for hog in hogs:
        hog.kill()
        hog.wait()


def summarise(runs: list[dict]) -> dict:
    """Median over runs of each stage's p50, and of the end-to-end p95."""
    return {
        "p50_ms": {
            s: round(statistics.median(r["latency_ms"][s]["p50"] for r in runs), 2) for s in STAGES
        },
        "total_p95_ms": round(statistics.median(r["latency_ms"]["total"]["p95"] for r in runs), 2),
        "threads_fitted": [r["machine"].get("threads_fitted", {}) for r in runs],
        "runs": len(runs),
    }


def markdown(result: dict) -> str:
    m = result["machine"]
    names = result["policies"]
    lines = [
        "# `ludao bench` per OpenMP wait policy",
        "",
        f"`{result['command']}`, {result['started']}. CPU: {m['model']}, {m['cpus']} CPUs, "
        f"flags {', '.join(m['flags'])}. {result['rounds']} rounds of `ludao bench --json "
        f"--repeat {result['repeat']}` (seed corpus and questions) per policy and condition, "
        "the policy order rotating; medians of the per-run p50s (ms). Loaded: "
        f"{result['hogs']} busy-looping process(es) beside the bench.",
        "",
    ]
    for condition, summary in result["summary"].items():
        lines += [
            f"## {condition}",
            "",
            "| stage | " + " | ".join(names) + " | passive / adaptive |",
            "|---" * (len(names) + 2) + "|",
        ]
        for stage in STAGES:
            values = [summary[n]["p50_ms"][stage] for n in names]
            ratio = round(
                summary["passive"]["p50_ms"][stage] / summary["adaptive"]["p50_ms"][stage], 2
            )
            lines.append(f"| {stage} p50 | " + " | ".join(map(str, values)) + f" | {ratio} |")
        values = [summary[n]["total_p95_ms"] for n in names]
        ratio = round(summary["passive"]["total_p95_ms"] / summary["adaptive"]["total_p95_ms"], 2)
        lines += ["| total p95 | " + " | ".join(map(str, values)) + f" | {ratio} |", ""]
        fitted = summary["adaptive"]["threads_fitted"]
        lines += [f"`adaptive` chose per run (threads: questions): {fitted}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--hogs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/wait_policy.json"))
    args = parser.parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    # benchmarks.query_engines (imported here) sets OMP_WAIT_POLICY=PASSIVE, and the setting
    # never overrides the environment: inherited, it made every run of this script passive once.
    for name in LIBGOMP_VARIABLES:
        os.environ.pop(name, None)
    meter = LoadMeter()
    meter.start()
    runs: dict[str, dict[str, list[dict]]] = {}
    for condition, hogs in (("quiet", 0), ("loaded", args.hogs)):
        runs[condition] = {p: [] for p in POLICIES}
        for number in range(args.rounds):
            order = POLICIES[number % len(POLICIES) :] + POLICIES[: number % len(POLICIES)]
            for policy in order:
                started = start_hogs(hogs)
                try:
                    run = one_bench({"LUDAO_OMP_WAIT_POLICY": policy}, args.repeat)
                finally:
                    stop_hogs(started)
                runs[condition][policy].append(run)
                print(condition, policy, run["latency_ms"]["total"], flush=True)
    result = {
        "command": "python -m benchmarks.wait_policy " + " ".join(given),
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {**cpu_info(), **meter.stop()},
        "rounds": args.rounds,
        "repeat": args.repeat,
        "hogs": args.hogs,
        "policies": list(POLICIES),
        "summary": {c: {p: summarise(r) for p, r in by.items()} for c, by in runs.items()},
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
