"""Ludao web app: a Gradio chat plus a small JSON API on one FastAPI app.

``create_app(pipeline)`` returns the FastAPI app (``POST /api/ask``, ``GET /healthz``, the Gradio
chat at ``/``); ``main()`` loads the default pipeline and serves it with uvicorn. Nothing is loaded
at import time.

Safety: every string that comes from a document (titles, passage text, answers) or from a user
(questions) is escaped with ``html.escape`` before it reaches the page, and the chat renders the
reply as HTML we build ourselves with Markdown and LaTeX rendering switched off, so a document that
contains ``<script>``, ``<img onerror=...>`` or Markdown links shows as plain text.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import html
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from fastapi.responses import Response as HTTPResponse
from fastapi.routing import APIRoute, APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from qa.config import ludao_home
from qa.errors import LudaoError, QuestionError
from qa.schema import Answer, Hit, Passage, Response

if TYPE_CHECKING:
    import gradio as gr

    from qa.pipeline import Pipeline
    from qa.reloading import ReloadablePipeline

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
EXAMPLES_DIR = HERE / "examples"

MAX_BODY_BYTES = 16 * 1024
MAX_TOP_K = 20
MAX_CITED = 3

DEFAULT_TITLE = "鹭岛 Ludao · 文档问答"
DEFAULT_EXAMPLES = (
    "2024年厦门全社会研发投入强度是多少？",
    "哪些头部机构扎根厦门？",
    "厦门的专精特新“小巨人”企业有多少家？",
)
NO_ANSWER_TEXT = "文档中没有找到答案。"
NO_ANSWER_TEXT_EN = "The documents do not say."

Auth = Callable[[str, str], bool] | tuple[str, str] | list[tuple[str, str]]

CSS = """
.ludao-reply { line-height: 1.6; overflow-wrap: anywhere; }
.ludao-answer { font-size: 1.1em; }
.ludao-answer-text { font-weight: 700; }
.ludao-meta { color: var(--body-text-color-subdued); font-size: 0.85em; }
.ludao-no-answer { font-weight: 700; }
.ludao-sources { margin-top: 0.5em; }
.ludao-passage { border-left: 3px solid var(--border-color-accent, #ccc); padding: 0.2em 0.6em;
  margin: 0.4em 0; }
.ludao-cite { font-size: 0.85em; color: var(--body-text-color-subdued); }
.ludao-passage-text { white-space: pre-wrap; font-size: 0.95em; }
.ludao-reply mark { background: #ffe58f; color: #000; padding: 0 2px; border-radius: 2px; }
#ludao-info { font-size: 0.85em; color: var(--body-text-color-subdued); }
@media (max-width: 640px) {
  .ludao-passage-text { font-size: 0.9em; }
  #ludao-info { font-size: 0.78em; }
}
"""


# ---------------------------------------------------------------------------------------------
# Rendering: pure functions, every document- or user-derived string goes through html.escape.


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def highlight(text: str, start: int, end: int) -> str:
    """``text`` escaped, with ``text[start:end]`` in ``<mark>``; no mark for an empty span."""
    start = max(0, min(start, len(text)))
    end = max(start, min(end, len(text)))
    if start == end:
        return _esc(text)
    return f"{_esc(text[:start])}<mark>{_esc(text[start:end])}</mark>{_esc(text[end:])}"


def _position(passage: Passage) -> str:
    if passage.page is not None:
        return f"第 {passage.page} 页 · p. {passage.page}"
    return f"字符 chars {passage.orig_start}–{passage.orig_end}"


def _confidence(score: float) -> str:
    level = "高 high" if score >= 0.7 else "中 medium" if score >= 0.4 else "低 low"
    return f"{score:.0%}（{level}）"


def _passage_html(number: int, passage: Passage, body: str, score: float | None = None) -> str:
    cite = f"[{number}] 《{_esc(passage.title or passage.doc_id)}》 · {_esc(_position(passage))}"
    if score is not None:
        cite += f" · 相关度 relevance {score:.3f}"
    return (
        '<div class="ludao-passage">'
        f'<div class="ludao-cite">{cite}</div>'
        f'<div class="ludao-passage-text">{body}</div>'
        "</div>"
    )


def _cited(answers: Sequence[Answer]) -> list[Answer]:
    """The best answer of each distinct passage, best first, at most ``MAX_CITED``."""
    seen: set[str] = set()
    cited = []
    for answer in answers:
        if answer.passage.id not in seen:
            seen.add(answer.passage.id)
            cited.append(answer)
    return cited[:MAX_CITED]


def render_reply_html(response: Response) -> str:
    """The chat reply: answer, confidence, cited passages with the span marked; all escaped."""
    parts = ['<div class="ludao-reply">']
    if response.no_answer or not response.answers:
        parts.append(f'<div class="ludao-no-answer">{NO_ANSWER_TEXT} {NO_ANSWER_TEXT_EN}</div>')
        hits: Sequence[Hit] = response.hits[:MAX_CITED]
        if hits:
            parts.append(
                '<div class="ludao-sources"><div class="ludao-meta">'
                "最接近的段落 Closest passages</div>"
            )
            parts += [
                _passage_html(i, h.passage, _esc(h.passage.text), h.score)
                for i, h in enumerate(hits, 1)
            ]
            parts.append("</div>")
    else:
        best = response.answers[0]
        parts.append(
            '<div class="ludao-answer">答案 Answer：'
            f'<span class="ludao-answer-text">{_esc(best.text)}</span></div>'
            f'<div class="ludao-meta">置信度 Confidence：{_confidence(best.score)}</div>'
        )
        parts.append('<div class="ludao-sources"><div class="ludao-meta">出处 Sources</div>')
        parts += [
            _passage_html(i, a.passage, highlight(a.passage.text, a.span.start, a.span.end))
            for i, a in enumerate(_cited(response.answers), 1)
        ]
        parts.append("</div>")
        others = [a for a in response.answers[1:] if a.text != best.text][:3]
        if others:
            listed = "；".join(f"{_esc(a.text)}（{a.score:.0%}）" for a in others)
            parts.append(f'<div class="ludao-meta">其他候选 Other candidates：{listed}</div>')
    total = response.timings_ms.get("total")
    footer = f"阅读器 reader: {_esc(response.reader)}"
    if "cache" in response.timings_ms:
        footer += " · 已缓存 answered from cache"
    elif total is not None:
        footer += f" · {total:.0f} ms"
    parts.append(f'<div class="ludao-meta">{footer}</div></div>')
    return "".join(parts)


def render_question_html(question: str) -> str:
    """A user's question as chat HTML (escaped: the chat renders HTML, not Markdown)."""
    return f'<div class="ludao-question">{_esc(question)}</div>'


def render_info_html(info: dict[str, Any]) -> str:
    """One line naming the loaded corpus, reader and embedding model."""
    corpus = ", ".join(Path(str(p)).name or str(p) for p in info.get("corpus", [])) or "?"
    counts = f"{info.get('documents', '?')} 篇文档 docs · {info.get('passages', '?')} 段 passages"
    reader = Path(str(info.get("reader", "?"))).name
    return (
        f"语料 Corpus：{_esc(corpus)}（{_esc(counts)}） · 阅读器 Reader：{_esc(reader)}"
        f" · 向量模型 Embedding：{_esc(info.get('embedding_model', '?'))}"
    )


# ---------------------------------------------------------------------------------------------
# Feedback


class FeedbackStore:
    """Append-only JSONL file; a per-path lock plus ``flock`` keeps concurrent appends whole."""

    _locks: ClassVar[dict[Path, threading.Lock]] = {}
    _locks_guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser().resolve()
        with self._locks_guard:
            self._lock = self._locks.setdefault(self.path, threading.Lock())

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                _flock(fd)
                view = memoryview(line)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
            finally:
                os.close(fd)  # closing releases the flock

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]


def _flock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the thread lock still holds in-process
        return
    fcntl.flock(fd, fcntl.LOCK_EX)


def _app_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ludao")
    except PackageNotFoundError:
        return "unknown"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _versions(info: dict[str, Any], reader: object) -> dict[str, Any]:
    """What produced an answer, stored with every rating so feedback can become a test set."""
    return {
        "reader": reader,
        "embedding_model": info.get("embedding_model"),
        "corpus": info.get("corpus"),
        "ludao_version": _app_version(),
    }


def feedback_record(
    response: Response, rating: str, *, info: dict[str, Any], message_index: int | None = None
) -> dict[str, Any]:
    """What a like/dislike stores: the question, answer, passages and model versions."""
    data = response.to_dict()
    best = data["answers"][0] if data["answers"] and not response.no_answer else None
    return {
        "time": _now(),
        "rating": rating,
        "question": response.question,
        "answer": best["text"] if best else None,
        "score": best["score"] if best else None,
        "no_answer": response.no_answer,
        "answers": data["answers"],
        "passages": data["passages"],
        **_versions(info, response.reader),
        "message_index": message_index,
    }


# ---------------------------------------------------------------------------------------------
# Gradio


def _rating(liked: bool | str) -> str:
    if liked is True:
        return "like"
    if liked is False:
        return "dislike"
    return str(liked) or "cleared"


def build_demo(
    pipeline: Pipeline | ReloadablePipeline,
    *,
    title: str = DEFAULT_TITLE,
    examples: Sequence[str] | None = None,
    feedback: FeedbackStore | None = None,
    concurrency_limit: int = 4,
    max_queue: int = 64,
) -> gr.Blocks:
    """The chat UI. ``examples=None`` shows the default-corpus examples, ``[]`` none."""
    import gradio as gr

    store = feedback if feedback is not None else FeedbackStore(ludao_home() / "feedback.jsonl")
    examples = DEFAULT_EXAMPLES if examples is None else examples

    def respond(
        question: str,
        history: list[dict],
        responses: dict,
        progress: Any = gr.Progress(),  # noqa: B008 - Gradio injects progress via the default
    ) -> Iterator[tuple[str, list[dict], dict, dict | None]]:
        question = (question or "").strip()
        history = list(history or [])
        if not question:
            yield "", history, responses, None
            return
        history.append({"role": "user", "content": render_question_html(question)})
        yield "", list(history), responses, None
        progress(0.2, desc="检索与阅读中 Searching the documents…")
        try:
            response = pipeline.ask(question)
        except LudaoError as exc:  # the message is written for users
            error = str(exc)
        except Exception:
            logger.exception("answering %r failed", question)
            error = "出错了，请稍后再试。Something went wrong; please try again later."
        else:
            history.append({"role": "assistant", "content": render_reply_html(response)})
            responses = {**responses, str(len(history) - 1): response}
            yield "", history, responses, response.to_dict()
            return
        history.append(
            {"role": "assistant", "content": f'<div class="ludao-error">{_esc(error)}</div>'}
        )
        yield "", history, responses, {"error": error}

    def on_like(responses: dict, event: gr.LikeData) -> None:
        index = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        response = responses.get(str(index))
        if response is None:
            logger.warning("feedback for unknown message %s ignored", index)
            return
        store.append(
            feedback_record(
                response, _rating(event.liked), info=pipeline.info(), message_index=index
            )
        )
        gr.Info("谢谢反馈！Thanks for the feedback.")

    # Gradio finds LikeData through the type hint; with postponed annotations and a lazy
    # ``import gradio`` the string "gr.LikeData" cannot be resolved, so set the real class.
    on_like.__annotations__["event"] = gr.LikeData

    with gr.Blocks(title=title) as demo:
        gr.HTML(f"<h2 style='margin:0.2em 0'>{_esc(title)}</h2>")
        # A callable value is evaluated on every page load, so the line follows a reload.
        gr.HTML(lambda: render_info_html(pipeline.info()), elem_id="ludao-info")
        chatbot = gr.Chatbot(
            elem_id="ludao-chat",
            label="对话 Conversation",
            show_label=False,
            height="62vh",
            min_height=320,
            render_markdown=False,
            sanitize_html=True,
            allow_tags=False,
            latex_delimiters=[],
            buttons=[],  # "copy" would copy our HTML markup, not the text
            feedback_options=("Like", "Dislike"),
            placeholder="向文档提问，答案附出处。Ask the documents; answers come with citations.",
        )
        responses = gr.State({})
        raw = gr.JSON(visible=False, label="response")
        with gr.Row(equal_height=True):
            question = gr.Textbox(
                elem_id="ludao-question",
                show_label=False,
                placeholder="输入问题 Type a question…",
                lines=1,
                max_lines=4,
                scale=6,
                min_width=160,
            )
            send = gr.Button(
                "提问 Ask", variant="primary", scale=1, min_width=72, elem_id="ludao-send"
            )
        if examples:
            gr.Examples(
                examples=[[e] for e in examples], inputs=[question], label="示例问题 Examples"
            )
        gr.HTML(
            "<div class='ludao-meta'>答案摘自文档原文，请核对出处。"
            "Answers are extracted from the documents; check the cited passages.</div>"
        )

        io = ([question, chatbot, responses], [question, chatbot, responses, raw])
        progress_opts = {"show_progress": "full", "show_progress_on": [chatbot]}
        question.submit(respond, *io, api_name="ask", **progress_opts)
        send.click(respond, *io, api_visibility="private", **progress_opts)
        chatbot.like(on_like, [responses], None, api_visibility="private")
        # Feedback maps message positions to responses: clearing the chat clears the map.
        chatbot.clear(dict, None, [responses], api_visibility="private")

    demo.queue(default_concurrency_limit=concurrency_limit, max_size=max_queue)
    return demo


# ---------------------------------------------------------------------------------------------
# FastAPI


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: StrictStr
    top_k: int | None = Field(default=None, ge=1, le=MAX_TOP_K)


class FeedbackRequest(BaseModel):
    """A rating sent by a script or another front end; the chat's own buttons store the same."""

    model_config = ConfigDict(extra="forbid")

    question: StrictStr = Field(min_length=1, max_length=2000)
    rating: Literal["like", "dislike"]
    answer: StrictStr | None = Field(default=None, max_length=2000)
    passage_ids: list[StrictStr] = Field(default_factory=list, max_length=50)
    comment: StrictStr | None = Field(default=None, max_length=2000)


def _is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    return host in {"127.0.0.1", "::1", "localhost"}


def _check_admin(request: Request, admin_token: str | None) -> None:
    """Admin calls (reload) need ``Authorization: Bearer <LUDAO_ADMIN_TOKEN>``.

    Without a configured token they are allowed from the server's own machine only, so a
    default installation cannot be made to rebuild its index by anyone on the intranet.
    """
    if admin_token:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            token.encode(), admin_token.encode()
        ):
            raise HTTPException(401, "admin token required", headers={"WWW-Authenticate": "Bearer"})
    elif not _is_loopback(request):
        raise HTTPException(403, "set LUDAO_ADMIN_TOKEN to allow this call from other machines")


