"""Follow-ups over the web: ``history`` in ``POST /api/ask``, the Gradio chat's own turns, the
``gradio_client`` ``ask`` function, and the "理解为 …" line. A fake pipeline answers with the
real resolver, so no model is loaded."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

pytest.importorskip("gradio")
pytest.importorskip("fastapi")

from test_ui import TEXT, FakePipeline, serve

import ui
from qa.conversation import FollowUpResolver, Turn
from qa.schema import Answer, Response, Span

FIRST = "2024年厦门全社会研发投入强度是多少？"
FOLLOWUP = "那2020年呢？"
REBUILT = "2020年厦门全社会研发投入强度是多少？"


class ConversationPipeline(FakePipeline):
    """Resolves follow-ups like ``Pipeline.ask`` and answers the figure of the asked year."""

    def __init__(self) -> None:
        super().__init__()
        self.resolver = FollowUpResolver(TEXT)
        self.histories: list[list[Turn]] = []

    def ask(self, question: str, top_k: int | None = None, history=None) -> Response:
        self.histories.append(list(history or []))
        resolution = self.resolver.resolve(question, history or [])
        response = super().ask(resolution.question, top_k)
        if "2020年" in resolution.question and response.answers:
            best = response.answers[0]
            start = TEXT.index("3.08%")
            best = Answer("3.08%", 0.88, best.passage, Span(start, start + 5))
            response = replace(response, answers=[best])
        return replace(response, question=question, interpreted_as=resolution.interpreted_as)


@pytest.fixture
def pipeline() -> ConversationPipeline:
    return ConversationPipeline()


@pytest.fixture
def client(pipeline, tmp_path):
    from fastapi.testclient import TestClient

    with TestClient(ui.create_app(pipeline, feedback_path=tmp_path / "f.jsonl")) as test_client:
        yield test_client


def test_api_answers_a_followup_from_its_history(client, pipeline):
    r = client.post(
        "/api/ask",
        json={"question": FOLLOWUP, "history": [{"question": FIRST, "answer": "3.46%"}]},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["question"] == FOLLOWUP and body["interpreted_as"] == REBUILT
    assert body["answers"][0]["text"] == "3.08%"
    assert pipeline.histories[-1] == [Turn(FIRST, "3.46%")]


def test_api_without_history_is_unchanged(client, pipeline):
    body = client.post("/api/ask", json={"question": FIRST}).json()
    assert body["interpreted_as"] is None and body["answers"][0]["text"] == "3.46%"
    assert client.post("/api/ask", json={"question": FIRST, "history": []}).status_code == 200


@pytest.mark.parametrize(
    "history",
    [
        "earlier question",
        [FIRST],  # turns are objects
        [{"answer": "3.46%"}],
        [{"question": ""}],
        [{"question": FIRST, "who": "me"}],
        [{"question": "问" * 501}],
        [{"question": FIRST, "answer": "答" * 2001}],
        [{"question": FIRST}] * 21,
    ],
)
def test_api_refuses_bad_history(client, history):
    r = client.post("/api/ask", json={"question": FOLLOWUP, "history": history})
    assert r.status_code == 422 and "detail" in r.json()


def _chat_fn(demo):
    return next(f.fn for f in demo.fns.values() if f.api_name == "ask")


def test_chat_sends_its_own_turns_and_shows_the_reading(pipeline):
    respond = _chat_fn(ui.build_demo(pipeline, examples=[]))
    _, history, responses, raw = list(respond(FIRST, [], {}))[-1]
    assert raw["interpreted_as"] is None and "理解为" not in history[-1]["content"]
    _, history, responses, raw = list(respond(FOLLOWUP, history, responses))[-1]
    assert pipeline.histories[-1] == [Turn(FIRST, "3.46%")]
    assert raw["interpreted_as"] == REBUILT and raw["answers"][0]["text"] == "3.08%"
    reply = history[-1]["content"]
    assert f"理解为 Understood as：{REBUILT}" in reply
    assert reply.index("3.08%") < reply.index("理解为")


def test_the_reading_is_escaped(pipeline):
    respond = _chat_fn(ui.build_demo(pipeline, examples=[]))
    first = "<img src=x onerror=alert(1)>的研发投入强度是多少？"
    _, history, responses, _ = list(respond(first, [], {}))[-1]
    _, history, _, raw = list(respond("那2020年呢？", history, responses))[-1]
    assert raw["interpreted_as"] and "<img" in raw["interpreted_as"]
    assert "<img" not in history[-1]["content"] and "&lt;img" in history[-1]["content"]


def test_gradio_client_ask_takes_the_history(tmp_path, pipeline):
    gradio_client = pytest.importorskip("gradio_client")
    app = ui.create_app(pipeline, feedback_path=tmp_path / "f.jsonl")
    with serve(app) as url:
        client = gradio_client.Client(url, verbose=False)
        _, history, raw = client.predict(FIRST, [], api_name="/ask")
        assert raw["interpreted_as"] is None
        _, history, raw = client.predict(FOLLOWUP, history, api_name="/ask")
        # A script may also send plain-text turns it kept itself (Gradio's message shape).
        plain = [
            {"role": "user", "content": [{"type": "text", "text": FIRST}]},
            {"role": "assistant", "content": [{"type": "text", "text": "3.46%"}]},
        ]
        _, _, raw_plain = client.predict(FOLLOWUP, plain, api_name="/ask")
    assert raw["interpreted_as"] == REBUILT and raw["answers"][0]["text"] == "3.08%"
    assert "理解为" in json.dumps(history[-1], ensure_ascii=False)
    assert raw_plain["interpreted_as"] == REBUILT
    assert pipeline.histories[-1] == [Turn(FIRST, "3.46%")]
