"""ui.py and qa.web: escaping and rendering, the JSON API, feedback, root_path, login,
gradio_client, ``python ui.py`` and ``ludao serve``.

Everything runs on a ``FakePipeline`` built from the schema dataclasses; no model is loaded.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from qa.errors import QuestionError
from qa.feedback import FeedbackRecord, FeedbackStore
from qa.schema import Answer, Hit, Passage, PipelineInfo, Response, Span

pytest.importorskip("gradio")
pytest.importorskip("fastapi")

import ui
from qa.web import render

TEXT = (
    "“十四五”时期，厦门全社会研发投入强度从2020年的3.08%提升至2024年的3.46%；"
    "企业研发经费支出年均增长13%以上。"
)
OTHER = "厦门翔安创新实验室的科研人员正专注调试疫苗反应用系统。"
XSS = (
    '<img src=x onerror="window.__xss=1"> <script>window.__xss=1</script> '
    "[link](javascript:alert(1)) 研发投入强度为3.46%。"
)
INFO_JSON = {
    "corpus": ["/srv/ludao/data/corpus"],
    "documents": 1,
    "passages": 2,
    "embedding_model": "multilingual-e5-small",
    "index_dir": "/tmp/ludao-index",
    "reader": "/srv/ludao/models/reader-zh",
}
"""What ``/healthz`` has always answered (besides ``status``) for :data:`INFO`."""
INFO = PipelineInfo(
    corpus=("/srv/ludao/data/corpus",),
    documents=1,
    passages=2,
    embedding_model="multilingual-e5-small",
    index_dir="/tmp/ludao-index",
    reader="/srv/ludao/models/reader-zh",
)


def make_passage(text: str = TEXT, *, title: str = "鹭江弄潮", pid: str = "d1:0:aaaa") -> Passage:
    return Passage(
        id=pid, doc_id=pid.split(":")[0], title=title, text=text, start=0, end=len(text),
        orig_start=100, orig_end=100 + len(text),
    )  # fmt: skip


def make_response(
    question: str = "2024年厦门全社会研发投入强度是多少？",
    *,
    text: str = TEXT,
    title: str = "鹭江弄潮",
    no_answer: bool = False,
) -> Response:
    passage = make_passage(text, title=title)
    other = make_passage(OTHER, pid="d1:200:bbbb")
    hits = [Hit(passage, 0.032), Hit(other, 0.016)]
    start = text.find("3.46%")
    if no_answer or start < 0:
        return Response(question, [], hits, True, "fake-reader", {"total": 3.0})
    answers = [Answer("3.46%", 0.91, passage, Span(start, start + 5))]
    return Response(question, answers, hits, False, "fake-reader", {"total": 12.5})


class FakePipeline:
    """Stands in for ``qa.pipeline.Pipeline``: validates like it, answers from one passage."""

    def __init__(self, *, text: str = TEXT, title: str = "鹭江弄潮", delay: float = 0.0) -> None:
        self.text = text
        self.title = title
        self.delay = delay
        self.calls: list[tuple[str, int | None]] = []

    def info(self) -> PipelineInfo:
        return INFO

    def ask(self, question: str, top_k: int | None = None) -> Response:
        if not isinstance(question, str) or not question.strip():
            raise QuestionError("问题为空。The question is empty.")
        if len(question) > 500:
            raise QuestionError("问题太长（最多 500 字）。The question is too long.")
        self.calls.append((question, top_k))
        if self.delay:
            time.sleep(self.delay)
        return make_response(question, text=self.text, title=self.title)


@contextlib.contextmanager
def serve(app, host: str = "127.0.0.1") -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on a free port; yields the base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(autouse=True)
def _ludao_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LUDAO_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def pipeline() -> FakePipeline:
    return FakePipeline()


ADMIN_TOKEN = "test-admin-token"


@pytest.fixture(scope="module")
def client(pipeline, tmp_path_factory):
    from fastapi.testclient import TestClient

    feedback = tmp_path_factory.mktemp("feedback") / "feedback.jsonl"
    app = ui.create_app(pipeline, feedback_path=feedback, admin_token=ADMIN_TOKEN)
    with TestClient(app) as test_client:
        yield test_client


# --- rendering ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        '<img src=x onerror="window.__xss=1">',
        "[link](javascript:alert(1))",
    ],
)
def test_highlight_escapes_payloads(payload):
    text = f"前文{payload}答案3.46%后文"
    start = text.index("3.46%")
    out = render.highlight(text, start, start + 5)
    assert "<script" not in out and "<img" not in out
    assert out.count("<") == out.count("<mark>") + out.count("</mark>") == 2
    assert html.unescape(out.replace("<mark>", "").replace("</mark>", "")) == text


def test_highlight_marks_exactly_the_span():
    text = "a<b>3.46%&c"
    start = text.index("3.46%")
    assert render.highlight(text, start, start + 5) == "a&lt;b&gt;<mark>3.46%</mark>&amp;c"


def test_highlight_span_inside_markup_is_escaped():
    text = "x<script>y"
    assert render.highlight(text, 1, 9) == "x<mark>&lt;script&gt;</mark>y"


@pytest.mark.parametrize(("start", "end"), [(5, 5), (9, 3), (-4, 0), (100, 200)])
def test_highlight_degenerate_spans_have_no_mark(start, end):
    text = "<b>abc</b>"
    out = render.highlight(text, start, end)
    assert "<mark>" not in out
    assert out == "&lt;b&gt;abc&lt;/b&gt;"


def test_highlight_clamps_span_past_the_end():
    assert render.highlight("abc", 1, 99) == "a<mark>bc</mark>"


def test_render_answer_first_then_confidence_then_cited_passage():
    out = render.render_reply_html(make_response())
    answer, confidence, sources = (out.index(s) for s in ("答案", "置信度", "出处"))
    assert answer < confidence < sources
    assert "91%" in out and "鹭江弄潮" in out
    assert "<mark>3.46%</mark>" in out
    assert "字符 chars 100–" in out  # position when the document has no pages
    assert render.NO_ANSWER_TEXT not in out


def test_render_shows_page_when_known():
    response = make_response()
    passage = Passage(**{**response.answers[0].passage.__dict__, "page": 7})
    answer = Answer("3.46%", 0.5, passage, response.answers[0].span)
    out = render.render_reply_html(Response("q", [answer], response.hits, False, "r"))
    assert "第 7 页" in out


def test_render_no_answer_declines_and_shows_closest_passages():
    out = render.render_reply_html(make_response(no_answer=True))
    assert render.NO_ANSWER_TEXT in out and render.NO_ANSWER_TEXT_EN in out
    assert "最接近的段落" in out
    assert out.count('class="ludao-passage"') == 2
    assert "3.46%" in out and OTHER in out
    assert "<mark>" not in out
    assert "答案 Answer" not in out


def test_render_escapes_document_derived_strings():
    response = make_response(text=XSS, title='<img src=x onerror="window.__xss=1">')
    out = render.render_reply_html(response)
    assert "<img" not in out and "<script" not in out and "<a " not in out
    assert "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;" in out
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in out
    assert "[link](javascript:alert(1))" in out  # left as text; the chat renders no Markdown
    assert "<mark>3.46%</mark>" in out


def test_render_question_and_info_escape():
    assert (
        render.render_question_html("<b>hi</b>")
        == '<div class="ludao-question">&lt;b&gt;hi&lt;/b&gt;</div>'
    )
    info = render.render_info_html(replace(INFO, embedding_model="<i>e5</i>"))
    assert "corpus" in info and "reader-zh" in info and "&lt;i&gt;e5&lt;/i&gt;" in info
    assert "/srv/ludao" not in info  # names only, not server paths


# --- HTTP API -------------------------------------------------------------------------------


def test_api_ask_matches_the_contract(client, pipeline):
    r = client.post(
        "/api/ask", json={"question": "2024年厦门全社会研发投入强度是多少？", "top_k": 3}
    )
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {
        "question", "answers", "no_answer", "passages", "reader", "timings_ms", "interpreted_as"
    }  # fmt: skip
    assert body == make_response().to_dict() and body["interpreted_as"] is None
    assert set(body["answers"][0]) >= {"text", "score", "doc", "passage_id", "start", "end"}
    assert set(body["passages"][0]) >= {"id", "doc", "title", "text", "score"}
    assert pipeline.calls[-1] == ("2024年厦门全社会研发投入强度是多少？", 3)


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"question": ""}, 400),
        ({"question": "   "}, 400),
        ({}, 422),
        ({"question": None}, 422),
        ({"question": 42}, 422),
        ({"question": "q", "top_k": 0}, 422),
        ({"question": "q", "top_k": 21}, 422),
        ({"question": "q", "top_k": "many"}, 422),
        ({"question": "q", "extra": 1}, 422),
    ],
)
def test_api_ask_rejects_bad_requests(client, payload, status):
    r = client.post("/api/ask", json=payload)
    assert r.status_code == status
    assert "detail" in r.json()


def test_api_question_error_message_is_returned(client):
    r = client.post("/api/ask", json={"question": "长" * 600})
    assert r.status_code == 400
    assert r.json() == {"detail": "问题太长（最多 500 字）。The question is too long."}


def test_api_invalid_json_is_422(client):
    r = client.post("/api/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_api_oversized_body_is_413(client, pipeline):
    calls = len(pipeline.calls)
    body = json.dumps({"question": "问" * 9000}).encode()
    r = client.post("/api/ask", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]
    assert len(pipeline.calls) == calls


def test_api_oversized_chunked_body_is_413(client):
    def chunks():
        yield b'{"question": "'
        for _ in range(20):
            yield b"x" * 1024
        yield b'"}'

    r = client.post("/api/ask", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_healthz(client):
    # Anonymous callers get the status and counts only (no server paths, issue #13) ...
    r = client.get("/healthz")
    assert r.status_code == 200
    counts = {k: INFO_JSON[k] for k in ("documents", "passages")}
    assert r.json() == {"status": "ok", **counts}
    # ... admins the details, with the same keys in the same order.
    r = client.get("/healthz", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.json() == {"status": "ok", **INFO_JSON}
    assert list(r.json()) == ["status", *INFO_JSON]


def test_gradio_is_mounted_with_the_ask_api(client):
    assert client.get("/").status_code == 200
    config = client.get("/config").json()
    assert any(dep.get("api_name") == "ask" for dep in config["dependencies"])
    info = client.get("/gradio_api/info").json()
    assert "/ask" in info["named_endpoints"]


def test_gradio_js_loader_is_served_for_other_origins(client):
    r = client.get("/gradio.js")
    assert r.status_code == 200
    assert "javascript" in r.headers["content-type"]
    assert r.headers["access-control-allow-origin"] == "*"
    assert client.get("/examples/intranet.html").status_code == 200


# --- feedback -------------------------------------------------------------------------------


def test_feedback_concurrent_appends_are_all_kept(tmp_path):
    path = tmp_path / "sub" / "feedback.jsonl"
    threads, per_thread = 8, 40

    def work(n: int) -> None:
        store = FeedbackStore(path)  # separate instances share the per-path lock
        for i in range(per_thread):
            store.append(
                FeedbackRecord(rating="like", question=f"{n}:{i}", comment="长文本" * 500 + "<s>")
            )

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == threads * per_thread
    records = [json.loads(line) for line in lines]
    assert {r["question"] for r in records} == {
        f"{n}:{i}" for n in range(threads) for i in range(per_thread)
    }


def test_feedback_record_has_question_answer_passages_and_versions():
    record = FeedbackRecord.from_response(
        make_response(), "like", info=INFO, message_index=1
    ).to_dict()
    assert record["rating"] == "like"
    assert record["question"] == "2024年厦门全社会研发投入强度是多少？"
    assert record["answer"] == "3.46%" and record["score"] == 0.91
    assert record["passages"][0]["text"] == TEXT
    assert record["reader"] == "fake-reader"
    assert record["embedding_model"] == "multilingual-e5-small"
    assert "ludao_version" in record and "time" in record
    declined = FeedbackRecord.from_response(
        make_response(no_answer=True), "dislike", info=INFO
    ).to_dict()
    assert declined["answer"] is None and declined["no_answer"] is True
    json.dumps(record, ensure_ascii=False)


def test_chat_and_api_feedback_have_one_shape(tmp_path):
    from fastapi.testclient import TestClient

    path = tmp_path / "f.jsonl"
    app = ui.create_app(FakePipeline(), feedback_path=path)
    rating = {"question": "研发投入强度？", "rating": "dislike", "passage_ids": ["d1:0:aaaa"]}
    with TestClient(app) as c:
        assert (
            c.post("/api/feedback", json={**rating, "comment": "<b>wrong</b>"}).status_code == 201
        )
    FeedbackStore(path).append(FeedbackRecord.from_response(make_response(), "like", info=INFO))
    api, chat = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())
    assert list(api) == list(chat)
    assert (api["source"], chat["source"]) == ("api", "chat")
    assert api["passage_ids"] == ["d1:0:aaaa"]
    assert chat["passage_ids"] == ["d1:0:aaaa", "d1:200:bbbb"]
    assert api["comment"] == "<b>wrong</b>" and api["answers"] == [] and api["no_answer"] is None
    assert api["reader"] == INFO.reader and chat["reader"] == "fake-reader"
    assert api["corpus"] == chat["corpus"] == ["/srv/ludao/data/corpus"]


def test_feedback_lines_of_the_older_shapes_still_read(tmp_path):
    path = tmp_path / "feedback.jsonl"
    old_chat = FeedbackRecord.from_response(make_response(), "like", info=INFO).to_dict()
    for key in ("source", "passage_ids", "comment"):
        del old_chat[key]
    old_api = {
        "time": "2025-01-01T00:00:00+00:00", "source": "api", "question": "q",
        "rating": "dislike", "answer": None, "passage_ids": ["d1:0:aaaa"], "comment": None,
        "reader": "r", "embedding_model": "e", "corpus": ["c"], "ludao_version": "0.1",
        "from_a_newer_version": 1,
    }  # fmt: skip
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in (old_chat, old_api)),
        encoding="utf-8",
    )
    chat, api = FeedbackStore(path).read()
    assert chat.source == "chat" and chat.passage_ids == ("d1:0:aaaa", "d1:200:bbbb")
    assert chat.answer == "3.46%" and chat.passages[0]["text"] == TEXT
    assert api.source == "api" and api.passage_ids == ("d1:0:aaaa",) and api.answers == ()
    assert api.corpus == ("c",) and api.ludao_version == "0.1"


def test_feedback_default_path_is_under_ludao_home(tmp_path, pipeline):
    demo = ui.build_demo(pipeline)  # builds without a server; no file written yet
    assert demo is not None
    assert not (tmp_path / "home" / "feedback.jsonl").exists()


# --- root_path, login, CORS -----------------------------------------------------------------


def test_root_path_behind_a_proxy(tmp_path):
    from fastapi.testclient import TestClient

    app = ui.create_app(FakePipeline(), root_path="/ludao/", feedback_path=tmp_path / "f.jsonl")
    with TestClient(app) as c:
        # A proxy that strips the prefix and one that forwards it unchanged both work.
        assert c.get("/healthz").status_code == 200
        assert c.get("/ludao/healthz").status_code == 200
        assert c.post("/ludao/api/ask", json={"question": "问"}).status_code == 200
        assert c.get("/ludao/").status_code == 200
        assert c.get("/ludao/config").json()["root"].endswith("/ludao")
        assert c.get("/ludao/api/openapi.json").status_code == 200
        proxied = {"x-forwarded-host": "intranet.example.org", "x-forwarded-proto": "https"}
        root = c.get("/config", headers=proxied).json()["root"]
        assert root == "https://intranet.example.org/ludao"


def test_login_protects_chat_and_api(tmp_path):
    from fastapi.testclient import TestClient

    app = ui.create_app(FakePipeline(), auth=("staff", "s3cret"), feedback_path=tmp_path / "f")
    good = "Basic " + base64.b64encode(b"staff:s3cret").decode()
    bad = "Basic " + base64.b64encode(b"staff:wrong").decode()
    with TestClient(app) as c:
        assert c.get("/config").status_code == 401
        assert c.post("/api/ask", json={"question": "问"}).status_code == 401
        assert (
            c.post("/api/ask", json={"question": "问"}, headers={"authorization": bad}).status_code
            == 401
        )
        assert (
            c.post("/api/ask", json={"question": "问"}, headers={"authorization": good}).status_code
            == 200
        )
        assert c.get("/healthz").status_code == 200
        login = c.post("/login", data={"username": "staff", "password": "s3cret"})
        assert login.status_code == 200
        assert c.get("/config").status_code == 200


def test_explicit_cors_origins_replace_gradio_defaults(tmp_path):
    from fastapi.testclient import TestClient

    allowed = "https://intranet.example.org"
    app = ui.create_app(FakePipeline(), cors_origins=[allowed], feedback_path=tmp_path / "f")
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    with TestClient(app) as c:
        ok = c.options("/api/ask", headers={"origin": allowed, **preflight})
        assert ok.headers.get("access-control-allow-origin") == allowed
        other = c.options(
            "/gradio_api/queue/join", headers={"origin": "https://evil.example", **preflight}
        )
        assert "access-control-allow-origin" not in other.headers
        config = c.get("/config", headers={"origin": allowed})
        assert config.headers.get("access-control-allow-origin") == allowed


# --- gradio_client --------------------------------------------------------------------------


def test_gradio_client_calls_ask(tmp_path):
    gradio_client = pytest.importorskip("gradio_client")
    app = ui.create_app(FakePipeline(), feedback_path=tmp_path / "f.jsonl")
    with serve(app) as url:
        client = gradio_client.Client(url, verbose=False)
        cleared, history, raw = client.predict(
            "2024年厦门全社会研发投入强度是多少？", [], api_name="/ask"
        )
    assert cleared == ""
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert "<mark>3.46%</mark>" in json.dumps(history, ensure_ascii=False)
    assert raw == make_response().to_dict()


# --- the chat function ----------------------------------------------------------------------


def _chat_fn(demo):
    return next(f.fn for f in demo.fns.values() if f.api_name == "ask")


def test_chat_fn_answers_and_keeps_history(pipeline):
    respond = _chat_fn(ui.build_demo(pipeline, examples=[]))
    steps = list(respond("  <b>2024年</b>研发投入强度？ ", [], {}))
    first, last = steps[0], steps[-1]
    assert first[1] == [
        {"role": "user", "content": render.render_question_html("<b>2024年</b>研发投入强度？")}
    ]
    cleared, history, responses, raw = last
    assert cleared == "" and [m["role"] for m in history] == ["user", "assistant"]
    assert "<mark>3.46%</mark>" in history[1]["content"]
    assert responses["1"].answers[0].text == "3.46%"  # keyed by message index, for feedback
    assert raw["answers"][0]["text"] == "3.46%"
    assert list(respond("   ", history, responses))[-1][1] == history  # blank: nothing asked


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (QuestionError("问题太长 <too long>"), "问题太长 &lt;too long&gt;"),
        (RuntimeError("boom"), "出错了"),
    ],
)
def test_chat_fn_shows_errors_in_the_conversation(error, shown):
    class Failing(FakePipeline):
        def ask(self, question, top_k=None):
            raise error

    respond = _chat_fn(ui.build_demo(Failing(), examples=[]))
    _, history, responses, raw = list(respond("问", [], {}))[-1]
    assert history[-1]["role"] == "assistant" and shown in history[-1]["content"]
    assert "boom" not in history[-1]["content"]
    assert responses == {} and "error" in raw


def test_main_wires_settings_env_and_flags(monkeypatch, tmp_path):
    import sys
    import types

    import uvicorn

    loaded, served = [], {}
    fake_module = types.SimpleNamespace(
        Pipeline=types.SimpleNamespace(
            from_settings=lambda s, **kw: loaded.append(s) or FakePipeline()
        )
    )
    monkeypatch.setitem(sys.modules, "qa.pipeline", fake_module)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    monkeypatch.setenv("LUDAO_ROOT_PATH", "/ludao")
    monkeypatch.setenv("LUDAO_USERNAME", "staff")
    monkeypatch.setenv("LUDAO_PASSWORD", "pw")
    ui.main(["--port", "8123", "--host", "0.0.0.0", "--corpus", str(tmp_path)])
    assert loaded[0].corpus == (str(tmp_path),)
    assert served["host"] == "0.0.0.0" and served["port"] == 8123

    from fastapi.testclient import TestClient

    with TestClient(served["app"], base_url="http://localhost") as c:  # a trusted host
        assert c.get("/ludao/healthz").status_code == 200
        assert c.post("/api/ask", json={"question": "问"}).status_code == 401


def test_reply_footer_says_when_the_answer_came_from_the_cache() -> None:
    fresh = render.render_reply_html(make_response())
    assert "12 ms" in fresh and "cache" not in fresh
    cached = render.render_reply_html(
        replace(make_response(), timings_ms={"cache": 0.1, "total": 0.1})
    )
    assert "answered from cache" in cached and " ms" not in cached


def test_main_refuses_half_a_login(monkeypatch):
    monkeypatch.delenv("LUDAO_PASSWORD", raising=False)
    monkeypatch.setenv("LUDAO_USERNAME", "staff")
    with pytest.raises(SystemExit):
        ui.main([])


def test_ludao_serve_offers_every_serve_setting(monkeypatch, tmp_path):
    from dataclasses import fields

    from click.testing import CliRunner

    from qa.cli import cli
    from qa.config import ServeSettings

    served = {}
    monkeypatch.setattr(ui, "serve", lambda settings, server: served.update(s=settings, v=server))
    monkeypatch.setenv("LUDAO_ADMIN_TOKEN", "from-env")
    monkeypatch.setenv("LUDAO_PORT", "9000")
    args = [
        "serve", "--corpus", str(tmp_path), "--host", "0.0.0.0", "--root-path", "/ludao",
        "--cors-origins", "https://a.example, https://b.example:8443", "--concurrency", "2",
        "--max-queue", "8", "--watch", "1.5", "--upload-dir", str(tmp_path / "up"),
        "--username", "staff", "--password", "pw", "--forwarded-allow-ips", "10.0.0.1",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert served["s"].corpus == (str(tmp_path),)
    assert served["v"] == ServeSettings(
        host="0.0.0.0", port=9000, root_path="/ludao",
        cors_origins=("https://a.example", "https://b.example:8443"), concurrency=2,
        max_queue=8, watch=1.5, upload_dir=str(tmp_path / "up"), admin_token="from-env",
        username="staff", password="pw", forwarded_allow_ips="10.0.0.1",
    )  # fmt: skip
    help_text = CliRunner().invoke(cli, ["serve", "--help"]).output
    for field in fields(ServeSettings):
        assert "--" + field.name.replace("_", "-") in help_text
        assert f"LUDAO_{field.name.upper()}" in help_text.replace("\n", "").replace(" ", "")
    half = CliRunner().invoke(cli, ["serve", "--username", "staff"])
    assert half.exit_code == 2 and "LUDAO_PASSWORD" in half.output


def test_building_the_app_calls_no_outside_server(tmp_path, monkeypatch):
    """Gradio's telemetry (the app's layout to api.gradio.app) and its PyPI version check run
    when a Blocks is made with analytics on, the default; an intranet server must not call out."""
    import httpx
    from fastapi.testclient import TestClient
    from gradio import analytics

    monkeypatch.delenv("GRADIO_ANALYTICS_ENABLED", raising=False)
    outside: list[str] = []
    monkeypatch.setattr(analytics, "version_check", lambda: outside.append("version check"))
    monkeypatch.setattr(
        analytics, "_do_analytics_request", lambda topic, data: outside.append(topic)
    )
    real_get = httpx.get

    def get(url, *args, **kwargs):
        outside.append(str(url))
        return real_get(url, *args, **kwargs)

    monkeypatch.setattr(httpx, "get", get)
    # The admin page's Blocks is made here too (admin_token), not on its first visit.
    app = ui.create_app(FakePipeline(), feedback_path=tmp_path / "f.jsonl", admin_token="t")
    with TestClient(app) as c:
        assert c.get("/").status_code == 200
    time.sleep(0.2)  # the version check runs in a thread
    assert outside == []


def test_the_server_computes_on_the_pipelines_compute_thread(tmp_path, monkeypatch):
    """``ludao serve`` (and each Ray replica) builds its pipeline with ``compute_thread``, so
    questions from its many request threads keep one OpenMP team (``Pipeline.compute_thread``)."""
    from qa.config import ServeSettings, Settings
    from qa.pipeline import Pipeline

    asked_with: list[dict] = []

    def from_settings(cls, settings, **options):
        asked_with.append(options)
        return FakePipeline()

    monkeypatch.setattr(Pipeline, "from_settings", classmethod(from_settings))
    (tmp_path / "doc.txt").write_text("鹭岛是厦门的别称。", encoding="utf-8")
    app = ui.build_server_app(Settings(corpus=(str(tmp_path),)), ServeSettings())
    assert asked_with and all(options.get("compute_thread") is True for options in asked_with)
    assert app is not None
