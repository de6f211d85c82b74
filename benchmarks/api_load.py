"""Throughput and latency of ``POST /api/ask`` at several concurrency levels, on loopback only.

The server runs in its own process (``python ui.py``, started by ``qa.web.servers``), as it
would in production, so the load generator (``qa.web.load``) does not share its interpreter.
Request loops are bounded in count and time.

    python -m benchmarks.api_load --requests 40 --concurrency 1 4
    python -m benchmarks.api_load --requests 200 --concurrency 8 --feedback-every 4
    python -m benchmarks.api_load --requests 48 --concurrency 1 4 8 --micro-batch 1 8 --rounds 2
    python -m benchmarks.api_load --requests 48 --concurrency 1 4 8 --rounds 2 \
        --variant default: --variant batched:LUDAO_MICRO_BATCH=8 \
        --variant passive:LUDAO_OMP_WAIT_POLICY=passive
    python -m benchmarks.api_load --requests 48 --concurrency 1 4 8 --rounds 2 \
        --checkout before:../before --variant after:

``--micro-batch`` runs one server per value (``LUDAO_MICRO_BATCH``, ``qa.batching``), all up at
once and idle but for the one measured, and interleaves them level by level and round by round,
so the ratios compare arms under the same conditions. ``--variant NAME:KEY=VALUE,...`` makes
the arms servers with those environment variables instead (ratios against the first);
``--checkout NAME:PATH`` an arm that runs another working tree's ``ui.py``
(``git worktree add ../before HEAD~1``), placed before the ``--variant`` arms.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from benchmarks.checkouts import commit_of, parse_checkouts, parse_variants
from qa.config import REPO_ROOT
from qa.eval.question_files import SEED_QUESTIONS, load_examples
from qa.pipeline import LIBGOMP_VARIABLES
from qa.web.load import run_level
from qa.web.servers import count_feedback, free_port, server_env, start_server

QUESTIONS = SEED_QUESTIONS


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument(
        "--feedback-every",
        type=int,
        default=0,
        help="also POST /api/feedback after every N-th request and check none is lost",
    )
    parser.add_argument(
        "--answer-cache",
        action="store_true",
        help="keep the server's answer cache on (off by default: the levels repeat questions, "
        "and cached answers would measure the cache, not the pipeline)",
    )
    parser.add_argument(
        "--micro-batch",
        type=int,
        nargs="+",
        default=None,
        help="compare servers with these LUDAO_MICRO_BATCH values (1: no batching)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME:KEY=VALUE,... a server with these environment variables (instead of "
        "--micro-batch arms), e.g. batched:LUDAO_MICRO_BATCH=8,LUDAO_MICRO_BATCH_WINDOW_MS=2",
    )
    parser.add_argument(
        "--checkout",
        action="append",
        default=[],
        help="NAME:PATH a server run from another working tree (a before/after in one run)",
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    questions = [ex.question for ex in load_examples(QUESTIONS)]
    variants: dict[str, dict[str, str]] = {}
    trees = parse_checkouts(args.checkout)
    variants.update((name, {}) for name in trees)
    variants.update(parse_variants(args.variant))
    if not args.variant and not trees:
        for batch in args.micro_batch or [None]:
            variants[str(batch)] = {} if batch is None else {"LUDAO_MICRO_BATCH": str(batch)}
    arms = list(variants)
    with tempfile.TemporaryDirectory(prefix="ludao-load-") as tmp:
        servers = {}
        try:
            for arm in arms:
                env = server_env(Path(tmp) / f"arm-{arm}")
                if not args.answer_cache:
                    env["LUDAO_ANSWER_CACHE_SIZE"] = "0"
                if "LUDAO_OMP_WAIT_POLICY" in variants[arm]:
                    # An inherited libgomp variable would override the setting.
                    for name in LIBGOMP_VARIABLES:
                        env.pop(name, None)
                env.update(variants[arm])
                port = free_port()
                process = start_server(port, env, root=trees.get(arm, REPO_ROOT))
                servers[arm] = (f"http://127.0.0.1:{port}", process, env)
                run_level(servers[arm][0], questions, 1, 3)  # warm-up
            runs: dict = {arm: {c: [] for c in args.concurrency} for arm in arms}
            for _ in range(args.rounds):
                for c in args.concurrency:
                    for arm in arms:
                        level = run_level(
                            servers[arm][0], questions, c, args.requests,
                            feedback_every=args.feedback_every,
                        )  # fmt: skip
                        runs[arm][c].append(level)
        finally:
            for _, proc, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=30)
        stored = sum(
            count_feedback(Path(env["LUDAO_HOME"]) / "feedback.jsonl")
            for _, _, env in servers.values()
        )
    levels = [_median_level(runs[arms[0]][c]) for c in args.concurrency]
    sent = sum(level["feedback_sent"] for arm in arms for c in runs[arm] for level in runs[arm][c])
    result = {
        "endpoint": "/api/ask",
        "cpus": os.cpu_count(),
        "answer_cache": args.answer_cache,
        "levels": levels,
        "feedback": {"sent": sent, "stored": stored, "lost": sent - stored},
    }
    if len(arms) > 1:
        result["rounds"] = args.rounds
        named = bool(args.variant or trees)
        if named:
            result["variant_env"] = variants
        if trees:
            result["checkouts"] = {name: commit_of(tree) for name, tree in trees.items()}
        result["variants" if named else "micro_batch"] = {
            str(arm): [_median_level(runs[arm][c]) for c in args.concurrency] for arm in arms
        }
        base = arms[0]
        prefix = "answers_per_s_vs_" + ("" if named else "micro_batch_")
        result[prefix + str(base)] = {
            str(arm): {
                str(c): round(
                    _median_level(runs[arm][c])["requests_per_s"]
                    / _median_level(runs[base][c])["requests_per_s"],
                    3,
                )
                for c in args.concurrency
            }
            for arm in arms[1:]
        }
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return result


def _median_level(levels: list[dict]) -> dict:
    """The round with the median answers/s (all its figures from that one round), plus every
    round's answers/s."""
    ranked = sorted(levels, key=lambda level: level["requests_per_s"])
    rounds = [level["requests_per_s"] for level in levels]
    return ranked[len(ranked) // 2] | {"requests_per_s_rounds": rounds}


if __name__ == "__main__":
    main()
