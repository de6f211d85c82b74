"""Ludao web app: a Gradio chat plus a small JSON API on one FastAPI app.

``build_demo(pipeline)`` is the chat, ``create_app(pipeline)`` the FastAPI app around it
(``POST /api/ask``, ``GET /healthz``, the Gradio chat at ``/``), ``serve(settings, server)`` loads
the pipeline and runs it with uvicorn, and ``main()`` is ``python ui.py``. Nothing is loaded at
import time. The parts live in ``qa.web``: HTML rendering (everything from a document or a user
is escaped; the chat renders no Markdown), request models and HTTP guards; ratings go through
``qa.feedback``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse
from fastapi.routing import APIRouter

from qa.config import ServeSettings, Settings, ludao_home
from qa.conversation import ask_options, turns_from_chat
from qa.errors import LudaoError, QuestionError
from qa.feedback import FeedbackRecord, FeedbackStore
from qa.records import database_url, open_feedback
from qa.web import intranet, operations
from qa.web.admin_api import add_reload_route, add_upload_route
from qa.web.api_models import AskRequest, FeedbackRequest
from qa.web.gradio_import import skip_stub_writing
from qa.web.guards import Auth, BodyLimitRoute, RootPathMiddleware
from qa.web.render import (
    CSS,
    escape,
    render_error_html,
    render_info_html,
    render_question_html,
    render_reply_html,
)
from qa.web.store_health import add_store_checks
from qa.web.widget import add_widget_routes

if TYPE_CHECKING:
    import gradio as gr

    from qa.pipeline import Pipeline
    from qa.reloading import ReloadablePipeline
    from qa.web.identity import Identity
    from qa.web.security import WebSecurity

logger = logging.getLogger(__name__)
skip_stub_writing()  # gradio is imported later, lazily: without rewriting its .pyi stubs

HERE = Path(__file__).resolve().parent
EXAMPLES_DIR = HERE / "examples"

DEFAULT_TITLE = "鹭岛 Ludao · 文档问答"
DEFAULT_EXAMPLES = (
    "2024年厦门全社会研发投入强度是多少？",
    "哪些头部机构扎根厦门？",
    "厦门的专精特新“小巨人”企业有多少家？",
)


def build_demo(
    pipeline: Pipeline | ReloadablePipeline,
    *,
    title: str = DEFAULT_TITLE,
    examples: Sequence[str] | None = None,
    feedback: FeedbackStore | None = None,
    concurrency_limit: int = 4,
    max_queue: int = 64,
    identity: Identity | None = None,
) -> gr.Blocks:
    """The chat UI. ``examples=None`` shows the default-corpus examples, ``[]`` none."""
    import gradio as gr

    store = feedback if feedback is not None else FeedbackStore(ludao_home() / "feedback.jsonl")
    examples = DEFAULT_EXAMPLES if examples is None else examples

    def respond(
        question: str,
        history: list[dict],
        responses: dict,
        request: Any = None,
        progress: Any = gr.Progress(),  # noqa: B008 - Gradio injects progress via the default
    ) -> Iterator[tuple[str, list[dict], dict, dict | None]]:
        user = intranet.chat_user(identity, request)  # "anonymous" without a login
        question = (question or "").strip()
        history = list(history or [])
        if not question:
            yield "", history, responses, None
            return
        earlier = ask_options(turns_from_chat(history))  # this session's turns, for follow-ups
        history.append({"role": "user", "content": render_question_html(question)})
        yield "", list(history), responses, None
        progress(0.2, desc="检索与阅读中 Searching the documents…")
        try:
            response = intranet.ask_as(pipeline, question, user, **earlier)
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
        history.append({"role": "assistant", "content": render_error_html(error)})
        yield "", history, responses, {"error": error}

    def on_like(responses: dict, event: gr.LikeData, request: Any = None) -> dict:
        rated = intranet.chat_rating(responses, event.index, event.liked)  # validated, once
        if rated is None:
            return responses
        index, response, rating = rated
        user = intranet.chat_user(identity, request)
        record = FeedbackRecord.from_response(
            response, rating, info=pipeline.info(), message_index=index
        )
        store.append(intranet.with_user(record, user))
        gr.Info("谢谢反馈！Thanks for the feedback.")
        return {k: v for k, v in responses.items() if k != str(index)}

    # Gradio finds LikeData through the type hint; with postponed annotations and a lazy
    # ``import gradio`` the string "gr.LikeData" cannot be resolved, so set the real class.
    on_like.__annotations__["event"] = gr.LikeData
    respond.__annotations__["request"] = on_like.__annotations__["request"] = gr.Request

    # Gradio's analytics would post the layout to api.gradio.app and ask PyPI for a version.
    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.HTML(f"<h1 style='margin:0.2em 0;font-size:1.5em'>{escape(title)}</h1>")
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
        chatbot.like(on_like, [responses], [responses], api_visibility="private")
        # Feedback maps message positions to responses: clearing the chat clears the map.
        chatbot.clear(dict, None, [responses], api_visibility="private")

    demo.queue(default_concurrency_limit=concurrency_limit, max_size=max_queue)
    return demo


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
    security: WebSecurity | None = None,
    identity: Identity | None = None,
) -> FastAPI:
    """FastAPI app with ``POST /api/ask``, ``GET /healthz``, ``/gradio.js`` and the chat at ``/``.

    ``root_path`` is the public sub-path behind a reverse proxy (e.g. ``/ludao``). ``auth`` puts a
    login on the chat and HTTP Basic on ``/api/ask``. ``cors_origins`` replaces Gradio's own CORS
    handling with an explicit allow-list for pages on other origins. A pipeline with a
    ``reload()`` method (``qa.reloading.ReloadablePipeline``) also gets ``POST /api/reload``,
    guarded by ``admin_token`` (one is generated under ``$LUDAO_HOME`` when none is given). With
    ``upload_dir`` (a folder of the corpus), ``POST /api/documents`` stores an uploaded file
    there under a safe name and reloads, under the same guard. ``security`` and ``identity``
    (``qa.web.intranet``) replace ``auth``/``cors_origins``/``admin_token`` when given.
    """
    import gradio as gr

    root_path = root_path.rstrip("/")
    app = FastAPI(title="Ludao", docs_url=None, openapi_url="/api/openapi.json", redoc_url=None)
    if root_path:
        app.add_middleware(RootPathMiddleware, root_path=root_path)
    security, identity = intranet.resolve(
        auth=auth, cors_origins=cors_origins, admin_token=admin_token, security=security,
        identity=identity,
    )  # fmt: skip
    intranet.secure(app, security)  # CORS allow-list, CSP, hosts, proxies, Gradio limits
    # Usage records, audit log and /metrics (qa.web.operations); every answer is observed.
    pipeline, ops = operations.install(app, pipeline, identity, feedback_path, root_path=root_path)

    api = APIRouter(route_class=BodyLimitRoute)

    @api.post("/api/ask")
    def ask(body: AskRequest, request: Request) -> dict[str, Any]:
        user = identity.from_request(request)
        try:
            options = {"top_k": body.top_k, **body.history_options()}
            response = intranet.ask_as(pipeline, body.question, user, **options)
        except QuestionError as exc:
            raise HTTPException(400, str(exc)) from exc
        return response.to_dict()

    feedback = open_feedback(  # a database URL (qa.records) or a JSONL file
        feedback_path if feedback_path is not None else ludao_home() / "feedback.jsonl"
    )

    @api.post("/api/feedback", status_code=201)
    def post_feedback(body: FeedbackRequest, request: Request) -> dict[str, Any]:
        user = identity.from_request(request)
        record = FeedbackRecord.from_api(**body.model_dump(), info=pipeline.info())
        feedback.append(intranet.with_user(record, user))
        return {"stored": True}

    if callable(getattr(pipeline, "reload", None)):
        add_reload_route(api, pipeline, identity, ops.audit)  # type: ignore[arg-type]
    if upload_dir is not None:
        add_upload_route(app, upload_dir, pipeline, identity, audit=ops.audit)
    app.include_router(api)
    add_store_checks(app, pipeline)  # 503 with the reason while a shared vector store is down
    add_widget_routes(app, pipeline, feedback=feedback, identity=identity)  # /widget.js, /widget

    intranet.add_healthz(app, pipeline, identity)  # counts for all, details for admins

    frontend = Path(gr.__file__).parent / "templates" / "frontend" / "gradio.js"

    @app.get("/gradio.js", include_in_schema=False)
    def gradio_js() -> FileResponse:
        # The <gradio-app> loader, served by this server so intranet pages need no CDN.
        return FileResponse(
            frontend, media_type="text/javascript", headers={"Access-Control-Allow-Origin": "*"}
        )

    intranet.add_example_routes(app, EXAMPLES_DIR)  # strict CSP; ?src= same-origin only

    demo = build_demo(
        pipeline,
        title=title,
        examples=examples,
        feedback=feedback,
        concurrency_limit=concurrency_limit,
        max_queue=max_queue,
        identity=identity,
    )
    ops.mount_admin(app, feedback, upload_dir=upload_dir, root_path=root_path)  # /admin first
    return gr.mount_gradio_app(
        app,
        demo,
        path="/",
        root_path=root_path or None,
        auth=identity.gradio_auth(),
        auth_dependency=identity.gradio_auth_dependency(),
        max_file_size=1,
        auth_message="鹭岛 Ludao — 请登录 Please log in",
        css=CSS,
        footer_links=["api", "settings"],
        run_history=False,
        show_error=True,
    )


def _warm_up(pipeline: Pipeline) -> None:
    """Load the reader and run one query before serving, so the first user does not wait."""
    t0 = time.perf_counter()
    try:
        pipeline.ask(DEFAULT_EXAMPLES[0])
    except LudaoError as exc:  # an empty or odd corpus must not stop the server
        logger.warning("warm-up question failed: %s", exc)
    logger.info("warmed up in %.1f s", time.perf_counter() - t0)


def build_server_app(settings: Settings, server: ServeSettings) -> FastAPI:
    """The app ``ludao serve`` runs, its pipeline loaded and warmed up (also one Ray replica's).

    The pipeline is reloadable (``POST /api/reload``, ``server.watch``). ``server.upload_dir``
    joins the corpus, so uploaded files are answered from.
    """
    from qa.pipeline import Pipeline
    from qa.reloading import ReloadablePipeline

    if server.upload_dir:
        Path(server.upload_dir).mkdir(parents=True, exist_ok=True)
        if server.upload_dir not in settings.corpus:
            settings = dataclasses.replace(settings, corpus=(*settings.corpus, server.upload_dir))
    # Reader, index and embedding model load in a thread while gradio is imported here.
    preload = server.parallel_load
    with ThreadPoolExecutor(1, thread_name_prefix="ludao-load") as pool:
        loading = pool.submit(
            ReloadablePipeline,
            lambda: Pipeline.from_settings(settings, preload_reader=preload, compute_thread=True),
            corpus=settings.corpus,
        )
        if preload:
            import gradio  # noqa: F401  (for create_app, while the models load)
        pipeline = loading.result()
    if server.watch > 0:
        pipeline.start_watching(server.watch)
    default_corpus = settings.corpus == Settings().corpus
    security, identity = intranet.from_serve_settings(server)
    app = create_app(
        pipeline,
        root_path=server.root_path,
        auth=server.login,
        cors_origins=server.cors_origins,
        examples=None if default_corpus else [],
        feedback_path=database_url(settings),  # SQLite under LUDAO_HOME unless configured
        concurrency_limit=server.concurrency,
        max_queue=server.max_queue,
        admin_token=server.admin_token or None,
        upload_dir=server.upload_dir or None,
        security=security,
        identity=identity,
    )
    _warm_up(pipeline.current)
    return app


def serve(settings: Settings, server: ServeSettings) -> None:
    """Answer from ``settings.corpus`` as ``server`` says, until the process is stopped."""
    import uvicorn

    app = build_server_app(settings, server)
    # Forwarded headers are applied by qa.web.security.ProxyHeaders, which also needs to know
    # the real peer to decide whether a user header can be believed.
    uvicorn.run(app, host=server.host, port=server.port, proxy_headers=False)


def main(argv: Sequence[str] | None = None) -> None:
    """``python ui.py [--host H] [--port P] [--root-path /sub] [--corpus PATH] ...``: serve.

    Every :class:`qa.config.ServeSettings` field is an option (``max_queue`` is
    ``--max-queue``); an option not given comes from ``LUDAO_*`` or ``config.toml``, as in
    ``ludao serve``.
    """
    parser = argparse.ArgumentParser(prog="ludao-ui", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--corpus",
        action="append",
        default=None,
        help="file or folder to answer from (repeatable); default: settings",
    )
    for field in dataclasses.fields(ServeSettings):
        option = "--" + field.name.replace("_", "-")
        help_text = f"{field.metadata['help']} (LUDAO_{field.name.upper()})"
        parser.add_argument(option, dest=field.name, default=None, help=help_text)
    options = vars(parser.parse_args(argv))
    corpus = options.pop("corpus")
    try:
        server = ServeSettings.load(**options)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    serve(Settings.load(corpus=tuple(corpus) if corpus else None), server)


if __name__ == "__main__":
    main()
