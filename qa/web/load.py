"""Concurrent questions (and ratings) against a running server: one level of a load test.

Used by ``benchmarks/api_load.py`` at several concurrency levels and by a bounded test that
checks no rating is lost while questions arrive at the same time. Request loops are bounded in
count; every request has a timeout.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from qa.eval.latency import percentile

__all__ = ["run_level"]


def run_level(
    base: str,
    questions: list[str],
    concurrency: int,
    n_requests: int,
    *,
    feedback_every: int = 0,
    auth: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Send ``n_requests`` questions with ``concurrency`` clients; latency per request.

    The clients share one connection pool with a kept-alive connection each, as API clients
    and browsers keep theirs: a fresh ``httpx`` client per request would build a TLS context
    every time (~10–30 ms of CPU), and on a two-core machine the load generator's own work
    would then be measured as the server's.

    With ``feedback_every=n``, every n-th request is followed by a ``POST /api/feedback`` about
    its answer from the same client, so ratings arrive concurrently with questions and with
    each other, as they do when many staff use the chat. ``auth`` is a ``(user, password)`` of
    the built-in login, sent as HTTP Basic with every request (a server with a users file).
    """
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    feedback_sent = 0
    pool_limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = httpx.Client(auth=auth, limits=pool_limits, timeout=120)

    def one(i: int) -> tuple[float, str | None, bool]:
        q = questions[i % len(questions)]
        t0 = time.perf_counter()
        error = None
        try:
            r = client.post(f"{base}/api/ask", json={"question": q})
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
                f = client.post(f"{base}/api/feedback", json=rating, timeout=60)
                sent = f.status_code == 201
                if not sent:
                    error = f"feedback http {f.status_code}"
            except httpx.HTTPError as exc:
                error = f"feedback {type(exc).__name__}"
        return ms, error, sent

    t0 = time.perf_counter()
    with client, ThreadPoolExecutor(max_workers=concurrency) as pool:
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
