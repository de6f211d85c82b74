"""Throughput and latency of ``POST /api/ask`` at several concurrency levels, on loopback only.

The server runs in its own process (``python ui.py``), as it would in production, so the load
generator does not share its interpreter. Request loops are bounded in count and time.

    python -m benchmarks.api_load --requests 40 --concurrency 1 4
    python -m benchmarks.api_load --requests 200 --concurrency 8 --feedback-every 4
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from qa.config import REPO_ROOT
from qa.evaluation import load_examples, percentile

QUESTIONS = REPO_ROOT / "tests" / "data" / "seed_questions.jsonl"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, env: dict[str, str], timeout: float = 300) -> subprocess.Popen:
    """Start ``ui.py`` on 127.0.0.1:port and wait until ``/healthz`` answers.

    The server's output goes to a temporary log whose tail is put in the error when start-up
    fails, so a failure on a CI machine says why.
    """
    import tempfile

    import httpx

    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - the server keeps writing to it
        prefix="ludao-server-", suffix=".log", delete=False
    )
    proc = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "ui.py"), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = Path(log.name).read_text(encoding="utf-8", errors="replace")[-3000:]
            raise RuntimeError(f"the server exited during start-up; its log ends:\n{tail}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(1)
    proc.kill()
    raise RuntimeError("the server did not answer /healthz in time")


def server_env(tmp: Path, models: Path | None = None) -> dict[str, str]:
    """Environment for a server with its own ``LUDAO_HOME`` (``tmp/home``: fresh feedback file
    and index) that shares converted models (``models``, default the user's cache), so nothing
    is converted twice."""
    from qa.config import ludao_home

    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    models = models if models is not None else ludao_home() / "models"
    models.mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(models, target_is_directory=True)
    return {**os.environ, "LUDAO_HOME": str(home)}


def count_feedback(path: Path) -> int:
    """Whole JSON records in a feedback file; a torn or interleaved line would not parse."""
    if not path.exists():
        return 0
    count = 0
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            json.loads(line)  # raises on a damaged record: that is a lost record too
            count += 1
    return count


def run_level(
    base: str,
    questions: list[str],
    concurrency: int,
    n_requests: int,
    *,
    feedback_every: int = 0,
) -> dict:
    """Send ``n_requests`` questions with ``concurrency`` clients; latency per request.

    With ``feedback_every=n``, every n-th request is followed by a ``POST /api/feedback`` about
    its answer from the same client, so ratings arrive concurrently with questions and with
    each other, as they do when many staff use the chat.
    """
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    feedback_sent = 0

    def one(i: int) -> tuple[float, str | None, bool]:
        q = questions[i % len(questions)]
        t0 = time.perf_counter()
        error = None
        try:
            r = httpx.post(f"{base}/api/ask", json={"question": q}, timeout=120)
            if r.status_code != 200 or "answers" not in r.json():
                error = f"http {r.status_code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        ms = (time.perf_counter() - t0) * 1000
        sent = False
        if feedback_every and i % feedback_every == 0 and error is None:
            answers = r.json()["answers"]
            rating = {"question": q, "rating": "like" if i % 2 else "dislike"}
            if answers:
                rating["answer"] = answers[0]["text"]
            try:
                f = httpx.post(f"{base}/api/feedback", json=rating, timeout=60)
                sent = f.status_code == 201
                if not sent:
                    error = f"feedback http {f.status_code}"
            except httpx.HTTPError as exc:
                error = f"feedback {type(exc).__name__}"
        return ms, error, sent

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for ms, error, sent in pool.map(one, range(n_requests)):
            latencies.append(ms)
            feedback_sent += sent
            if error:
                errors[error] = errors.get(error, 0) + 1
    wall = time.perf_counter() - t0
    return {
        "concurrency": concurrency,
        "requests": n_requests,
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "feedback_sent": feedback_sent,
        "requests_per_s": round(n_requests / wall, 3),
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 1),
            "p95": round(percentile(latencies, 95), 1),
            "p99": round(percentile(latencies, 99), 1),
            "max": round(max(latencies), 1),
        },
    }


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
    port = _free_port()
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
