"""Question in, cited answers out: validation, limits and timings of ``Pipeline.ask``."""

from __future__ import annotations

import unicodedata

import pytest
from conftest import FakeEncoder

from qa.errors import QuestionError
from qa.pipeline import Pipeline, clean_question
from qa.readers import SentenceReader
from qa.readers.base import Reading
from qa.retrieval import Retriever
from qa.schema import Response


@pytest.fixture
def pipeline(passages) -> Pipeline:
    retriever = Retriever(FakeEncoder(), passages).build()
    return Pipeline(retriever=retriever, reader=SentenceReader(), description={"corpus": ["x"]})


class SpyReader:
    """Records what the pipeline hands the reader."""

    name = "spy"

    def __init__(self) -> None:
        self.calls: list[tuple[str, list, int]] = []

    def read(self, question, passages, top_k=3) -> Reading:
        self.calls.append((question, list(passages), top_k))
        return Reading(answers=[], no_answer=True)


def test_ask_answers_with_a_citation(pipeline: Pipeline) -> None:
    response = pipeline.ask("工作满十年的员工可以休假几天？")
    assert isinstance(response, Response)
    assert not response.no_answer
    best = response.answers[0]
    assert best.passage.doc_id == "hr"
    assert best.passage.id in {h.passage.id for h in response.hits}
    assert best.passage.text[best.span.start : best.span.end] == best.text
    assert response.reader == "sentence"
    assert response.question == "工作满十年的员工可以休假几天？"


def test_ask_reports_hits_and_timings(pipeline: Pipeline) -> None:
    response = pipeline.ask("公司的营业收入是多少？", top_k=3)
    assert len(response.hits) == 3
    scores = [h.score for h in response.hits]
    assert scores == sorted(scores, reverse=True)
    assert response.hits[0].passage.doc_id == "report"
    timings = response.timings_ms
    assert set(timings) == {"retrieve", "read", "total"}
    assert all(v >= 0 for v in timings.values())
    assert timings["total"] == pytest.approx(timings["retrieve"] + timings["read"], abs=0.01)


def test_reader_gets_the_cleaned_question_and_the_hits(passages) -> None:
    spy = SpyReader()
    retriever = Retriever(FakeEncoder(), passages).build()
    pipeline = Pipeline(retriever=retriever, reader=spy, top_k=4, reader_top_k=2)
    response = pipeline.ask("  信息中心\x00负责什么？\n")
    question, given, top_k = spy.calls[0]
    assert question == response.question == "信息中心 负责什么？"
    assert given == [h.passage for h in response.hits] and len(given) == 4
    assert top_k == 2
    assert response.no_answer and response.reader == "spy"
    assert pipeline.info().to_dict() == {"reader": "spy"}


@pytest.mark.parametrize(
    "question",
    ["", "   ", "\n\t\u3000", "？？！…", "。，、；", "\x00\x01\x7f", None, 42, b"bytes", ["q"]],
)
def test_questions_that_cannot_be_asked(pipeline: Pipeline, question: object) -> None:
    with pytest.raises(QuestionError):
        pipeline.ask(question)  # type: ignore[arg-type]


def test_question_too_long(pipeline: Pipeline) -> None:
    with pytest.raises(QuestionError, match="limit is 500"):
        pipeline.ask("问" * 100_000)
    short = Pipeline(retriever=pipeline.retriever, reader=SentenceReader(), max_question_chars=10)
    short.ask("员工可以休假几天？")  # 9 characters pass
    with pytest.raises(QuestionError, match="limit is 10"):
        short.ask("员工每年可以休假几天？")


def test_control_characters_are_removed() -> None:
    raw = "员工\x00可以\u200b休假\x1b几天？\r\n"
    cleaned = clean_question(raw, max_chars=100)
    assert not any(unicodedata.category(ch).startswith("C") for ch in cleaned)
    assert cleaned.replace(" ", "") == "员工可以休假几天？"
    assert clean_question("  What time?  ", max_chars=100) == "What time?"


