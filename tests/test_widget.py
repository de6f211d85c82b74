"""qa.web.widget over HTTP: the bubble's script, the compact chat page and its two JSON calls.

Runs on ``test_ui.FakePipeline``; the browser side is in ``test_widget_browser.py``.
"""

from __future__ import annotations

import base64
import json
import re

import pytest

pytest.importorskip("gradio")
pytest.importorskip("fastapi")

from fastapi.testclient import TestClient
from test_conversation_web import FIRST, FOLLOWUP, REBUILT, ConversationPipeline
from test_ui import XSS, FakePipeline

import ui
from qa.conversation import MAX_HISTORY_TURNS, Turn
from qa.web import widget

QUESTION = "2024年厦门全社会研发投入强度是多少？"


@pytest.fixture(autouse=True)
def _ludao_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LUDAO_HOME", str(tmp_path / "home"))


@pytest.fixture
def client(tmp_path):
    app = ui.create_app(FakePipeline(), feedback_path=tmp_path / "feedback.jsonl")
    with TestClient(app) as c:
        yield c


def test_widget_js_is_small_javascript_that_reads_its_own_src(client):
    r = client.get("/widget.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert len(r.content) < 10 * 1024
    source = r.text
    assert "document.currentScript" in source
    # The server address must never come from the host page's URL or query string.
    assert "location" not in source and "URLSearchParams" not in source
    assert "attachShadow" in source


def test_panel_page_has_labelled_log_box_and_a_strict_policy(client):
    r = client.get("/widget")
    assert r.status_code == 200
    page = r.text
    assert '<html lang="zh-CN">' in page
    assert 'role="log"' in page and 'aria-live="polite"' in page
    assert '<label for="ludao-question"' in page
    assert 'src="widget/panel.js"' in page and 'href="widget/panel.css"' in page  # relative
    # The page's own policy is a <meta>; the server's header (frame-ancestors) still applies.
    assert f'<meta http-equiv="Content-Security-Policy" content="{widget.CSP}">' in page
    assert "script-src 'self'" in widget.CSP and "default-src 'none'" in widget.CSP
    assert "frame-ancestors 'self'" in r.headers["content-security-policy"]
    english = client.get("/widget", params={"lang": "en"}).text
    assert '<html lang="en">' in english and "Was this answer helpful?" in english
    assert client.get("/widget/panel.js").status_code == 200
    assert client.get("/widget/panel.css").headers["content-type"].startswith("text/css")


def test_panel_page_refuses_an_unknown_language(client):
    r = client.get("/widget", params={"lang": "<script>"})
    assert r.status_code == 422
    assert "<script>" not in r.headers.get("content-type", "")


def test_widget_ask_returns_the_full_chats_reply_html(client):
    r = client.post("/widget/ask", json={"question": QUESTION})
    assert r.status_code == 200
    body = r.json()
    assert body["answer"] == "3.46%" and body["no_answer"] is False
    assert "<mark>3.46%</mark>" in body["html"]
    assert "置信度 Confidence" in body["html"]
    assert body["passage_ids"][0] == "d1:0:aaaa"


def test_widget_answers_a_followup_from_the_panels_history(tmp_path):
    pipeline = ConversationPipeline()
    app = ui.create_app(pipeline, feedback_path=tmp_path / "f.jsonl")
    with TestClient(app) as c:
        first = c.post("/widget/ask", json={"question": FIRST}).json()
        assert first["interpreted_as"] is None and "ludao-interpreted" not in first["html"]
        history = [{"question": FIRST, "answer": first["answer"]}]
        r = c.post("/widget/ask", json={"question": FOLLOWUP, "history": history})
    assert r.status_code == 200
    body = r.json()
    assert body["interpreted_as"] == REBUILT and body["answer"] == "3.08%"
    assert (
        f'<div class="ludao-meta ludao-interpreted">理解为 Understood as：{REBUILT}</div>'
        in (body["html"])
    )
    assert pipeline.histories == [[], [Turn(FIRST, "3.46%")]]


def test_widget_without_history_calls_an_old_pipeline_as_before(client):
    # FakePipeline.ask has no ``history`` parameter: an empty history must not be passed on.
    r = client.post("/widget/ask", json={"question": QUESTION, "history": []})
    assert r.status_code == 200 and r.json()["interpreted_as"] is None


class InterpretingPipeline(FakePipeline):
    """Says it understood the question as ``XSS``: the rebuilt question holds user text."""

    def ask(self, question, top_k=None, history=None):
        import dataclasses

        return dataclasses.replace(super().ask(question, top_k), interpreted_as=XSS)


def test_widget_escapes_the_understood_as_line(tmp_path):
    app = ui.create_app(InterpretingPipeline(), feedback_path=tmp_path / "f.jsonl")
    with TestClient(app) as c:
        r = c.post("/widget/ask", json={"question": FOLLOWUP, "history": [{"question": FIRST}]})
    html = r.json()["html"]
    assert r.json()["interpreted_as"] == XSS
    assert "<script" not in html and "<img" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize(
    "history",
    [
        "earlier question",
        [{"question": ""}],
        [{"question": "问" * 501}],
        [{"question": FIRST, "answer": "答" * 2001}],
        [{"question": FIRST, "extra": 1}],
        [{"question": FIRST, "answer": 3}],
        [{"question": FIRST}] * (MAX_HISTORY_TURNS + 1),
    ],
)
def test_widget_refuses_a_bad_history(client, history):
    r = client.post("/widget/ask", json={"question": FOLLOWUP, "history": history})
    assert r.status_code == 422 and "detail" in r.json()


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"question": "  "}, 400),
        ({"question": "问" * 501}, 400),
        ({}, 422),
        ({"question": 3}, 422),
        ({"question": "问", "top_k": 3, "extra": 1}, 422),
    ],
)
def test_widget_ask_rejects_bad_questions_with_a_reason(client, payload, status):
    r = client.post("/widget/ask", json=payload)
    assert r.status_code == status
    assert "detail" in r.json()


