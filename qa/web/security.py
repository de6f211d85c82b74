"""The HTTP layer's defences, as plain ASGI middleware around the whole app (Gradio included).

Why middleware and not route code: several holes were in Gradio's own routes (its upload
endpoint, its chat queue, its permissive CORS), which no route of ours sees. Each class here
does one thing, and :func:`install` puts them in the right order:

- :class:`ProxyHeaders`: ``X-Forwarded-*``/``Forwarded`` and the identity headers
  (``Remote-User``...) are honoured only from configured proxy addresses and removed from
  every other request, so a forged ``X-Forwarded-For: 127.0.0.1`` or ``Remote-User: boss`` is
  never seen by anything downstream;
- Starlette's ``TrustedHostMiddleware``: a ``Host`` outside the allow-list is refused (DNS
  rebinding: a page on ``evil.example`` that resolves to the server's address);
- Starlette's ``CORSMiddleware`` with an explicit allow-list (empty by default): its presence
  also switches Gradio's "reflect any origin with credentials" mode off;
- :class:`SecurityHeaders`: ``Content-Security-Policy`` (``frame-ancestors``, a strict policy
  for the example page), ``nosniff``, a referrer policy;
- :class:`GradioLimits`: Gradio's file upload routes are closed (the app has no file input)
  and its chat calls have a body limit, checked from ``Content-Length`` and while streaming;
- :class:`LoginLimiter`: failed logins (``POST /login``, HTTP Basic) per client address.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "GradioLimits",
    "LoginLimiter",
    "ProxyHeaders",
    "SecurityHeaders",
    "WebSecurity",
    "install",
    "parse_networks",
]

Scope = dict[str, Any]
ASGI = Callable[..., Any]

CHAT_BODY_LIMIT = 512 * 1024
"""Bytes a Gradio call may send (the question plus the conversation shown so far)."""
CLOSED_GRADIO_ROUTES = ("/gradio_api/upload", "/gradio_api/process_recording")
ADMIN_UPLOAD_ROUTE = "/admin/gradio_api/upload"
"""The admin page's file input (``qa.web.admin_page``): open, as Gradio checks the admin login
before reading the body, and capped at the upload limit instead of the chat's body limit."""
ADMIN_UPLOAD_LIMIT = 50 * 1024 * 1024 + 64 * 1024
FORWARDED = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded")
EXAMPLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'"
)