def _too_large() -> JSONResponse:
    return JSONResponse(
        {"detail": f"request body too large (limit {MAX_BODY_BYTES} bytes)"}, status_code=413
    )


class _BodyLimitRoute(APIRoute):
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


class _RootPathMiddleware:
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


def _check_basic_auth(request: Request, auth: Auth) -> None:
    """HTTP Basic credentials for the JSON API when the UI has a login."""
    import base64

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


def create_app(
    pipeline: Pipeline | ReloadablePipeline,
    *,
    root_path: str = "",
    auth: Auth | None = None,
    cors_origins: Sequence[str] | None = None,
    title: str = DEFAULT_TITLE,
    examples: Sequence[str] | None = None,
    feedback_path: str | os.PathLike[str] | None = None,
    concurrency_limit: int = 4,
    max_queue: int = 64,
    admin_token: str | None = None,
    upload_dir: str | os.PathLike[str] | None = None,
) -> FastAPI:
    """FastAPI app with ``POST /api/ask``, ``GET /healthz``, ``/gradio.js`` and the chat at ``/``.

    ``root_path`` is the public sub-path behind a reverse proxy (e.g. ``/ludao``). ``auth`` puts a
    login on the chat and HTTP Basic on ``/api/ask``. ``cors_origins`` replaces Gradio's own CORS
    handling with an explicit allow-list for pages on other origins. A pipeline with a
    ``reload()`` method (``qa.reloading.ReloadablePipeline``) also gets ``POST /api/reload``,
    guarded by ``admin_token`` (or loopback only when there is none). With ``upload_dir`` (a
    folder of the corpus), ``POST /api/documents`` stores an uploaded file there under a safe
    name and reloads, under the same guard.
    """
    import gradio as gr

    root_path = root_path.rstrip("/")
    app = FastAPI(
        title="Ludao", docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None
    )
    if root_path:
        app.add_middleware(_RootPathMiddleware, root_path=root_path)
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_credentials=True,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],
        )

    api = APIRouter(route_class=_BodyLimitRoute)

    @api.post("/api/ask")
    def ask(body: AskRequest, request: Request) -> dict[str, Any]:
        if auth is not None:
            _check_basic_auth(request, auth)
        try:
            response = pipeline.ask(body.question, top_k=body.top_k)
        except QuestionError as exc:
            raise HTTPException(400, str(exc)) from exc
        return response.to_dict()

    feedback = FeedbackStore(
        feedback_path if feedback_path is not None else ludao_home() / "feedback.jsonl"
    )

    @api.post("/api/feedback", status_code=201)
    def post_feedback(body: FeedbackRequest, request: Request) -> dict[str, Any]:
        if auth is not None:
            _check_basic_auth(request, auth)
        info = pipeline.info()
        feedback.append(
            {
                "time": _now(),
                "source": "api",
                **body.model_dump(),
                **_versions(info, info.get("reader")),
            }
        )
        return {"stored": True}

    if callable(getattr(pipeline, "reload", None)):

        @api.post("/api/reload")
        def reload(request: Request) -> JSONResponse:
            _check_admin(request, admin_token)
            result = pipeline.reload()  # type: ignore[union-attr]
            return JSONResponse(result.to_dict(), status_code=200 if result.reloaded else 500)

    if upload_dir is not None:
        from qa.documents import registered_suffixes
        from qa.uploads import MAX_UPLOAD_BYTES, UploadError, safe_upload_name, save_upload

        @app.post("/api/documents", status_code=201)
        def upload_document(request: Request, file: UploadFile = File(...)) -> JSONResponse:  # noqa: B008
            _check_admin(request, admin_token)
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + 64 * 1024:
                raise HTTPException(413, f"upload limit is {MAX_UPLOAD_BYTES // 2**20} MiB")
            try:
                name = safe_upload_name(file.filename, registered_suffixes())
                chunks = iter(lambda: file.file.read(1 << 20), b"")
                saved = save_upload(upload_dir, name, chunks)
            except UploadError as exc:
                raise HTTPException(exc.status, str(exc)) from exc
            body: dict[str, Any] = {"saved": saved.name}
            if callable(getattr(pipeline, "reload", None)):
                result = pipeline.reload()  # type: ignore[union-attr]
                body["reload"] = result.to_dict()
            return JSONResponse(body, status_code=201)

    app.include_router(api)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", **pipeline.info()}

    frontend = Path(gr.__file__).parent / "templates" / "frontend" / "gradio.js"

    @app.get("/gradio.js", include_in_schema=False)
    def gradio_js() -> FileResponse:
        # The <gradio-app> loader, served by this server so intranet pages need no CDN.
        return FileResponse(
            frontend, media_type="text/javascript", headers={"Access-Control-Allow-Origin": "*"}
        )

    example_page = EXAMPLES_DIR / "intranet.html"
    if example_page.is_file():

        @app.get("/examples/intranet.html", include_in_schema=False)
        def intranet_example() -> FileResponse:
            return FileResponse(example_page, media_type="text/html")

    demo = build_demo(
        pipeline,
        title=title,
        examples=examples,
        feedback=feedback,
        concurrency_limit=concurrency_limit,
        max_queue=max_queue,
    )
    return gr.mount_gradio_app(
        app,
        demo,
        path="/",
        root_path=root_path or None,
        auth=auth,
        auth_message="鹭岛 Ludao — 请登录 Please log in",
        css=CSS,
        footer_links=["api", "settings"],
        run_history=False,
        show_error=True,
    )


