"""The chat bubble: ``/widget.js`` for intranet pages and the compact chat it opens (``/widget``).

A page adds ``<script src="https://ludao.example/widget.js" defer></script>``; the script (in
``qa/web/static/``) draws a launcher in a shadow DOM and, on the first click only, an iframe of
``/widget``: a small page of our own, not a second Gradio app, so the panel loads a few KB and
its markup (labels, roles, focus) is ours to make accessible. Replies come from
:func:`qa.web.render.render_reply_html`, the same HTML as the full chat (answer, confidence,
cited passages with the span highlighted, all escaped); like/dislike go to the same feedback
store with ``source="widget"``. The panel keeps its conversation in the page and sends the
earlier turns with each question (``history``, as for ``/api/ask``), so follow-ups work there too.

Who may call what: the script and the panel's static files are public (they hold no data and the
bubble must show before anyone logs in). ``/widget/ask`` and ``/widget/feedback`` answer as the
caller's :class:`~qa.access.User` (:class:`~qa.web.identity.Identity`: the trusted proxy's
header, the chat's login session, or HTTP Basic like ``/api/ask``), so retrieval sees only that
user's documents; with a login and no session, ``/widget`` shows a login form. Which pages may
frame ``/widget`` is the server's ``frame-ancestors`` policy (``qa.web.security``), not ours.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.responses import Response as HTTPResponse
from fastapi.routing import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from qa.access import User
from qa.conversation import MAX_HISTORY_TURNS, Turn, ask_options
from qa.errors import LudaoError, QuestionError
from qa.feedback import FeedbackRecord, FeedbackStore
from qa.web.api_models import FeedbackRequest, HistoryTurn
from qa.web.guards import BodyLimitRoute
from qa.web.identity import Identity
from qa.web.intranet import ask_as, with_user
from qa.web.render import escape, render_reply_html

if TYPE_CHECKING:
    from qa.pipeline import Pipeline
    from qa.reloading import ReloadablePipeline

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'self'; base-uri 'none'"
)
"""The panel's own policy (a ``<meta>``, so the server's header policy still applies on top):
only its script and stylesheet run, even if markup slipped into a reply."""

LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "lang": "zh-CN",
        "title": "鹭岛问答",
        "log": "对话",
        "hint": "向文档提问，答案附出处。回车提问，Shift+回车换行。",
        "question": "问题",
        "placeholder": "输入问题…",
        "ask": "提问",
        "busy": "检索与阅读中…",
        "rate": "这个回答有帮助吗？",
        "like": "有用",
        "dislike": "没用",
        "thanks": "谢谢反馈！",
        "failed": "出错了，请稍后再试。",
        "login": "请先登录。",
        "loginTitle": "请登录后提问",
        "username": "用户名",
        "password": "密码",
        "loginButton": "登录",
        "loginFailed": "用户名或密码不正确。",
    },
    "en": {
        "lang": "en",
        "title": "Ask the documents",
        "log": "Conversation",
        "hint": "Ask the documents; answers come with citations. Enter sends, Shift+Enter "
        "adds a line.",
        "question": "Question",
        "placeholder": "Type a question…",
        "ask": "Ask",
        "busy": "Searching the documents…",
        "rate": "Was this answer helpful?",
        "like": "Helpful",
        "dislike": "Not helpful",
        "thanks": "Thanks for the feedback!",
        "failed": "Something went wrong; please try again later.",
        "login": "Please log in first.",
        "loginTitle": "Log in to ask",
        "username": "User name",
        "password": "Password",
        "loginButton": "Log in",
        "loginFailed": "Wrong user name or password.",
    },
}
_SCRIPT_LABELS = ("busy", "rate", "like", "dislike", "thanks", "failed", "login", "loginFailed")


class WidgetAsk(BaseModel):
    """A question from the panel; the pipeline checks emptiness and length (400 with a reason).

    ``history`` is the panel's earlier turns, oldest first, as for ``POST /api/ask``: the panel
    keeps them in the page (nothing is stored on the server), so "那2020年呢？" is answered as
    the question it stands for and the reply says how it was understood.
    """

    model_config = ConfigDict(extra="forbid")

    question: StrictStr
    history: list[HistoryTurn] = Field(default_factory=list, max_length=MAX_HISTORY_TURNS)


@cache
def _static(name: str) -> bytes:
    return (STATIC / name).read_bytes()


def _asset(name: str, media_type: str) -> HTTPResponse:
    return HTTPResponse(
        _static(name),
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=300"},  # nosniff: qa.web.security
    )


def session_user(request: Request) -> str | None:
    """The user of the chat's built-in login session (Gradio's cookie), if any.

    Gradio keeps its sessions in the mounted app's ``tokens``; the panel is a page of the same
    server, so the cookie the login set is sent with the panel's requests too.
    """
    for route in request.app.routes:
        if getattr(route, "path", "") not in ("", "/"):  # the chat's mount, not /admin's
            continue
        gradio_app = getattr(route, "app", None)
        tokens = getattr(gradio_app, "tokens", None)
        cookie_id = getattr(gradio_app, "cookie_id", None)
        if isinstance(tokens, dict) and cookie_id:
            token = request.cookies.get(f"access-token-{cookie_id}") or request.cookies.get(
                f"access-token-unsecure-{cookie_id}"
            )
            return tokens.get(token) if token else None
    return None


def widget_user(request: Request, identity: Identity) -> User:
    """The panel's caller: proxy header, else the chat's login session, else HTTP Basic.

    Raises:
        HTTPException: 401 when a login is required and none was given (429 after too many
            failed Basic logins), as for ``/api/ask``.
    """
    proxied = identity.from_headers(request.headers)
    if proxied is not None:
        return proxied
    name = session_user(request)
    if name is not None:
        return identity.from_login(name)
    return identity.from_request(request)


def _kebab(name: str) -> str:
    """``loginFailed`` → ``login-failed``: the attribute that ``dataset.loginFailed`` reads."""
    return re.sub(r"[A-Z]", lambda m: "-" + m.group().lower(), name)


def render_widget_page(lang: str, *, login: bool) -> str:
    """The panel's HTML: the conversation log and the question box, or the login form
    (``login``), which posts to the chat's own ``login`` route (Gradio's session cookie)."""
    t = LABELS[lang]
    data = " ".join(f'data-{_kebab(k)}="{escape(t[k])}"' for k in _SCRIPT_LABELS)
    if login:
        body = (
            f'<form id="ludao-login" class="login"><h1>{escape(t["loginTitle"])}</h1>'
            f'<label>{escape(t["username"])}<input name="username" autocomplete="username" '
            "required></label>"
            f'<label>{escape(t["password"])}<input name="password" type="password" '
            'autocomplete="current-password" required></label>'
            f'<button type="submit">{escape(t["loginButton"])}</button></form>'
        )
    else:
        body = (
            f'<h1 class="sr-only">{escape(t["title"])}</h1>'
            f'<div id="ludao-log" class="log" role="log" aria-live="polite" tabindex="0" '
            f'aria-label="{escape(t["log"])}"><p class="hint">{escape(t["hint"])}</p></div>'
            '<form id="ludao-form" class="ask">'
            f'<label for="ludao-question" class="sr-only">{escape(t["question"])}</label>'
            '<textarea id="ludao-question" name="question" rows="2" maxlength="500" '
            f'placeholder="{escape(t["placeholder"])}"></textarea>'
            f'<button type="submit">{escape(t["ask"])}</button></form>'
        )
    return (
        f'<!doctype html><html lang="{t["lang"]}"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(t['title'])} · Ludao</title>"
        '<link rel="stylesheet" href="widget/panel.css"></head>'
        f"<body><main {data}>{body}"
        '<p id="ludao-status" class="status" role="status" aria-live="polite"></p></main>'
        '<script src="widget/panel.js"></script></body></html>'
    )


def add_widget_routes(
    app: FastAPI,
    pipeline: Pipeline | ReloadablePipeline,
    *,
    feedback: FeedbackStore,
    identity: Identity,
) -> None:
    """``GET /widget.js``, ``GET /widget`` (+ its ``panel.js``/``panel.css``), ``POST
    /widget/ask`` and ``POST /widget/feedback``; call before mounting Gradio at ``/``."""
    router = APIRouter(route_class=BodyLimitRoute)

    @router.get("/widget.js", include_in_schema=False)
    def widget_js() -> HTTPResponse:
        # Loaded by pages on other origins with a plain <script>: no CORS is involved.
        return _asset("widget.js", "text/javascript; charset=utf-8")

    @router.get("/widget/panel.js", include_in_schema=False)
    def panel_js() -> HTTPResponse:
        return _asset("panel.js", "text/javascript; charset=utf-8")

    @router.get("/widget/panel.css", include_in_schema=False)
    def panel_css() -> HTTPResponse:
        return _asset("panel.css", "text/css; charset=utf-8")

    @router.get("/widget", include_in_schema=False)
    def widget_page(request: Request, lang: Literal["zh", "en"] = "zh") -> HTMLResponse:
        try:
            widget_user(request, identity)
            login = False
        except HTTPException:
            login = bool(identity.logins)  # behind a proxy login, its own page comes first
        return HTMLResponse(render_widget_page(lang, login=login))

    @router.post("/widget/ask")
    def widget_ask(body: WidgetAsk, request: Request) -> dict[str, Any]:
        user = widget_user(request, identity)
        try:
            turns = [Turn(t.question, t.answer) for t in body.history]
            response = ask_as(pipeline, body.question, user, **ask_options(turns))
        except QuestionError as exc:
            raise HTTPException(400, str(exc)) from exc
        except LudaoError as exc:  # e.g. an index that cannot be read: written for users
            logger.warning("widget question failed: %s", exc)
            raise HTTPException(503, str(exc)) from exc
        best = None if response.no_answer or not response.answers else response.answers[0]
        return {
            "html": render_reply_html(response),
            "answer": best.text if best else None,
            "score": best.score if best else None,
            "no_answer": best is None,
            "passage_ids": [h.passage.id for h in response.hits],
            "interpreted_as": response.interpreted_as,
        }

    @router.post("/widget/feedback", status_code=201)
    def widget_feedback(body: FeedbackRequest, request: Request) -> dict[str, Any]:
        user = widget_user(request, identity)
        record = FeedbackRecord.from_api(**body.model_dump(), info=pipeline.info())
        feedback.append(with_user(dataclasses.replace(record, source="widget"), user))
        return {"stored": True}

    app.include_router(router)
