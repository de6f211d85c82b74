"""``GET /metrics`` in the Prometheus text format, for IT's monitoring.

Written here rather than with the ``prometheus_client`` package: the format (``# HELP``,
``# TYPE``, ``name{label="v"} value``, cumulative ``_bucket{le=…}`` lines) is small and stable,
Ludao exports a dozen series, and ``prometheus_client`` keeps a process-wide default registry,
so two apps in one process (the tests, a library user's own app) would collide on metric names
unless every call site passed a registry around. One :class:`Metrics` per app needs none of that.

What is counted: HTTP requests by route and status class (:class:`RequestCounter`, ASGI
middleware, so Gradio's routes count too), answers and declined answers, the latency of each
stage the pipeline reports in ``Response.timings_ms`` (retrieve, read, cache, queue: the wait
for a micro-batch, total) as a histogram, errors (answers that raised, 5xx responses, records
not stored), reloads by result, and, read at scrape time, the index size. Values are per
process.

Who may read it: an admin (the admin token or a logged-in admin), or a scraper with the
separate ``LUDAO_METRICS_TOKEN`` as a bearer token, so the Prometheus configuration never holds
a token that can upload or remove documents. Without either it is ``401``.
"""

from __future__ import annotations

import math
import secrets
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import PlainTextResponse

if TYPE_CHECKING:
    from qa.web.identity import Identity

__all__ = ["Metrics", "RequestCounter", "add_metrics_route"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds; a cached answer takes milliseconds, a cold read on a busy CPU several seconds."""
ROUTES = (
    "/api/ask",
    "/api/feedback",
    "/api/reload",
    "/api/documents",
    "/api/admin",
    "/healthz",
    "/metrics",
    "/widget",
    "/admin",
    "/gradio_api",
    "/login",
)
"""Route labels: a request's path is counted under the first of these it starts with, or
``other``; a fixed list keeps the number of series bounded whatever paths clients send."""
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Metrics:
    """Counters and histograms of one app, rendered by :meth:`render`. Thread-safe."""

    def __init__(self, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.buckets = tuple(sorted(buckets))
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._histograms: dict[str, tuple[list[int], list[float]]] = {}
        self.gauges: list[Callable[[], dict[str, float]]] = []
        """Read at every scrape: each returns ``{metric name: value}``."""

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._counters[key] = self._counters.get(key, 0.0) + amount

    def observe(self, stage: str, seconds: float) -> None:
        """One latency of ``stage`` into the ``ludao_stage_seconds`` histogram."""
        with self._lock:
            counts, total = self._histograms.setdefault(stage, ([0] * len(self.buckets), [0.0]))
            for i, bound in enumerate(self.buckets):
                if seconds <= bound:
                    counts[i] += 1
            total[0] += seconds
            self._histograms[stage] = (counts, total)
            key = ("_count", (("stage", stage),))
            self._counters[key] = self._counters.get(key, 0.0) + 1

    def counter(self, name: str, **labels: str) -> float:
        """A counter's current value (tests, the admin page)."""
        with self._lock:
            return self._counters.get((name, tuple(sorted(labels.items()))), 0.0)

    def render(self) -> str:
        """The exposition text: every series with ``# HELP`` and ``# TYPE``."""
        with self._lock:
            counters = dict(self._counters)
            histograms = {k: (list(c), t[0]) for k, (c, t) in self._histograms.items()}
        lines: list[str] = []
        by_name: dict[str, list[tuple[tuple[tuple[str, str], ...], float]]] = {}
        for (name, labels), value in sorted(counters.items()):
            if name != "_count":
                by_name.setdefault(name, []).append((labels, value))
        for name, help_text in COUNTERS.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
            for labels, value in by_name.get(name, [((), 0.0)] if not LABELLED[name] else []):
                lines.append(f"{name}{_labels(labels)} {_number(value)}")
        name = "ludao_stage_seconds"
        lines += [
            f"# HELP {name} Time of each answering stage (Response.timings_ms), seconds.",
            f"# TYPE {name} histogram",
        ]
        for stage, (counts, total) in sorted(histograms.items()):
            count = int(counters.get(("_count", (("stage", stage),)), 0))
            for bound, n in zip(self.buckets, counts, strict=True):
                lines.append(f'{name}_bucket{{stage="{_label(stage)}",le="{_number(bound)}"}} {n}')
            lines.append(f'{name}_bucket{{stage="{_label(stage)}",le="+Inf"}} {count}')
            lines.append(f'{name}_sum{{stage="{_label(stage)}"}} {_number(total)}')
            lines.append(f'{name}_count{{stage="{_label(stage)}"}} {count}')
        for read in self.gauges:
            try:
                values = read()
            except Exception:  # a gauge that cannot be read is left out, the rest still shown
                continue
            for gauge, value in values.items():
                help_text = GAUGES.get(gauge, gauge)
                lines += [f"# HELP {gauge} {help_text}", f"# TYPE {gauge} gauge"]
                lines.append(f"{gauge} {_number(value)}")
        return "\n".join(lines) + "\n"


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels) + "}"