def auth_from_env() -> tuple[str, str] | None:
    """``LUDAO_USERNAME``/``LUDAO_PASSWORD`` → a Gradio login; both or neither must be set."""
    username = os.environ.get("LUDAO_USERNAME", "")
    password = os.environ.get("LUDAO_PASSWORD", "")
    if bool(username) != bool(password):
        raise SystemExit("set both LUDAO_USERNAME and LUDAO_PASSWORD, or neither")
    return (username, password) if username else None


def _warm_up(pipeline: Pipeline) -> None:
    """Load the reader and run one query before serving, so the first user does not wait."""
    t0 = time.perf_counter()
    try:
        pipeline.ask(DEFAULT_EXAMPLES[0])
    except LudaoError as exc:  # an empty or odd corpus must not stop the server
        logger.warning("warm-up question failed: %s", exc)
    logger.info("warmed up in %.1f s", time.perf_counter() - t0)


def main(argv: Sequence[str] | None = None) -> None:
    """``python ui.py [--host H] [--port P] [--root-path /sub] [--corpus PATH]``: serve."""
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="ludao-ui", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=env("LUDAO_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("LUDAO_PORT", "7860")))
    parser.add_argument(
        "--root-path",
        default=env("LUDAO_ROOT_PATH", ""),
        help="public sub-path behind a reverse proxy, e.g. /ludao",
    )
    parser.add_argument(
        "--cors-origins",
        default=env("LUDAO_CORS_ORIGINS", ""),
        help="comma-separated origins allowed to embed/call the app",
    )
    parser.add_argument(
        "--corpus",
        action="append",
        default=None,
        help="file or folder to answer from (repeatable); default: settings",
    )
    parser.add_argument("--concurrency", type=int, default=int(env("LUDAO_CONCURRENCY", "4")))
    parser.add_argument("--max-queue", type=int, default=int(env("LUDAO_MAX_QUEUE", "64")))
    parser.add_argument(
        "--watch",
        type=float,
        default=float(env("LUDAO_WATCH", "0")),
        metavar="SECONDS",
        help="poll the corpus every SECONDS and reload the index when files change (0: off; "
        "POST /api/reload works either way)",
    )
    parser.add_argument(
        "--upload-dir",
        default=env("LUDAO_UPLOAD_DIR", ""),
        help="folder for documents sent to POST /api/documents; it joins the corpus",
    )
    args = parser.parse_args(argv)

    import uvicorn

    from qa.config import Settings
    from qa.pipeline import Pipeline
    from qa.reloading import ReloadablePipeline

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    auth = auth_from_env()
    settings = Settings.load(corpus=tuple(args.corpus) if args.corpus else None)
    if args.upload_dir:
        Path(args.upload_dir).mkdir(parents=True, exist_ok=True)
        if args.upload_dir not in settings.corpus:
            settings = dataclasses.replace(settings, corpus=(*settings.corpus, args.upload_dir))
    pipeline = ReloadablePipeline(lambda: Pipeline.from_settings(settings), corpus=settings.corpus)
    _warm_up(pipeline.current)
    if args.watch > 0:
        pipeline.start_watching(args.watch)
    default_corpus = settings.corpus == Settings().corpus
    app = create_app(
        pipeline,
        root_path=args.root_path,
        auth=auth,
        cors_origins=[o.strip() for o in args.cors_origins.split(",") if o.strip()],
        examples=None if default_corpus else [],
        feedback_path=settings.home_dir / "feedback.jsonl",
        concurrency_limit=args.concurrency,
        max_queue=args.max_queue,
        admin_token=env("LUDAO_ADMIN_TOKEN") or None,
        upload_dir=args.upload_dir or None,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        proxy_headers=True,
        forwarded_allow_ips=env("LUDAO_FORWARDED_ALLOW_IPS", "127.0.0.1"),
    )


if __name__ == "__main__":
    main()
