"""What IT and the knowledge base's owners see of a running server: usage records, the audit log,
``/metrics`` and the admin page, wired into ``ui.create_app`` with two calls.

:func:`install` wraps the pipeline in :class:`ObservedPipeline`, so every answer given through
``qa.web.intranet.ask_as`` (chat, widget, ``/api/ask``) is counted for ``/metrics`` and stored as
a :class:`~qa.usage.UsageRecord`; it adds the request counter and ``GET /metrics``.
:meth:`Operations.mount_admin` mounts the admin page (``qa.web.admin_page``) at ``/admin``; it
must run before the chat is mounted at ``/``, which would otherwise take every path.

Usage and audit go to the database the feedback goes to (``qa.records``): the same URL when the
feedback is a database, else ``records.sqlite`` beside the feedback file.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.audit import AuditLog
from qa.config import ludao_home
from qa.usage import UsageLog, UsageRecord
from qa.web.metrics import Metrics, RequestCounter, add_metrics_route

if TYPE_CHECKING:
    from fastapi import FastAPI

    from qa.access import User
    from qa.schema import Response
    from qa.web.identity import Identity

logger = logging.getLogger(__name__)

__all__ = ["ObservedPipeline", "Operations", "install", "records_url"]


def records_url(feedback_path: str | os.PathLike[str] | None) -> str:
    """The records database for a feedback target: a database URL as is, else SQLite beside it."""
    if isinstance(feedback_path, str) and "://" in feedback_path:
        return feedback_path
    folder = Path(feedback_path).parent if feedback_path is not None else ludao_home()
    return f"sqlite:///{Path(folder).expanduser().resolve() / 'records.sqlite'}"


class ObservedPipeline:
    """A pipeline whose answers are counted and recorded; everything else is the wrapped one's.

    ``reload`` exists only when the wrapped pipeline has it (``create_app`` decides from that
    whether to offer ``POST /api/reload``), and counts its results.
    """

    def __init__(self, pipeline: Any, usage: UsageLog, metrics: Metrics) -> None:
        self.pipeline = pipeline
        self.usage = usage
        self.metrics = metrics

    @property
    def current(self) -> Any:
        """The pipeline that answers (a reloadable pipeline's current one), for introspection."""
        return getattr(self.pipeline, "current", self.pipeline)

    def ask(self, question: str, top_k: int | None = None, **options: Any) -> Response:
        """Unrecorded: callers that know the user go through :meth:`ask_for`."""
        return self.pipeline.ask(question, top_k=top_k, **options)

    def ask_for(self, user: User, question: str, **options: Any) -> Response:
        """``ask`` on behalf of ``user``: counted, timed and stored as a usage record."""
        t0 = time.perf_counter()
        try:
            response = self.pipeline.ask(question, **options)
        except Exception as exc:
            from qa.errors import QuestionError

            if not isinstance(exc, QuestionError):  # a refused question is the caller's error
                self.metrics.inc("ludao_errors_total", kind="answer")
            raise
        latency = (time.perf_counter() - t0) * 1000
        self.metrics.inc("ludao_answers_total")
        if response.no_answer:
            self.metrics.inc("ludao_answers_declined_total")
        for stage, ms in response.timings_ms.items():
            self.metrics.observe(stage, ms / 1000)
        if not self.usage.append(UsageRecord.from_response(response, user, latency)):
            self.metrics.inc("ludao_errors_total", kind="record")
        return response

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.pipeline, name)
        if name == "reload" and callable(value):
            return self._reload
        return value

    def _reload(self) -> Any:
        result = self.pipeline.reload()
        self.metrics.inc("ludao_reloads_total", result="ok" if result.reloaded else "failed")
        return result


@dataclass
class Operations:
    """The usage log, the audit log and the metrics of one app."""

    pipeline: ObservedPipeline
    usage: UsageLog
    audit: AuditLog
    metrics: Metrics
    identity: Identity

    def mount_admin(
        self,
        app: FastAPI,
        feedback: Any,
        *,
        upload_dir: str | os.PathLike[str] | None = None,
        root_path: str = "",
    ) -> None:
        """The admin page at ``/admin`` (admins only) and ``GET /api/admin/export``."""
        from qa.web.admin_page import mount_admin_page

        mount_admin_page(app, self, feedback, upload_dir=upload_dir, root_path=root_path)


def install(
    app: FastAPI,
    pipeline: Any,
    identity: Identity,
    feedback_path: str | os.PathLike[str] | None,
    *,
    root_path: str = "",
) -> tuple[ObservedPipeline, Operations]:
    """Wrap ``pipeline``, add the request counter and ``/metrics``; return both."""
    url = records_url(feedback_path)
    metrics = Metrics()
    usage = UsageLog(url)
    audit_path = (
        Path(feedback_path).parent / "audit.jsonl"
        if feedback_path is not None and "://" not in str(feedback_path)
        else ludao_home() / "audit.jsonl"
    )
    audit = AuditLog(url, audit_path)
    observed = ObservedPipeline(pipeline, usage, metrics)
    metrics.gauges.append(lambda: _index_gauges(observed))
    app.add_middleware(RequestCounter, metrics=metrics, root_path=root_path)
    add_metrics_route(app, metrics, identity, identity.metrics_token)
    return observed, Operations(observed, usage, audit, metrics, identity)


def _index_gauges(pipeline: ObservedPipeline) -> dict[str, float]:
    info = pipeline.info()
    values = {
        "ludao_index_documents": float(info.documents or 0),
        "ludao_index_passages": float(info.passages or 0),
    }
    if info.generation is not None:
        values["ludao_index_generation"] = float(info.generation)
    return values
