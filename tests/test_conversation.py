"""qa.conversation: the follow-up resolver on made-up conversations, history parsing, and the
pipeline answering (and caching) the rebuilt question."""

from __future__ import annotations

import pytest

from qa.conversation import (
    MAX_HISTORY_TURNS,
    FollowUpResolver,
    Turn,
    fill_answers,
    load_history_file,
    parse_history,
    turns_from_chat,
)
from qa.errors import QuestionError
from qa.pipeline import Pipeline
from qa.readers.base import Reading
from qa.schema import Answer, Hit, Passage, Response, Span

CORPUS = (
    "2023年杭州的旅客吞吐量为120万人次，2022年为98万人次，2021年为75万人次。"
    "成都的地铁里程是600公里，深圳的地铁里程是550公里。"
    "华晟电子成立于2009年，总部在苏州，总经理李明毕业于浙江大学，副总经理王芳负责研发。"
)


@pytest.fixture(scope="module")
def resolver() -> FollowUpResolver:
    return FollowUpResolver(CORPUS)


def understood(resolver: FollowUpResolver, question: str, *history: Turn | str) -> str | None:
    return resolver.resolve(question, list(history)).interpreted_as


@pytest.mark.parametrize(
    ("earlier", "followup", "expected"),
    [
        ("2023年杭州的旅客吞吐量是多少？", "那2022年呢？", "2022年杭州的旅客吞吐量是多少？"),
        ("杭州2023年的旅客吞吐量是多少？", "2021年的呢？", "杭州2021年的旅客吞吐量是多少？"),
        ("成都的地铁里程是多少？", "那深圳呢？", "深圳的地铁里程是多少？"),
        ("华晟电子的总经理是谁？", "那副总经理呢？", "华晟电子的副总经理是谁？"),
        ("华晟电子成立于哪一年？", "它的总经理是谁？", "华晟电子的总经理是谁？"),
        ("华晟电子成立于哪一年？", "该公司总部在哪里？", "华晟电子总部在哪里？"),
        ("华晟电子成立于哪一年？", "其总部在哪里？", "华晟电子的总部在哪里？"),
    ],
)
def test_followups_become_self_contained(resolver, earlier, followup, expected):
    assert understood(resolver, followup, earlier) == expected


def test_a_question_without_subject_carries_the_previous_topic(resolver):
    rebuilt = understood(resolver, "同比增长多少？", "2023年杭州的旅客吞吐量是多少？")
    assert rebuilt == "2023年杭州的旅客吞吐量同比增长多少？"


def test_he_points_at_the_previous_answer_when_it_asked_who(resolver):
    earlier = Turn("华晟电子的总经理是谁？", "李明")
    assert understood(resolver, "他毕业于哪所大学？", earlier) == "李明毕业于哪所大学？"
    # Without the answer, the previous subject is the best guess.
    assert (
        understood(resolver, "他毕业于哪所大学？", earlier.question) == "华晟电子毕业于哪所大学？"
    )


def test_chained_followups_keep_the_subject(resolver):
    history = ["2023年杭州的旅客吞吐量是多少？", "那2022年呢？"]
    assert understood(resolver, "那2021年呢？", *history) == "2021年杭州的旅客吞吐量是多少？"


@pytest.mark.parametrize(
    "question",
    [
        "深圳的地铁里程是多少？",
        "华晟电子的总部在哪里？",
        "2021年杭州的旅客吞吐量是多少？",
        "华晟电子的总经理是谁，他毕业于哪所大学？",  # the pronoun's antecedent is in the turn
        "李明毕业于哪所大学？",
        "哪家公司的副总经理负责研发？",
    ],
)
def test_questions_that_stand_alone_are_never_rewritten(resolver, question):
    assert understood(resolver, question, "2023年杭州的旅客吞吐量是多少？") is None
    assert understood(resolver, question) is None
    assert resolver.resolve(question, []).question == question


@pytest.mark.parametrize(
    ("earlier", "followup", "expected"),
    [
        ("What was the revenue of Orion Labs in 2021?", "And in 2022?",
         "What was the revenue of Orion Labs in 2022?"),
        ("When was Orion Labs founded?", "Who is its CEO?", "Who is Orion Labs's CEO?"),
        (Turn("Who founded Orion Labs?", "Mary Chen"), "Where did she study?",
         "Where did Mary Chen study?"),
        ("How long is the Chengdu metro?", "What about Shenzhen?",
         "How long is the Shenzhen metro?"),
    ],
)  # fmt: skip
def test_english_followups(resolver, earlier, followup, expected):
    assert understood(resolver, followup, earlier) == expected


def test_english_standalone_is_not_rewritten(resolver):
    assert understood(resolver, "Who founded Orion Labs?", "When was it built?") is None


def test_a_broken_rule_leaves_the_question_alone(resolver, monkeypatch):
    import qa.conversation.resolver as module

    def boom(*args: object) -> None:
        raise RuntimeError("rule bug")

    monkeypatch.setattr(module, "rebuild_chinese", boom)
    assert resolver.resolve("那2022年呢？", ["2023年杭州的旅客吞吐量是多少？"]).question == (
        "那2022年呢？"
    )


# --- history ---------------------------------------------------------------------------------


def test_parse_history_accepts_strings_objects_and_turns():
    turns = parse_history(["问一", {"question": "问二", "answer": "答二"}, Turn("问三")])
    assert turns == [Turn("问一"), Turn("问二", "答二"), Turn("问三")]
    assert parse_history(None) == []


