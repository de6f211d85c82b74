"""Questions asked from many threads: computed in each caller's thread, or on one thread.

Run ``python -m benchmarks.compute_thread --rounds 3 --out benchmarks/results/compute_thread.json``.

A server answers on its request threads (uvicorn's thread pool). Each thread that runs torch
has its own OpenMP team, and once more of libgomp's threads live than there are CPUs, libgomp
cuts the spinning at barriers to ~100 spins for every team, so the spinning thread policies
(``adaptive``, ``brief``) lose what they gain. ``Pipeline.compute_thread`` sends every
question to one thread instead. Each arm runs in a fresh process, loaded as ``ludao serve``
loads (on a loader thread that then ends), and asks the seed questions one after another,
each from the next of ``--callers`` threads in turn (no concurrency: only which thread asks
differs). The arms:

- ``callers``: each question computed in the thread that asks it (the old server);
- ``compute-thread``: ``compute_thread=True`` (the server now);
- ``one-thread``: every question asked from a single thread (what ``ludao bench`` measures).

Per arm: the median over rounds of each run's p50 and p95 (ms) of ``Pipeline.ask``.
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

ARMS = ("callers", "compute-thread", "one-thread")


def one_run(arm: str, callers: int) -> dict:
    """Run the arm in this process (called in a fresh interpreter by :func:`main`)."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from qa.config import Settings
    from qa.eval.question_files import SEED_QUESTIONS, load_examples
    from qa.pipeline import Pipeline

    questions = [ex.question for ex in load_examples(SEED_QUESTIONS)]
    settings = Settings.load(answer_cache_size=0)
    with ThreadPoolExecutor(1, thread_name_prefix="loader") as loader:
        pipeline = loader.submit(
            Pipeline.from_settings,
            settings,
            preload_reader=True,
            compute_thread=arm == "compute-thread",
        ).result()
    pools = [ThreadPoolExecutor(1) for _ in range(1 if arm == "one-thread" else callers)]

    def timed(question: str) -> float:
        t0 = time.perf_counter()
        pipeline.ask(question)
        return (time.perf_counter() - t0) * 1000

    for i, question in enumerate(questions[:callers]):  # each caller warms up
        pools[i % len(pools)].submit(timed, question).result()
    ms = [pools[i % len(pools)].submit(timed, q).result() for i, q in enumerate(questions)]
    for pool in pools:
        pool.shutdown()
    ms.sort()
    return {"p50": round(statistics.median(ms), 2), "p95": round(ms[int(0.95 * len(ms))], 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callers", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--arm", choices=ARMS, help=argparse.SUPPRESS)  # one run, internal
    args = parser.parse_args(argv)
    if args.arm:
        print(json.dumps(one_run(args.arm, args.callers)))
        return
    from benchmarks.query_engines import LoadMeter, cpu_info  # sets OMP_WAIT_POLICY here
    from qa.pipeline import LIBGOMP_VARIABLES

    env = {k: v for k, v in os.environ.items() if k not in LIBGOMP_VARIABLES}
    meter = LoadMeter()
    meter.start()
    runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    for number in range(args.rounds):
        for arm in ARMS[number % len(ARMS) :] + ARMS[: number % len(ARMS)]:
            command = [sys.executable, "-m", "benchmarks.compute_thread", "--arm", arm]
            command += ["--callers", str(args.callers)]
            done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
            runs[arm].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(arm, runs[arm][-1], flush=True)
    median = {
        arm: {k: round(statistics.median(r[k] for r in results), 2) for k in ("p50", "p95")}
        for arm, results in runs.items()
    }
    given = sys.argv[1:] if argv is None else argv
    result = {
        "command": "python -m benchmarks.compute_thread " + " ".join(given),
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {**cpu_info(), **meter.stop()},
        "callers": args.callers,
        "median_ms": median,
        "callers_p50_over_compute_thread_p50": round(
            median["callers"]["p50"] / median["compute-thread"]["p50"], 3
        ),
        "runs": runs,
    }
    print(json.dumps(median, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", "utf-8")


if __name__ == "__main__":
    main()
