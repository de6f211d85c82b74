"""The baseline reader: the sentence that covers most of the question, weighted by rarity."""

from __future__ import annotations

import pytest
from conftest import make_passage

from qa.readers import SentenceReader

REPORT = make_passage(
    "report",
    "公司成立于1998年，总部位于厦门。公司2023年实现营业收入448.53亿元。\n"
    "公司员工共有三千人！公司的研发中心设在上海；公司连续三年获评优秀企业。",
)
HR = make_passage("hr", "员工每年享有带薪年休假，工作满十年的员工可以休假十天。")


def test_picks_the_sentence_holding_the_question_terms() -> None:
    reading = SentenceReader().read("公司2023年营业收入是多少？", [HR, REPORT])
    best = reading.answers[0]
    assert not reading.no_answer
    assert best.text == "公司2023年实现营业收入448.53亿元。"
    assert best.passage is REPORT
    assert REPORT.text[best.span.start : best.span.end] == best.text


def test_rare_terms_outweigh_common_ones() -> None:
    # every sentence of REPORT says 公司; only one says 研发
    reading = SentenceReader().read("公司的研发中心在哪里？", [REPORT])
    assert reading.answers[0].text == "公司的研发中心设在上海；"


def test_answers_are_whole_stripped_sentences_best_first() -> None:
    reading = SentenceReader().read("公司员工有多少人？", [REPORT, HR], top_k=4)
    assert 1 < len(reading.answers) <= 4
    scores = [a.score for a in reading.answers]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < s <= 1 for s in scores)
    for a in reading.answers:
        assert a.text == a.text.strip() and "\n" not in a.text
        assert a.passage.text[a.span.start : a.span.end] == a.text
    assert reading.answers[0].text == "公司员工共有三千人！"


def test_declines_an_unrelated_question() -> None:
    reading = SentenceReader().read("火星上的天气怎么样？", [REPORT, HR])
    assert reading.no_answer


def test_declines_when_coverage_is_under_the_bar() -> None:
    question = "公司2023年营业收入和火星探测预算分别是多少？"
    assert not SentenceReader(min_coverage=0.2).read(question, [REPORT]).no_answer
    strict = SentenceReader(min_coverage=0.9).read(question, [REPORT])
    assert strict.no_answer and strict.answers  # the closest sentence is still shown


@pytest.mark.parametrize("question", ["的了吗？", "？？？"])
def test_question_without_search_terms_declines(question: str) -> None:
    reading = SentenceReader().read(question, [REPORT])
    assert reading.no_answer and reading.answers == []


def test_no_passages_no_answer() -> None:
    assert SentenceReader().read("公司营业收入？", []).no_answer