def parse_networks(
    entries: Iterable[str],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Proxy addresses or networks (``10.0.0.5``, ``10.0.0.0/24``); ``*`` is refused.

    Raises:
        ValueError: ``*`` (every client could claim any address and any user) or a bad entry.
    """
    networks = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        if entry == "*":
            raise ValueError(
                "'*' as the trusted-proxy list would let any client forge its address and its "
                "user name; list the proxies' addresses"
            )
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"not an IP address or network: {entry!r}") from exc
    return tuple(networks)


@dataclass(frozen=True)
class WebSecurity:
    """The defences' settings, from :class:`qa.config.ServeSettings` (see docs/embedding.md).

    ``trusted_proxies=None`` leaves forwarded headers alone (a library user's own app);
    ``allowed_hosts=None`` skips the host check. ``ludao serve`` always sets both.
    """

    cors_origins: tuple[str, ...] = ()
    frame_ancestors: tuple[str, ...] = ()
    """Pages that may frame the app besides ``'self'``; empty: the CORS origins."""
    allowed_hosts: tuple[str, ...] | None = None
    trusted_proxies: tuple[str, ...] | None = None
    user_header: str = ""
    """Header a trusted proxy puts the user's name in (``Remote-User``); empty: off."""
    groups_header: str = ""
    """Header with the user's groups, comma-separated (``Remote-Groups``)."""
    login_failures: int = 10
    """Failed logins per client address and minute before 429."""
    chat_body_limit: int = CHAT_BODY_LIMIT
    limiter: LoginLimiter = field(default=None, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        for origin in self.cors_origins:
            if origin.strip() == "*" or "*" in origin:
                raise ValueError(
                    "'*' cannot be a CORS origin: the chat uses credentials (cookies, logins); "
                    "list the intranet origins that embed it"
                )
        if self.trusted_proxies is not None:
            parse_networks(self.trusted_proxies)
        if self.limiter is None:
            object.__setattr__(self, "limiter", LoginLimiter(self.login_failures))

    @property
    def identity_headers(self) -> tuple[bytes, ...]:
        return tuple(
            h.lower().encode("latin-1") for h in (self.user_header, self.groups_header) if h
        )

    def csp(self) -> str:
        ancestors = " ".join(("'self'", *(self.frame_ancestors or self.cors_origins)))
        return f"frame-ancestors {ancestors}; object-src 'none'; base-uri 'self'"


class ProxyHeaders:
    """Trust forwarding and identity headers from the configured proxies only.

    From a trusted peer, the client address and scheme come from ``X-Forwarded-For`` (the
    right-most address that is not itself a trusted proxy) and ``X-Forwarded-Proto``; from any
    other peer those headers and the identity headers are removed.
    """

    def __init__(self, app: ASGI, trusted: Sequence[str], identity_headers: Sequence[bytes]):
        self.app = app
        self.networks = parse_networks(trusted)
        self.identity = tuple(identity_headers)

    def trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.networks)

    async def __call__(self, scope: Scope, receive: ASGI, send: ASGI) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        peer = (scope.get("client") or ("", 0))[0]
        headers = list(scope.get("headers", []))
        if not self.trusted(peer):
            drop = set(FORWARDED) | set(self.identity)
            headers = [(k, v) for k, v in headers if k.lower() not in drop]
            return await self.app({**scope, "headers": headers}, receive, send)
        found = {k.lower(): v.decode("latin-1") for k, v in headers}
        client = scope.get("client")
        hops = [h.strip() for h in found.get("x-forwarded-for", "").split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.trusted(hop):
                client = (hop, 0)
                break
        scheme = found.get("x-forwarded-proto", "").strip().lower()
        changes: dict[str, Any] = {"client": client}
        if scheme in ("http", "https", "ws", "wss"):
            ws = scope["type"] == "websocket"
            changes["scheme"] = {"https": "wss", "http": "ws"}.get(scheme, scheme) if ws else scheme
        return await self.app({**scope, **changes}, receive, send)


class SecurityHeaders:
    """``Content-Security-Policy`` and friends on every HTTP response."""

    def __init__(self, app: ASGI, csp: str, strict_paths: Sequence[str] = ()) -> None:
        self.app = app
        self.csp = csp.encode()
        self.strict = tuple(strict_paths)

    async def __call__(self, scope: Scope, receive: ASGI, send: ASGI) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        strict = any(path.endswith(p) for p in self.strict)
        policy = (EXAMPLE_CSP + "; " + self.csp.decode()).encode() if strict else self.csp

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                own = policy
                headers = []
                for k, v in message.get("headers", []):
                    if k.lower() == b"content-security-policy":  # a route's own policy stays
                        if b"frame-ancestors" not in v:
                            own = v + b"; " + self.csp.split(b";")[0]
                        else:
                            own = v
                    elif k.lower() != b"x-frame-options":
                        headers.append((k, v))
                headers += [
                    (b"content-security-policy", own),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


async def _plain(send: ASGI, status: int, text: str, headers: Sequence[tuple[bytes, bytes]] = ()):
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class GradioLimits:
    """Close Gradio's upload routes and cap the size of every other Gradio call."""

    def __init__(self, app: ASGI, body_limit: int = CHAT_BODY_LIMIT) -> None:
        self.app = app
        self.limit = body_limit

    async def __call__(self, scope: Scope, receive: ASGI, send: ASGI) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if "/gradio_api/" not in path:
            return await self.app(scope, receive, send)
        limit = self.limit
        if path.rstrip("/").endswith(ADMIN_UPLOAD_ROUTE):
            limit = ADMIN_UPLOAD_LIMIT
        elif any(path.rstrip("/").endswith(p) for p in CLOSED_GRADIO_ROUTES):
            logger.warning("refused a call to Gradio's closed route %r", path)
            return await _plain(send, 403, "file uploads are not accepted here")
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            return await _plain(send, 413, f"request body too large (limit {limit} bytes)")
        received = 0

        async def counted() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await _plain(send, 413, f"request body too large (limit {limit} bytes)")


class _TooLarge(Exception):
    """A streamed body went over its limit."""


class LoginLimiter:
    """At most ``failures`` failed logins per client address in ``window`` seconds."""

    def __init__(self, failures: int = 10, window: float = 60.0) -> None:
        self.failures = failures
        self.window = window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            times = self._seen.get(client)
            while times and now - times[0] > self.window:
                times.popleft()
            return bool(times) and len(times) >= self.failures

    def failed(self, client: str) -> None:
        with self._lock:
            self._seen.setdefault(client, deque(maxlen=max(self.failures, 1))).append(
                time.monotonic()
            )
            if len(self._seen) > 10_000:  # forget the oldest clients, keep memory bounded
                self._seen.pop(next(iter(self._seen)))
        logger.warning("failed login from %r", client)


class LoginRateLimit:
    """``POST /login`` (Gradio's form) answers 429 while the client is over its failure limit."""

    def __init__(self, app: ASGI, limiter: LoginLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: ASGI, send: ASGI) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        if not scope.get("path", "").rstrip("/").endswith("/login"):
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("?", 0))[0]
        if self.limiter.blocked(client):
            return await _plain(send, 429, "too many failed logins; wait a minute")

        async def watch(message: dict) -> None:
            if message["type"] == "http.response.start" and message["status"] in (400, 401):
                self.limiter.failed(client)
            await send(message)

        await self.app(scope, receive, watch)


def install(app: Any, security: WebSecurity, *, strict_paths: Sequence[str] = ()) -> None:
    """Add the middleware to a FastAPI ``app`` (last added runs first)."""
    from fastapi.middleware.cors import CORSMiddleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    app.add_middleware(GradioLimits, body_limit=security.chat_body_limit)
    app.add_middleware(LoginRateLimit, limiter=security.limiter)
    app.add_middleware(SecurityHeaders, csp=security.csp(), strict_paths=strict_paths)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(security.cors_origins),
        allow_credentials=bool(security.cors_origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],  # only for the listed origins; Gradio sends its own headers
    )
    if security.allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(security.allowed_hosts))
    if security.trusted_proxies is not None:
        app.add_middleware(
            ProxyHeaders,
            trusted=security.trusted_proxies,
            identity_headers=security.identity_headers,
        )