def test_widget_ask_refuses_non_json_bodies(client):
    # A cross-site <form> can only send form or text bodies: those never reach the pipeline.
    r = client.post("/widget/ask", content="question=x", headers={"content-type": "text/plain"})
    assert r.status_code == 422
    r = client.post("/widget/ask", data={"question": QUESTION})
    assert r.status_code == 422


def test_widget_ask_escapes_document_text(tmp_path):
    app = ui.create_app(FakePipeline(text=XSS), feedback_path=tmp_path / "f.jsonl")
    with TestClient(app) as c:
        html = c.post("/widget/ask", json={"question": QUESTION}).json()["html"]
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html


def test_widget_feedback_is_stored_with_its_source(client, tmp_path):
    r = client.post(
        "/widget/feedback",
        json={"question": QUESTION, "rating": "dislike", "answer": "3.46%",
              "passage_ids": ["d1:0:aaaa"]},
    )  # fmt: skip
    assert r.status_code == 201
    line = (tmp_path / "feedback.jsonl").read_text(encoding="utf-8").splitlines()[-1]
    record = json.loads(line)
    assert record["source"] == "widget" and record["rating"] == "dislike"
    assert record["user"] == "anonymous"
    assert record["passage_ids"] == ["d1:0:aaaa"]
    assert record["embedding_model"] == "multilingual-e5-small"
    bad = client.post("/widget/feedback", json={"question": QUESTION, "rating": "meh"})
    assert bad.status_code == 422


def test_login_guards_the_panel_calls_but_not_the_script(tmp_path):
    app = ui.create_app(FakePipeline(), auth=("staff", "s3cret"), feedback_path=tmp_path / "f")
    with TestClient(app) as c:
        assert c.get("/widget.js").status_code == 200
        assert 'id="ludao-login"' in c.get("/widget").text
        assert c.post("/widget/ask", json={"question": QUESTION}).status_code == 401
        rating = {"question": QUESTION, "rating": "like"}
        assert c.post("/widget/feedback", json=rating).status_code == 401
        good = {"authorization": "Basic " + base64.b64encode(b"staff:s3cret").decode()}
        assert c.post("/widget/ask", json={"question": QUESTION}, headers=good).status_code == 200
        # The chat's own login session (Gradio's cookie) is enough for the panel.
        assert c.post("/login", data={"username": "staff", "password": "wrong"}).status_code == 400
        assert c.post("/widget/ask", json={"question": QUESTION}).status_code == 401
        assert c.post("/login", data={"username": "staff", "password": "s3cret"}).status_code == 200
        assert 'id="ludao-form"' in c.get("/widget").text
        assert c.post("/widget/ask", json={"question": QUESTION}).status_code == 200
        assert c.post("/widget/feedback", json=rating).status_code == 201


def test_widget_works_under_a_root_path(tmp_path):
    app = ui.create_app(FakePipeline(), root_path="/ludao", feedback_path=tmp_path / "f")
    with TestClient(app) as c:
        for prefix in ("", "/ludao"):  # the proxy strips the prefix, or forwards it
            assert c.get(f"{prefix}/widget.js").status_code == 200
            assert c.get(f"{prefix}/widget").status_code == 200
            assert c.get(f"{prefix}/widget/panel.js").status_code == 200
            r = c.post(f"{prefix}/widget/ask", json={"question": QUESTION})
            assert r.json()["answer"] == "3.46%"


def test_page_labels_are_escaped_and_named_for_dataset():
    page = widget.render_widget_page("en", login=False)
    assert 'data-login-failed="Wrong user name or password."' in page
    for value in re.findall(r'data-[a-z-]+="([^"]*)"', page):
        assert "<" not in value
    assert 'id="ludao-login"' in widget.render_widget_page("zh", login=True)


def test_pages_on_an_allowed_origin_may_frame_the_panel(tmp_path):
    portal = "https://portal.intranet.example"
    app = ui.create_app(FakePipeline(), cors_origins=[portal], feedback_path=tmp_path / "f")
    with TestClient(app) as c:
        policy = c.get("/widget").headers["content-security-policy"]
    assert f"frame-ancestors 'self' {portal}" in policy


class GroupsPipeline(FakePipeline):
    """Records the groups each question was asked with (``Pipeline.ask(groups=...)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.groups: list[frozenset[str] | None] = []

    def ask(self, question, top_k=None, *, groups=None):
        self.groups.append(groups)
        return super().ask(question, top_k)


def test_widget_asks_as_the_logged_in_user_with_their_groups(tmp_path):
    from qa.web.identity import Identity, Logins

    pipeline = GroupsPipeline()
    identity = Identity(logins=Logins({"li": ("pw", frozenset({"hr"}))}), admin_token="t")
    app = ui.create_app(pipeline, identity=identity, feedback_path=tmp_path / "f.jsonl")
    with TestClient(app) as c:
        assert c.post("/widget/ask", json={"question": QUESTION}).status_code == 401
        assert c.post("/login", data={"username": "li", "password": "pw"}).status_code == 200
        assert c.post("/widget/ask", json={"question": QUESTION}).status_code == 200
        rating = {"question": QUESTION, "rating": "like"}
        assert c.post("/widget/feedback", json=rating).status_code == 201
    assert pipeline.groups and "hr" in pipeline.groups[-1]
    record = json.loads((tmp_path / "f.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert record["user"] == "li" and record["source"] == "widget"
