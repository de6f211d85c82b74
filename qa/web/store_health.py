"""HTTP answers while a shared vector store is down: 503 with the reason, never a traceback.

With ``LUDAO_VECTOR_STORE=milvus`` the server holds no passages itself, so a Milvus outage must
show as what it is: ``/healthz`` answers 503 with ``{"status": "unavailable", "reason": ...}``
(a load balancer takes the replica out), and a question answered meanwhile gets 503 with the
same reason. The client reconnects by itself, so both recover when Milvus is back, without a
restart. An in-process FAISS index never triggers either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import JSONResponse

from qa.stores import StoreUnavailableError, store_problem

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from fastapi import FastAPI
    from starlette.responses import Response


def add_store_checks(app: FastAPI, pipeline: object) -> None:
    """Make ``/healthz`` report an unreachable store and map store errors to 503."""

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    app.add_exception_handler(StoreUnavailableError, unavailable)

    @app.middleware("http")
    async def healthz_store(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.url.path.rstrip("/").endswith("/healthz") and request.method == "GET":
            from starlette.concurrency import run_in_threadpool

            problem = await run_in_threadpool(store_problem, pipeline)
            if problem is not None:
                return JSONResponse({"status": "unavailable", "reason": problem}, status_code=503)
        return await call_next(request)
