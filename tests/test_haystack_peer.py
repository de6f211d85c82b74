"""The side-by-side benchmark's own logic, without Haystack: scoring, ratios, protocol, page."""

from __future__ import annotations

import io
import json

import pytest

from benchmarks.haystack_peer import runner
from benchmarks.haystack_peer.__main__ import _check_args, _parser
from benchmarks.haystack_peer.compare import Answered, latency_ratio, recall_at_5, score
from benchmarks.haystack_peer.report import render_markdown
from qa.eval.question_files import QAExample

TEXTS = {"a": "厦门 的 GDP 增长 3.46%。", "b": "鹭岛是厦门的别称。", "c": "无关的段落。"}
EXAMPLES = [
    QAExample(id="1", question="厦门GDP增长多少？", answers=("3.46%",)),
    QAExample(id="2", question="厦门的别称是什么？", answers=("鹭岛",)),
    QAExample(id="3", question="明年会下雨吗？", answers=()),
]


def _answered(qid: str, retrieved: list[str], span: str, prediction: str, ms: float) -> Answered:
    return Answered(
        id=qid, latency_ms=ms, retrieved=retrieved, best_span=span, prediction=prediction
    )


def test_recall_counts_answerable_questions_with_whitespace_removed() -> None:
    found = [["c", "a"], ["c"], ["b"]]
    assert recall_at_5(EXAMPLES, found, TEXTS) == pytest.approx(0.5)
    assert recall_at_5(EXAMPLES[2:], [["a"]], TEXTS) is None


def test_score_honours_no_answer_and_keeps_best_span() -> None:
    answered = [
        _answered("1", ["a"], "3.46%", "3.46%", 10),
        _answered("2", ["b"], "鹭岛", "", 20),  # declined, but the span was right
        _answered("3", ["c"], "雨", "", 30),  # declined, correctly
    ]
    scores = score(EXAMPLES, answered, TEXTS, index_build_s=1.234, models_load_s=0.5)
    assert scores.exact_match == pytest.approx(200 / 3, abs=0.01)
    assert scores.exact_match_best_span == pytest.approx(200 / 3, abs=0.01)
    assert scores.f1_best_span < 100
    assert scores.recall_at_5 == 100.0
    assert scores.no_answer_count == 2
    assert scores.latency_ms == {"p50": 20.0, "p95": 29.0, "mean": 20.0}
    assert scores.index_build_s == 1.23


def test_latency_ratio_is_haystack_over_ludao() -> None:
    ludao = [_answered(str(i), [], "", "", ms) for i, ms in enumerate([10, 20, 30])]
    haystack = [_answered(str(i), [], "", "", ms) for i, ms in enumerate([40, 40, 30])]
    ratio = latency_ratio(ludao, haystack)
    assert ratio["p50"] == 2.0
    assert ratio["mean"] == pytest.approx(110 / 60, abs=0.01)
    assert ratio["median_of_per_question"] == 2.0


def test_runner_protocol_answers_each_line_and_reports_errors() -> None:
    def ask(pipeline: object, question: str) -> dict:
        if not question:
            raise ValueError("empty")
        return {"latency_ms": 1.0, "retrieved": ["a"], "answers": [{"text": question}]}

    built = runner.Built(pipeline=None, variants={"bm25_only": lambda q: [q]}, ready={"x": 1})
    requests = io.StringIO(
        "\n".join(
            json.dumps(r)
            for r in (
                {"op": "ask", "id": "1", "question": "问"},
                {"op": "ask", "id": "2", "question": ""},
                {"op": "retrieve", "id": "3", "variant": "bm25_only", "question": "b"},
                {"op": "quit"},
                {"op": "ask", "id": "never", "question": "问"},
            )
        )
    )
    replies = io.StringIO()
    original = runner.ask
    runner.ask = ask  # type: ignore[assignment]
    try:
        runner.serve(built, requests, replies)
    finally:
        runner.ask = original  # type: ignore[assignment]
    lines = [json.loads(line) for line in replies.getvalue().splitlines()]
    assert lines[0] == {"x": 1}
    assert lines[1]["answers"] == [{"text": "问"}]
    assert lines[2]["id"] == "2" and "ValueError" in lines[2]["error"]
    assert lines[3] == {"id": "3", "retrieved": ["b"]}
    assert len(lines) == 4


def test_bad_arguments_get_a_clear_error(tmp_path) -> None:
    args = _parser().parse_args(["--cmrc", str(tmp_path / "missing.json"), "--skip-seed"])
    with pytest.raises(ValueError, match="CMRC file not found"):
        _check_args(args)
    with pytest.raises(ValueError, match="nothing to run"):
        _check_args(_parser().parse_args(["--skip-seed", "--skip-cmrc"]))


def test_markdown_page_shows_the_ratio_and_every_system() -> None:
    scores = {
        "latency_ms": {"p50": 1.0, "p95": 2.0, "mean": 1.5},
        "recall_at_5": 90.0,
        "exact_match": 40.0,
        "f1": 60.0,
        "exact_match_best_span": 41.0,
        "f1_best_span": 61.0,
        "no_answer_count": 0,
        "index_build_s": 3.0,
        "models_load_s": 1.0,
    }
    report = {
        "headline": "H",
        "corpora": [
            {
                "name": "toy",
                "passages": 3,
                "questions": 2,
                "answerable": 2,
                "systems": {"ludao": scores, "haystack": {**scores, "f1": 55.5}},
                "latency_ratio": {"p50": 4.2, "mean": 4.0, "median_of_per_question": 4.1},
                "retrieval_variants": {"haystack": {"bm25_only_legacy_regex": 12.5}},
                "load_average": {"start": [1, 1, 1], "end": [1, 1, 1]},
            }
        ],
        "notes": ["n1"],
        "versions": {"Haystack venv": {"haystack-ai": "9"}},
        "machine": {"cpus": 2, "processor": "x", "torch_threads": 2, "python": "3"},
        "command": "cmd",
        "started": "t",
        "wall_s": 1,
    }
    page = render_markdown(report)
    assert "4.2× at p50" in page
    assert "| Ludao | 1.0 |" in page and "| 55.5 |" in page
    assert "2.x regex" in page and "12.5" in page
    assert "haystack-ai 9" in page
