"""Question + context windows: overlap, offsets, and answers that stay whole at window edges."""

from __future__ import annotations

import itertools
import random
import unicodedata

import pytest

from qa.readers.windows import answer_token_span, make_windows

QUESTION = "厦门的研发投入强度是多少？"
# Mixed text: CJK, numbers split across pieces, Latin words, full-width punctuation and spaces.
SENTENCES = [
    "2024年，厦门全社会研发投入强度达3.46%。",
    "《厦门市科技创新条例》规定了“十四五”期间的任务。",
    "Project A123 was approved in March.",
    "各部门应当按季度报送进展情况，信息中心负责汇总。",
    "员工每年享有带薪年休假，工作满十年的员工可以休假十天。",
]


def long_context(n: int = 12, seed: int = 3) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(SENTENCES) for _ in range(n))


@pytest.fixture(params=["tiny", pytest.param("e5", marks=pytest.mark.slow)])
def tokenizer(request: pytest.FixtureRequest):
    """Every test runs on the tiny tokenizer; slow runs repeat it on the real e5 tokenizer."""
    return request.getfixturevalue("tiny_tokenizer" if request.param == "tiny" else "e5_tokenizer")


def context_tokens(offsets: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [o for o in offsets if o[0] >= 0]


def test_long_context_gives_overlapping_windows(tokenizer) -> None:
    context = long_context()
    windows = make_windows(tokenizer, [QUESTION], [context], max_length=48, stride=12)
    assert len(windows) >= 4
    assert windows.context_index == [0] * len(windows)
    assert all(len(ids) <= 48 for ids in windows.input_ids)
    for left, right in itertools.pairwise(windows.offsets):
        a, b = context_tokens(left), context_tokens(right)
        # the next window starts with the last `stride` context tokens of this one
        assert b[:12] == a[-12:]
        assert b[12][0] >= a[-1][1]
    # nothing is lost: every visible character of the context is in some window
    covered = {i for o in windows.offsets for s, e in context_tokens(o) for i in range(s, e)}
    missing = [i for i, ch in enumerate(context) if not ch.isspace() and i not in covered]
    assert missing == []


def test_offsets_point_at_the_characters_of_each_token(tokenizer) -> None:
    context = long_context(6, seed=5)
    windows = make_windows(tokenizer, [QUESTION], [context], max_length=40, stride=8)
    checked = 0
    for ids, offsets in zip(windows.input_ids, windows.offsets, strict=True):
        pieces = tokenizer.convert_ids_to_tokens(ids)
        for piece, (s, e) in zip(pieces, offsets, strict=True):
            if s < 0 or piece == tokenizer.unk_token:
                continue
            if piece == "▁":  # a prepended metaspace borrows the offsets of the next character
                assert e - s == 1
                continue
            source = unicodedata.normalize("NFKC", context[s:e]).replace(" ", "")
            assert source == piece.replace("▁", ""), (piece, context[s:e])
            checked += 1
    assert checked > 50


def test_question_and_special_tokens_have_no_offsets(tokenizer) -> None:
    question_ids = tokenizer(QUESTION, add_special_tokens=False)["input_ids"]
    windows = make_windows(tokenizer, [QUESTION], [long_context()], max_length=48, stride=12)
    for ids, offsets in zip(windows.input_ids, windows.offsets, strict=True):
        first = next(t for t, (s, _) in enumerate(offsets) if s >= 0)
        assert all(o == (-1, -1) for o in offsets[:first])
        assert offsets[-1] == (-1, -1)  # closing special token
        assert ids[1 : 1 + len(question_ids)] == question_ids
        assert first > len(question_ids)  # question plus its special tokens come first


def test_several_pairs_keep_their_context_index(tokenizer) -> None:
    contexts = ["短文。", long_context(8), "另一段短文，没有答案。"]
    windows = make_windows(tokenizer, ["问题？"] * 3, contexts, max_length=40, stride=8)
    index = windows.context_index
    assert index == sorted(index)
    assert index.count(0) == 1 and index.count(2) == 1 and index.count(1) > 1
    for w, ci in enumerate(index):
        assert all(e <= len(contexts[ci]) for _, e in context_tokens(windows.offsets[w]))


def test_every_answer_is_whole_in_some_window(tokenizer) -> None:
    """Answers at every position, including those that cross a window edge."""
    context = long_context(10, seed=11)
    windows = make_windows(tokenizer, [QUESTION], [context], max_length=40, stride=10)
    tried = 0
    for start in range(len(context)):
        for length in (1, 3, 6):
            end = start + length
            if end > len(context) or not context[start:end].strip():
                continue
            if context[start].isspace() or context[end - 1].isspace():
                continue
            tried += 1
            found = []
            for offsets in windows.offsets:
                span = answer_token_span(offsets, start, end)
                if span is not None:
                    first, last = span
                    assert first <= last
                    assert offsets[first][0] <= start < offsets[first][1]
                    assert offsets[last][0] < end <= offsets[last][1]
                    found.append(span)
            assert found, f"answer {context[start:end]!r} at {start} is whole in no window"
    assert tried > 300


def test_answer_outside_or_across_a_window_gives_none(tiny_tokenizer) -> None:
    context = "甲乙丙丁戊己庚辛壬癸" * 10
    windows = make_windows(tiny_tokenizer, ["问题？"], [context], max_length=32, stride=8)
    first = windows.offsets[0]
    last_char = context_tokens(first)[-1][1]
    assert answer_token_span(first, last_char + 5, last_char + 7) is None  # after the window
    assert answer_token_span(first, last_char - 1, last_char + 1) is None  # across its end
    second = windows.offsets[1]
    begin = context_tokens(second)[0][0]
    assert answer_token_span(second, begin - 2, begin + 1) is None  # across its start
    assert answer_token_span(second, 0, 2) is None  # before it
    assert answer_token_span(second, begin, begin + 2) is not None


def test_answer_inside_a_multi_character_token(tiny_tokenizer) -> None:
    context = "强度达3.46%。"
    windows = make_windows(tiny_tokenizer, ["多少？"], [context], max_length=32, stride=8)
    offsets = windows.offsets[0]
    start = context.index("3.46")
    first, last = answer_token_span(offsets, start, start + 4)  # "3.46" ends inside "6%"
    assert context[offsets[first][0] : offsets[last][1]] == "3.46%"


def test_answer_after_a_space_swallowed_by_a_token(tiny_tokenizer) -> None:
    context = "代号是 A123，请记住。"
    windows = make_windows(tiny_tokenizer, ["代号？"], [context], max_length=32, stride=8)
    offsets = windows.offsets[0]
    start = context.index("A123")
    first, last = answer_token_span(offsets, start, start + 4)
    assert context[offsets[first][0] : offsets[last][1]].strip() == "A123"


def test_long_question_is_clipped_not_rejected(tiny_tokenizer) -> None:
    question = "请问" + "这份文件里提到的" * 40 + "研发投入强度是多少？"
    windows = make_windows(
        tiny_tokenizer,
        [question],
        ["研发投入强度达3.46%。"],
        max_length=96,
        stride=16,
        max_question_tokens=20,
    )
    assert len(windows) == 1
    offsets = windows.offsets[0]
    n_question = next(t for t, (s, _) in enumerate(offsets) if s >= 0)
    assert n_question <= 20 + 4  # clipped question plus <s> </s> </s> (and one ▁)
    head = tiny_tokenizer(question[:4], add_special_tokens=False)["input_ids"]
    assert windows.input_ids[0][1 : 1 + len(head)] == head  # the head of the question is kept


def test_padded_rows(tiny_tokenizer) -> None:
    windows = make_windows(
        tiny_tokenizer, ["问？", "问？"], ["短。", "长一些的上下文。"], max_length=32, stride=8
    )
    ids, mask = windows.padded([1, 0], pad_id=tiny_tokenizer.pad_token_id)
    short, long = len(windows.input_ids[0]), len(windows.input_ids[1])
    assert ids.shape == mask.shape == (2, long)
    assert list(ids[0]) == windows.input_ids[1]
    assert list(ids[1, :short]) == windows.input_ids[0]
    assert set(ids[1, short:]) == {tiny_tokenizer.pad_token_id}
    assert mask.sum(axis=1).tolist() == [long, short]