@pytest.mark.parametrize("top_k", [0, -1, 51])
def test_top_k_out_of_bounds(pipeline: Pipeline, top_k: int) -> None:
    with pytest.raises(QuestionError, match="top_k"):
        pipeline.ask("员工可以休假几天？", top_k=top_k)


@pytest.mark.parametrize("top_k", [1, 5, 50])
def test_top_k_within_bounds(pipeline: Pipeline, passages, top_k: int) -> None:
    assert len(pipeline.ask("员工可以休假几天？", top_k=top_k).hits) == min(top_k, len(passages))


def test_info_names_the_reader(pipeline: Pipeline) -> None:
    assert pipeline.info().to_dict() == {"corpus": ["x"], "reader": "sentence"}


def test_response_json_contract(pipeline: Pipeline) -> None:
    data = pipeline.ask("公司的营业收入是多少？").to_dict()
    assert {"question", "answers", "no_answer", "passages", "reader", "timings_ms"} <= set(data)
    for answer in data["answers"]:
        assert {"text", "score", "doc", "passage_id", "start", "end"} <= set(answer)
    for passage in data["passages"]:
        assert {"id", "doc", "title", "text", "score"} <= set(passage)


@pytest.mark.slow
@pytest.mark.integration
def test_shipped_reader_answers_the_issue_question(ludao_home) -> None:
    """The default corpus, e5 and the shipped reader answer the question of the issue."""
    from conftest import REAL_LUDAO_HOME

    from qa.config import DEFAULT_READER, Settings

    if not (DEFAULT_READER / "reader.json").is_file():
        pytest.skip(f"no shipped reader at {DEFAULT_READER} yet (models/reader-zh/reader.json)")
    ludao_home.mkdir(parents=True, exist_ok=True)
    (REAL_LUDAO_HOME / "models").mkdir(parents=True, exist_ok=True)
    (ludao_home / "models").symlink_to(REAL_LUDAO_HOME / "models")  # convert e5 only once
    response = Pipeline.from_settings(Settings.load()).ask("2024年厦门全社会研发投入强度是多少？")
    assert not response.no_answer
    best = response.answers[0]
    assert "3.46%" in best.text
    assert "3.46%" in best.passage.text
    assert best.passage.text[best.span.start : best.span.end] == best.text
    assert best.passage.id in {h.passage.id for h in response.hits}


def _settings_with_reader(tmp_path, monkeypatch, reader: str):
    from types import SimpleNamespace

    from qa.config import Settings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "plan.txt").write_text("公司2023年实现营业收入448.53亿元，同比增长3.46%。", "utf-8")
    where = SimpleNamespace(index_dir=tmp_path / "index", encoder=FakeEncoder())
    monkeypatch.setattr("qa.index.locate_index", lambda settings: where)
    return Settings(corpus=(str(corpus),), reader=reader, home=str(tmp_path / "home"))


def test_a_preloaded_reader_is_loaded_before_the_first_question(
    tmp_path, monkeypatch, qa_model_dir
) -> None:
    import time

    settings = _settings_with_reader(tmp_path, monkeypatch, str(qa_model_dir))
    lazy = Pipeline.from_settings(settings)
    preloaded = Pipeline.from_settings(settings, preload_reader=True)
    deadline = time.monotonic() + 60
    while preloaded.reader._model is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert preloaded.reader._model is not None  # loaded with no question asked
    assert lazy.reader._model is None  # without preloading, the first question loads it
    question = "收入是多少？"
    assert preloaded.ask(question).answers == lazy.ask(question).answers


def test_a_reader_that_fails_to_preload_fails_the_first_question(tmp_path, monkeypatch) -> None:
    from qa.errors import ModelLoadError

    broken = tmp_path / "broken-reader"
    broken.mkdir()
    (broken / "reader.json").write_text("{not json")
    settings = _settings_with_reader(tmp_path, monkeypatch, str(broken))
    pipeline = Pipeline.from_settings(settings, preload_reader=True)  # does not raise here
    with pytest.raises(ModelLoadError):
        pipeline.ask("收入是多少？")
