"""Throughput and latency of ``POST /api/ask`` at several concurrency levels, on loopback only.

The server runs in its own process (``python ui.py``), as it would in production, so the load
generator does not share its interpreter. Request loops are bounded in count and time.

    python -m benchmarks.api_load --requests 40 --concurrency 1 4
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
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


def run_level(base: str, questions: list[str], concurrency: int, n_requests: int) -> dict:
    """Send ``n_requests`` questions with ``concurrency`` clients; latency per request."""
    import httpx

    latencies: list[float] = []
    errors = 0

    def one(i: int) -> tuple[float, bool]:
        q = questions[i % len(questions)]
        t0 = time.perf_counter()
        try:
            r = httpx.post(f"{base}/api/ask", json={"question": q}, timeout=120)
            ok = r.status_code == 200 and "answers" in r.json()
        except httpx.HTTPError:
            ok = False
        return (time.perf_counter() - t0) * 1000, ok

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for ms, ok in pool.map(one, range(n_requests)):
            latencies.append(ms)
            errors += not ok
    wall = time.perf_counter() - t0
    return {
        "concurrency": concurrency,
        "requests": n_requests,
        "errors": errors,
        "requests_per_s": round(n_requests / wall, 3),
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 1),
            "p95": round(percentile(latencies, 95), 1),
        },
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    questions = [ex.question for ex in load_examples(QUESTIONS)]
    port = _free_port()
    proc = start_server(port, dict(os.environ))
    try:
        base = f"http://127.0.0.1:{port}"
        run_level(base, questions, 1, 3)  # warm-up: loads the reader
        levels = [run_level(base, questions, c, args.requests) for c in args.concurrency]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    result = {"endpoint": "/api/ask", "cpus": os.cpu_count(), "levels": levels}
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return result


if __name__ == "__main__":
    main()
