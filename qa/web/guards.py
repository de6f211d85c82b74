"""HTTP plumbing in front of the API: body limit, root path and HTTP Basic logins.

Each guard is small and independent of the app, so ``ui.create_app`` reads as a list of routes
and the guards can be tested (and reasoned about) one at a time.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
from collections.abc import Callable

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.responses import Response as HTTPResponse
from fastapi.routing import APIRoute

MAX_BODY_BYTES = 16 * 1024

Auth = Callable[[str, str], bool] | tuple[str, str] | list[tuple[str, str]]
"""A Gradio login: a check function, one ``(username, password)`` pair or a list of them."""


def _too_large() -> JSONResponse:
    return JSONResponse(
        {"detail": f"request body too large (limit {MAX_BODY_BYTES} bytes)"}, status_code=413
    )


class BodyLimitRoute(APIRoute):
    """Rejects bodies over ``MAX_BODY_BYTES`` with 413 before FastAPI parses them."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def limited(request: Request) -> HTTPResponse:
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                return _too_large()
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    return _too_large()
            sent = False

            async def receive() -> dict:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": bytes(body), "more_body": False}
                return {"type": "http.disconnect"}

            return await handler(Request(request.scope, receive))

        return limited


class RootPathMiddleware:
    """Sets the ASGI ``root_path``, so routes match whether or not the proxy strips the prefix.

    (What ``FastAPI(root_path=...)`` did before FastAPI deprecated that argument.)
    """

    def __init__(self, app: Callable, root_path: str) -> None:
        self.app = app
        self.root_path = root_path

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "root_path": self.root_path}
        await self.app(scope, receive, send)


def check_basic_auth(request: Request, auth: Auth) -> None:
    """HTTP Basic credentials for the JSON API when the UI has a login."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    username = password = ""
    if scheme.lower() == "basic":
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            username, _, password = base64.b64decode(token).decode("utf-8").partition(":")
    if callable(auth):
        ok = bool(username) and bool(auth(username, password))
    else:
        pairs = [auth] if isinstance(auth, tuple) else auth
        ok = any(
            secrets.compare_digest(username.encode(), u.encode())
            & secrets.compare_digest(password.encode(), p.encode())
            for u, p in pairs
        )
    if not ok:
        raise HTTPException(401, "login required", headers={"WWW-Authenticate": "Basic"})


# Admin calls are decided by ``qa.web.identity.Identity.check_admin``: a token or an admin login,
# never "the request comes from this machine" (a browser page can post to 127.0.0.1).