@pytest.mark.parametrize(
    "history",
    [
        "not a list",
        [42],
        [{"question": ""}],
        [{"answer": "only"}],
        [{"question": "q", "extra": 1}],
        [{"question": "q", "answer": 3}],
        ["问" * 501],
        ["q"] * (MAX_HISTORY_TURNS + 1),
    ],
)
def test_parse_history_refuses_bad_turns(history):
    with pytest.raises(QuestionError):
        parse_history(history)


def test_turns_from_the_chat_read_our_html_and_plain_text():
    from qa.web.render import render_question_html, render_reply_html

    passage = Passage("d:0:a", "d", "报告", CORPUS, 0, len(CORPUS))
    start = CORPUS.index("120万人次")
    reply = Response(
        "q", [Answer("120万人次", 0.9, passage, Span(start, start + 6))], [Hit(passage, 1.0)],
        False, "fake",
    )  # fmt: skip
    messages = [
        {"role": "user", "content": render_question_html("2023年<b>杭州</b>的旅客吞吐量？")},
        {"role": "assistant", "content": render_reply_html(reply)},
        {"role": "user", "content": [{"type": "text", "text": "那2022年呢？"}]},
        {"role": "assistant", "content": "98万人次"},
        "junk",
    ]
    assert turns_from_chat(messages) == [
        Turn("2023年<b>杭州</b>的旅客吞吐量？", "120万人次"),
        Turn("那2022年呢？", "98万人次"),
    ]


def test_history_file_json_and_jsonl(tmp_path):
    listed = tmp_path / "h.json"
    listed.write_text('["问一", {"question": "问二", "answer": "答"}]', encoding="utf-8")
    lines = tmp_path / "h.jsonl"
    lines.write_text('"问一"\n{"question": "问二", "answer": "答"}\n', encoding="utf-8")
    assert (
        load_history_file(listed) == load_history_file(lines) == [Turn("问一"), Turn("问二", "答")]
    )
    (tmp_path / "bad.json").write_text("{oops", encoding="utf-8")
    with pytest.raises(QuestionError):
        load_history_file(tmp_path / "bad.json")


def test_fill_answers_asks_earlier_turns_in_order():
    seen = []

    def ask(question, earlier):
        seen.append((question, list(earlier)))
        return Response(question, [], [], True, "fake")  # declines: no answer kept

    turns = fill_answers([Turn("一"), Turn("二", "已答"), Turn("三")], ask)
    assert [t.answer for t in turns] == [None, "已答", None]
    assert seen == [("一", []), ("三", [Turn("一"), Turn("二", "已答")])]


# --- the pipeline ----------------------------------------------------------------------------


class RecordingRetriever:
    def __init__(self, passages: list[Passage]) -> None:
        self.passages = passages
        self.queries: list[str] = []

    def search(self, query: str, top_k: int = 5, **options: object) -> list[Hit]:
        self.queries.append(query)
        return [Hit(p, 1.0) for p in self.passages]


class YearReader:
    """Answers with the figure that follows the question's year in the passage."""

    name = "year-reader"

    def read(self, question: str, passages: list[Passage], top_k: int = 3) -> Reading:
        passage = passages[0]
        for year, figure in (
            ("2021年", "75万人次"),
            ("2022年", "98万人次"),
            ("2023年", "120万人次"),
        ):
            if year in question:
                start = passage.text.index(figure)
                span = Span(start, start + len(figure))
                return Reading([Answer(figure, 0.9, passage, span)], False)
        return Reading([], True)


@pytest.fixture
def pipeline() -> Pipeline:
    passage = Passage("d:0:a", "d", "报告", CORPUS, 0, len(CORPUS))
    return Pipeline(RecordingRetriever([passage]), YearReader(), cache_size=8)


def test_pipeline_answers_the_rebuilt_question_and_says_so(pipeline):
    first = pipeline.ask("2023年杭州的旅客吞吐量是多少？")
    assert first.interpreted_as is None and first.answers[0].text == "120万人次"
    followup = pipeline.ask("那2022年呢？", history=[Turn(first.question, "120万人次")])
    assert followup.question == "那2022年呢？"
    assert followup.interpreted_as == "2022年杭州的旅客吞吐量是多少？"
    assert followup.answers[0].text == "98万人次"
    assert pipeline.retriever.queries[-1] == "2022年杭州的旅客吞吐量是多少？"
    assert followup.to_dict()["interpreted_as"] == "2022年杭州的旅客吞吐量是多少？"
    alone = pipeline.ask("那2022年呢？")  # without history: as before
    assert alone.interpreted_as is None and pipeline.retriever.queries[-1] == "那2022年呢？"


def test_cache_keys_on_the_rebuilt_question(pipeline):
    history = ["2023年杭州的旅客吞吐量是多少？"]
    pipeline.ask("那2022年呢？", history=history)
    searched = len(pipeline.retriever.queries)
    direct = pipeline.ask("2022年杭州的旅客吞吐量是多少？")
    assert len(pipeline.retriever.queries) == searched  # served from the cache
    assert direct.interpreted_as is None and "cache" in direct.timings_ms
    other = pipeline.ask("那2021年呢？", history=history)
    assert other.answers[0].text == "75万人次"  # a different follow-up is not that cached answer
    again = pipeline.ask("那2022年呢？", history=[*history, "那2021年呢？"])
    assert again.answers[0].text == "98万人次" and "cache" in again.timings_ms


def test_pipeline_refuses_bad_history(pipeline):
    with pytest.raises(QuestionError):
        pipeline.ask("那2022年呢？", history=[{"question": 3}])