COUNTERS = {
    "ludao_http_requests_total": "HTTP requests by route and status class.",
    "ludao_answers_total": "Questions answered (chat, widget and API).",
    "ludao_answers_declined_total": "Answers where the reader declined (the documents do not say).",
    "ludao_errors_total": "Errors by kind: answer (asking raised), http_5xx, record (not stored).",
    "ludao_reloads_total": "Index reloads by result (ok, failed).",
}
LABELLED = {
    "ludao_http_requests_total": True,
    "ludao_answers_total": False,
    "ludao_answers_declined_total": False,
    "ludao_errors_total": True,
    "ludao_reloads_total": True,
}
GAUGES = {
    "ludao_index_documents": "Documents in the index being served.",
    "ludao_index_passages": "Passages in the index being served.",
    "ludao_index_generation": "How many pipelines this server has loaded (1 + reloads).",
}


def route_label(path: str) -> str:
    for route in ROUTES:
        if path == route or path.startswith(route + "/") or path.startswith(route + "."):
            return route
    return "/" if path in ("", "/") else "other"


class RequestCounter:
    """ASGI middleware: counts every HTTP response by route label and status class."""

    def __init__(self, app: Any, metrics: Metrics, root_path: str = "") -> None:
        self.app = app
        self.metrics = metrics
        self.root_path = root_path.rstrip("/")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if self.root_path and path.startswith(self.root_path):
            path = path[len(self.root_path) :]
        route = route_label(path)
        seen = False

        async def counted(message: dict) -> None:
            nonlocal seen
            if message["type"] == "http.response.start" and not seen:
                seen = True
                status = int(message["status"])
                label = f"{status // 100}xx"
                self.metrics.inc("ludao_http_requests_total", route=route, status=label)
                if status >= 500:
                    self.metrics.inc("ludao_errors_total", kind="http_5xx")
            await send(message)

        try:
            await self.app(scope, receive, counted)
        except Exception:
            if not seen:
                self.metrics.inc("ludao_http_requests_total", route=route, status="5xx")
                self.metrics.inc("ludao_errors_total", kind="http_5xx")
            raise


def add_metrics_route(
    app: FastAPI, metrics: Metrics, identity: Identity, scrape_token: str = ""
) -> None:
    """``GET /metrics``: for admins, or with ``Authorization: Bearer <scrape_token>``."""

    @app.get("/metrics", include_in_schema=False)
    def metrics_text(request: Request) -> PlainTextResponse:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        supplied = token.strip().encode("utf-8", "surrogatepass")
        scraper = bool(scrape_token) and scheme.lower() == "bearer"
        if not (scraper and secrets.compare_digest(supplied, scrape_token.encode())):
            user = identity.check_admin(request)  # 401/403 for everyone else
            if not user.admin:  # pragma: no cover - check_admin raises instead
                raise HTTPException(403, "admins only")
        return PlainTextResponse(metrics.render(), media_type=CONTENT_TYPE)
