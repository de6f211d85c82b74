"""Throughput and latency of ``POST /api/ask`` at several concurrency levels, on loopback only.

The server runs in its own process (``python ui.py``, started by ``qa.web.servers``), as it
would in production, so the load generator (``qa.web.load``) does not share its interpreter.
Request loops are bounded in count and time.

    python -m benchmarks.api_load --requests 40 --concurrency 1 4
    python -m benchmarks.api_load --requests 200 --concurrency 8 --feedback-every 4
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from qa.eval.question_files import SEED_QUESTIONS, load_examples
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
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    questions = [ex.question for ex in load_examples(QUESTIONS)]
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ludao-load-") as tmp:
        env = server_env(Path(tmp))
        if not args.answer_cache:
            env["LUDAO_ANSWER_CACHE_SIZE"] = "0"
        proc = start_server(port, env)
        try:
            base = f"http://127.0.0.1:{port}"
            run_level(base, questions, 1, 3)  # warm-up
            levels = [
                run_level(base, questions, c, args.requests, feedback_every=args.feedback_every)
                for c in args.concurrency
            ]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        stored = count_feedback(Path(env["LUDAO_HOME"]) / "feedback.jsonl")
    sent = sum(level["feedback_sent"] for level in levels)
    result = {
        "endpoint": "/api/ask",
        "cpus": os.cpu_count(),
        "answer_cache": args.answer_cache,
        "levels": levels,
        "feedback": {"sent": sent, "stored": stored, "lost": sent - stored},
    }
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return result


if __name__ == "__main__":
    main()
