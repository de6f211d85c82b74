"""What ``ui.create_app`` needs to be fit for an intranet, in one place so ui.py stays a list.

:func:`resolve` turns the app's arguments (or ``ServeSettings``) into the defences
(:class:`~qa.web.security.WebSecurity`) and the identity (:class:`~qa.web.identity.Identity`),
:func:`secure` installs them with an error handler that never answers 500 for bad JSON,
:func:`add_healthz` is ``/healthz`` (status and counts for everyone, details for admins), and
:func:`ask_as` asks on behalf of a user so retrieval sees only that user's documents.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from qa.access import User
from qa.config import ServeSettings, ludao_home
from qa.web.identity import Identity, Logins, admin_token_from_home
from qa.web.operations import ObservedPipeline
from qa.web.security import LoginLimiter, WebSecurity, install

if TYPE_CHECKING:
    from qa.schema import Response

logger = logging.getLogger(__name__)

__all__ = ["add_healthz", "ask_as", "from_serve_settings", "resolve", "secure"]

EXAMPLE_PATHS = ("/examples/intranet.html", "/examples/intranet.js")


def resolve(
    *,
    auth: Any = None,
    cors_origins: Sequence[str] | None = None,
    admin_token: str | None = None,
    security: WebSecurity | None = None,
    identity: Identity | None = None,
) -> tuple[WebSecurity, Identity]:
    """The defences and the identity, from explicit objects or the older keyword arguments.

    ``auth`` is a Gradio login (one pair or a list of pairs); without ``admin_token`` the token
    under ``$LUDAO_HOME`` is used (made on the first admin call; ``ludao serve`` makes it at
    start).
    """
    if security is None:
        security = WebSecurity(cors_origins=tuple(cors_origins or ()))
    if identity is None:
        pairs = [auth] if isinstance(auth, tuple) else list(auth or [])
        logins = Logins({u: (p, frozenset()) for u, p in pairs}) if not callable(auth) else None
        identity = Identity(
            logins=logins or Logins(),
            admin_token=admin_token or "",
            token_home=None if admin_token else ludao_home(),
            user_header=security.user_header,
            groups_header=security.groups_header,
            limiter=security.limiter,
        )
    return security, identity


def from_serve_settings(server: ServeSettings) -> tuple[WebSecurity, Identity]:
    """``ludao serve``'s defences and identity: every check on, as the settings say."""
    limiter = LoginLimiter(server.login_failures_per_minute)
    security = WebSecurity(
        cors_origins=server.cors_origins,
        frame_ancestors=server.frame_ancestors,
        allowed_hosts=server.trusted_hosts(),
        trusted_proxies=server.trusted_proxy_list(),
        user_header=server.user_header,
        groups_header=server.groups_header,
        limiter=limiter,
    )
    identity = Identity(
        logins=Logins.from_settings(server.login, server.users_file),
        admin_token=server.admin_token or admin_token_from_home(ludao_home()),
        admin_group=server.admin_group,
        user_header=server.user_header,
        groups_header=server.groups_header,
        limiter=limiter,
        metrics_token=server.metrics_token,
    )
    return security, identity


def _finite(value: Any) -> Any:
    """``value`` with non-finite floats and unencodable strings made printable for JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, bytes):
        return value[:1000].decode("utf-8", "backslashreplace")
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:1000]


def secure(app: FastAPI, security: WebSecurity) -> None:
    """Install the middleware and a 422 handler that can encode what it reports.

    FastAPI's own handler echoes the input, and ``NaN``, ``1e400`` (infinity) or a lone
    surrogate in it made the JSON encoder fail: a 500 with a traceback instead of a 422.
    """
    install(app, security, strict_paths=EXAMPLE_PATHS)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {k: _finite(v) for k, v in e.items() if k in ("type", "loc", "msg", "input")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)


def ask_as(pipeline: Any, question: str, user: User, **options: Any) -> Response:
    """``pipeline.ask`` limited to what ``user`` may read (pipelines without groups: as is)."""
    answering = getattr(pipeline, "current", pipeline)  # a ReloadablePipeline's pipeline
    if _takes_groups(answering.ask):
        options["groups"] = user.groups
    if isinstance(pipeline, ObservedPipeline):  # counted for /metrics, stored as usage
        return pipeline.ask_for(user, question, **options)
    return pipeline.ask(question, **options)


def _takes_groups(method: Any) -> bool:
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False
    return "groups" in parameters


def add_healthz(app: FastAPI, pipeline: Any, identity: Identity) -> None:
    """``GET /healthz``: status and the counts the caller may see; details only for admins.

    Paths (index folder, corpus) tell an attacker where to look, so anonymous callers get none.
    """

    @app.get("/healthz")
    def healthz(request: Request) -> dict[str, Any]:
        info = pipeline.info().to_dict()
        if identity.is_admin(request):
            return {"status": "ok", **info}
        try:
            user = identity.from_request(request)
        except HTTPException:  # a monitor without a login still gets the status
            user = User("anonymous")
        counts = {"documents": info.get("documents"), "passages": info.get("passages")}
        current = getattr(pipeline, "current", pipeline)
        visible = getattr(current, "visible_counts", None)
        if callable(visible):
            counts = visible(user.groups)
        generation = {"generation": info["generation"]} if info.get("generation") else {}
        return {"status": "ok", **counts, **generation}


def chat_user(identity: Identity | None, request: Any) -> User:
    """The chat's user from Gradio's request (``gr.Request``): login name or proxy header."""
    if identity is None or request is None:
        return User("anonymous")
    headers = getattr(request, "headers", None) or {}
    return identity.gradio_user(getattr(request, "username", None), headers)


def chat_rating(responses: dict, index: Any, liked: Any) -> tuple[int, Response, str] | None:
    """A like/dislike from the chat, validated: ``(message index, response, rating)`` or ``None``.

    Only ``True``/``False`` are ratings (the browser can send anything); the index must be a
    small integer naming a reply of this session that was not rated yet. Refusals are logged
    with ``repr`` so a crafted value cannot forge log lines.
    """
    if isinstance(index, list | tuple) and index:
        index = index[0]
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 10_000:
        logger.warning("chat rating with a bad message index %.80r ignored", index)
        return None
    if liked is not True and liked is not False:
        logger.warning("chat rating %.80r for message %d ignored", liked, index)
        return None
    response = responses.get(str(index)) if isinstance(responses, dict) else None
    if response is None:
        logger.warning("rating for unknown or already rated message %d ignored", index)
        return None
    return index, response, "like" if liked else "dislike"


def with_user(record: Any, user: User) -> Any:
    """A feedback record that names who gave it."""
    import dataclasses

    return dataclasses.replace(record, user=user.name)


def add_example_routes(app: FastAPI, examples_dir: Path) -> None:
    """``/examples/intranet.html`` and its script, under the strict policy of ``EXAMPLE_PATHS``."""
    from fastapi.responses import FileResponse

    media = {".html": "text/html", ".js": "text/javascript"}
    for path in EXAMPLE_PATHS:
        file = examples_dir / Path(path).name
        if not file.is_file():
            continue

        def serve(file: Path = file) -> FileResponse:
            return FileResponse(file, media_type=media[file.suffix])

        app.add_api_route(path, serve, methods=["GET"], include_in_schema=False)
