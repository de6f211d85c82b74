"""Keeping a browser on one Ray Serve replica, and saying which replica answered.

The chat is a Gradio app: a question is a POST that joins a queue and a stream that follows it,
and the login and per-session state live in the process that served them. Gradio asks for
sticky sessions behind any load balancer; Ray Serve's default router spreads every request over
the replicas. So each replica stamps its responses with ``X-Ludao-Replica`` and, when the
caller does not carry it yet, a ``ludao_replica`` cookie naming itself; :class:`StickyRouter`
sends a request with that cookie (or an ``X-Ludao-Replica`` request header, for scripted
clients) back to that replica while it is alive. Requests without either (API clients, a
browser's first request) go to the less busy of two random replicas, as Ray's own default does.
A replica that died takes its sessions with it: the next request lands elsewhere and is stamped
anew (a chat open in a browser must be reloaded, as after a server restart).

Reading the cookie means reading the proxy's request object, which Ray Serve pickles into the
request's first argument: that is not a public interface, so any surprise there falls back to
the default choice instead of failing the request.
"""

from __future__ import annotations

import logging
import pickle
import random
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

from ray.serve.request_router import (
    FIFOMixin,
    PendingRequest,
    RequestRouter,
    RunningReplica,
)

logger = logging.getLogger(__name__)

COOKIE = "ludao_replica"
HEADER = "x-ludao-replica"

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def wanted_replica(scope: Scope) -> str | None:
    """The replica a request asks for: the ``X-Ludao-Replica`` header, else the cookie."""
    cookie_header = ""
    for name, value in scope.get("headers") or ():
        key = name.decode("latin-1").lower()
        if key == HEADER:
            return value.decode("latin-1").strip() or None
        if key == "cookie":
            cookie_header = value.decode("latin-1")
    if COOKIE not in cookie_header:
        return None
    try:
        morsel = SimpleCookie(cookie_header).get(COOKIE)
    except CookieError:
        return None
    return morsel.value if morsel is not None and morsel.value else None


def _request_scope(pending: PendingRequest | None) -> Scope | None:
    """The ASGI scope of a request the HTTP proxy forwarded, or ``None``."""
    if pending is None or not pending.args:
        return None
    first = pending.args[0]
    if not isinstance(first, bytes | bytearray):
        return None
    try:
        request = pickle.loads(first)
    except Exception:  # not the proxy's request object: route as usual
        return None
    scope = getattr(request, "asgi_scope", None)
    return scope if isinstance(scope, dict) else None


class StickyRouter(FIFOMixin, RequestRouter):
    """Ray Serve request router: the replica a session is stamped with, else power of two."""

    async def choose_replicas(
        self,
        candidate_replicas: list[RunningReplica],
        pending_request: PendingRequest | None = None,
    ) -> list[list[RunningReplica]]:
        scope = _request_scope(pending_request)
        wanted = wanted_replica(scope) if scope is not None else None
        if wanted:
            for replica in candidate_replicas:
                if replica.replica_id.unique_id == wanted:
                    return [[replica]]
        # Ray's default: two at random, the one with the shorter queue (ties: the first).
        return [random.sample(candidate_replicas, min(2, len(candidate_replicas)))]


class ReplicaStamp:
    """ASGI middleware of a replica: ``X-Ludao-Replica`` on every response, the cookie when new.

    The cookie is ``HttpOnly`` and ``SameSite=Lax`` and carries only the replica's id; it is
    ``Secure`` when the request came over HTTPS (as the proxy in front says).
    """

    def __init__(self, app: ASGIApp, replica_id: str) -> None:
        self.app = app
        self.replica_id = replica_id

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        stamp = [(HEADER.encode(), self.replica_id.encode())]
        if wanted_replica(scope) != self.replica_id:
            secure = "; Secure" if scope.get("scheme") == "https" else ""
            cookie = f"{COOKIE}={self.replica_id}; Path=/; HttpOnly; SameSite=Lax{secure}"
            stamp.append((b"set-cookie", cookie.encode()))

        async def stamped(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *stamp]
            await send(message)

        await self.app(scope, receive, stamped)
