"""``qa.eval.runner``: scores of a question set, worked by hand on four questions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_passage

from qa.eval.question_files import QAExample
from qa.eval.runner import evaluate, gold_passage_asker, write_predictions
from qa.readers import SentenceReader
from qa.readers.base import Reading
from qa.schema import Answer, Hit, Span

REVENUE = make_passage("report", "公司2023年实现营业收入448.53亿元。")
CENTRE = make_passage("it", "数字化转型工作由信息中心负责推进。")
LEAVE = make_passage("hr", "工作满十年的员工可以休假十天。")
OTHER = make_passage("misc", "食堂每天中午十一点半开饭。")

EXAMPLES = [
    QAExample("q1", "营业收入是多少？", ("448.53亿元",)),
    QAExample("q2", "谁负责数字化转型？", ("信息中心",)),
    QAExample("q3", "公司有几艘船？", ()),
    QAExample("q4", "工作满十年休假几天？", ("十天",)),
]


def answer(text: str, passage, score: float = 0.9) -> Answer:
    start = passage.text.find(text)
    return Answer(text=text, score=score, passage=passage, span=Span(start, start + len(text)))


# per question: the hits, the best span, and whether the reader declined
SCRIPT = {
    # right answer; the gold passage is the second hit → reciprocal rank 1/2
    "q1": ([OTHER, REVENUE], answer("448.53亿元", REVENUE), False),
    # right span but the reader declined: EM 0, forced EM 1; gold passage first
    "q2": ([CENTRE, OTHER], answer("信息中心", CENTRE, 0.2), True),
    # unanswerable and declined with nothing to show: right
    "q3": ([OTHER], None, True),
    # partly right ("十天" in "十天假期": F1 2/3); no hit holds the gold answer
    "q4": ([OTHER, CENTRE], Answer("十天假期", 0.7, LEAVE, Span(0, 4)), False),
}


def scripted(example: QAExample):
    passages, best, declined = SCRIPT[example.id]
    hits = [Hit(passage=p, score=1.0 / (i + 1)) for i, p in enumerate(passages)]
    return hits, Reading(answers=[best] if best else [], no_answer=declined)


def run(with_retrieval: bool = True):
    return evaluate(
        EXAMPLES,
        scripted,
        reader_name="scripted",
        embedding_model="fake",
        mode="test",
        with_retrieval=with_retrieval,
    )


def test_scores_worked_by_hand() -> None:
    report, _ = run()
    assert report.n == 4
    assert report.exact_match == pytest.approx((1 + 0 + 1 + 0) / 4)
    assert report.f1 == pytest.approx((1 + 0 + 1 + 2 / 3) / 4)
    assert report.exact_match_forced == pytest.approx((1 + 1 + 1 + 0) / 4)
    assert report.f1_forced == pytest.approx((1 + 1 + 1 + 2 / 3) / 4)
    assert report.no_answer_accuracy == pytest.approx(3 / 4)  # q2 declined an answerable one
    # recall over the three answerable questions: ranks 2, 1 and none
    assert report.recall_at_1 == pytest.approx(1 / 3)
    assert report.recall_at_5 == pytest.approx(2 / 3)
    assert report.mrr == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert report.latency_p95 >= report.latency_p50 >= 0


def test_report_dict_is_the_contract() -> None:
    data = run()[0].to_dict()
    assert {
        "n",
        "exact_match",
        "f1",
        "no_answer_accuracy",
        "recall@1",
        "recall@5",
        "mrr",
        "latency_ms",
        "reader",
        "embedding_model",
    } <= set(data)
    assert set(data["latency_ms"]) == {"p50", "p95"}
    assert data["exact_match"] == 50.0 and data["f1"] == pytest.approx(66.67)
    assert data["recall@1"] == pytest.approx(33.33) and data["mrr"] == 0.5
    assert (data["reader"], data["embedding_model"]) == ("scripted", "fake")


def test_without_retrieval_there_is_no_recall() -> None:
    report, _ = run(with_retrieval=False)
    assert report.recall_at_1 is report.recall_at_5 is report.mrr is None
    assert report.to_dict()["recall@1"] is None
    assert report.exact_match == pytest.approx(0.5)


def test_predictions_record_the_decision(tmp_path: Path) -> None:
    _, predictions = run()
    by_id = {p.id: p for p in predictions}
    assert by_id["q1"].prediction == "448.53亿元" and by_id["q1"].passage_id == REVENUE.id
    assert by_id["q2"].prediction == "" and by_id["q2"].best_span == "信息中心"
    assert by_id["q3"].passage_id is None and by_id["q3"].score == 0.0
    assert by_id["q1"].retrieved == [OTHER.id, REVENUE.id]
    path = tmp_path / "predictions.jsonl"
    write_predictions(path, predictions)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == ["q1", "q2", "q3", "q4"]
    for line in lines:
        assert {"id", "question", "prediction", "score", "passage_id", "no_answer"} <= set(line)
    assert lines[1]["no_answer"] is True and lines[1]["prediction"] == ""


def test_gold_passage_mode_reads_the_own_paragraph() -> None:
    examples = [
        QAExample("g1", "工作满十年休假几天？", ("十天",), context=LEAVE.text, title="员工手册"),
    ]
    report, predictions = evaluate(
        examples,
        gold_passage_asker(SentenceReader()),
        reader_name="sentence",
        embedding_model=None,
        mode="gold-passage",
        with_retrieval=False,
    )
    assert predictions[0].prediction == LEAVE.text
    assert predictions[0].passage_id == "gold:g1"
    assert report.f1 > 0 and report.exact_match == 0.0
    with pytest.raises(ValueError, match="no paragraph"):
        gold_passage_asker(SentenceReader())(QAExample("x", "问？", ("甲",)))


def test_the_question_language_picks_the_metric() -> None:
    """A Latin-only gold in a Chinese question set is scored like CMRC: '1998年' vs '1998'."""
    year = make_passage("y", "该公司成立于1998年。")
    examples = [
        QAExample("zh", "公司哪一年成立？", ("1998",)),
        QAExample("en", "When was it founded?", ("1998",)),
    ]

    def ask(example: QAExample):
        return [Hit(year, 1.0)], Reading(answers=[answer("1998年", year)], no_answer=False)

    report, _ = evaluate(
        examples, ask, reader_name="s", embedding_model=None, mode="t", with_retrieval=False
    )
    # zh: tokens 1998|年 vs 1998 → F1 2/3; en: one token "1998年" ≠ "1998" → 0
    assert report.f1 == pytest.approx((2 / 3 + 0) / 2)
