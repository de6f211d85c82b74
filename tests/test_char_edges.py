"""Answer edges inside a subword token: the options, fitting them, the file, and the reader."""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import make_passage

from qa.readers import TransformerReader
from qa.readers.char_edges import (
    EDGE_FEATURES,
    CharEdgeModel,
    SideWeights,
    edge_options,
    word_boundaries,
)
from qa.readers.compact import CHAR_EDGE_MODEL, ReaderConfig
from qa.readers.spans import SpanCandidate
from qa.training.char_edges import TokenSpan, exact_share, fit_side, side_group
from qa.training.examples import SpanExample

WORDS = ("香港", "中文", "大学", "他", "在", "读书", "新闻", "学院", "上海", "交通", "是", "了")


def segment(text: str):
    """A stand-in for jieba: the longest word of :data:`WORDS` at each place, else one char."""
    i = 0
    while i < len(text):
        word = next(
            (w for w in sorted(WORDS, key=len, reverse=True) if text.startswith(w, i)), None
        )
        word = word or text[i]
        yield word
        i += len(word)


def test_word_boundaries_come_from_the_segmenter() -> None:
    text = "他在香港中文大学读书"
    found = word_boundaries(text, 2, 5, segment)
    assert {2, 4, 6} <= found  # 在|香港|中文|大学
    assert 3 not in found and 5 not in found  # inside 香港 and 中文


def test_options_are_the_token_edge_then_positions_beside_chinese() -> None:
    text = "他在香港中文大学读书"
    starts = edge_options(text, 1, 4, "start", segment)  # the token 在香港
    assert [o.position for o in starts] == [1, 2, 3]
    named = [dict(zip(EDGE_FEATURES, o.dense, strict=True)) for o in starts]
    assert named[0]["token_edge"] == 1 and named[1]["token_edge"] == 0
    assert named[1]["word_boundary"] == 1 and named[2]["word_boundary"] == 0  # 在|香 vs 香|港
    assert named[1]["cut_chars"] == 1  # 在 is cut off
    assert "C:在" in starts[1].terms and "BA:在香" in starts[1].terms
    ends = edge_options(text, 6, 8, "end", segment)  # the token 大学, the answer ending in it
    assert [o.position for o in ends] == [8, 7]
    assert "C:学" in ends[1].terms and "W0E0" in ends[1].terms  # 学 cut off inside a word


def test_no_options_inside_latin_words_or_single_characters() -> None:
    assert edge_options("the Hikaru Matsuyama team", 4, 10, "start", segment) == []
    assert edge_options("他在香港", 1, 2, "start", segment) == []


def located(text: str, answer: str, first: tuple[int, int], last: tuple[int, int]) -> TokenSpan:
    start = text.index(answer)
    example = SpanExample("q", "问题", text, start, answer, "p", "zh")
    return TokenSpan(example, first, last)


def glued_answers(rng: random.Random, n: int) -> list[TokenSpan]:
    """Answers after a glue character that the tokenizer put into the answer's first token
    ("在香港…" as one token), and as many whose first token starts with the answer itself."""
    spans = []
    for _ in range(n):
        place = rng.choice(["香港", "上海", "交通"])
        rest = rng.choice(["大学", "学院", "中文"])
        text = f"他在{place}{rest}读书"
        answer = place + rest
        if rng.random() < 0.5:
            spans.append(located(text, answer, (1, 4), (4, 6)))  # 在香港 | 大学
        else:
            spans.append(located(text, answer, (2, 4), (4, 6)))  # 香港 | 大学
    return spans


def test_fitting_learns_to_cut_the_glue_and_to_leave_clean_tokens_alone() -> None:
    rng = random.Random(3)
    train, held = glued_answers(rng, 200), glued_answers(rng, 60)
    groups = [g for s in train if (g := side_group(s, "start", segment)) is not None]
    assert groups, "glued tokens must offer a choice"
    weights = fit_side(groups)
    model = CharEdgeModel(weights, SideWeights((0.0, 0.0, 0.0), {}))
    assert exact_share(held, None, segment) < 70  # about half start inside their first token
    assert exact_share(held, model, segment) == 100
    text = "他在上海学院读书"
    assert model.refine(text, 1, 6, 4, 4, segment) == (2, 6)  # 在上海学院 → 上海学院
    assert model.refine(text, 2, 6, 4, 4, segment) == (2, 6)  # already clean


def test_refine_never_empties_a_span() -> None:
    cut_all = SideWeights((-50.0, 0.0, 10.0), {})
    model = CharEdgeModel(cut_all, cut_all)
    text = "他在香港读书"
    start, end = model.refine(text, 1, 4, 4, 1, segment)  # one token 在香港
    assert start < end and start >= 1 and end <= 4


def test_model_file_round_trip_and_a_broken_one_is_skipped(
    qa_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "with-edges"
    shutil.copytree(qa_model_dir, folder)
    assert ReaderConfig.read(folder).char_edges is None
    config = ReaderConfig.read(folder)
    config.char_edges = CharEdgeModel(
        SideWeights((1.0, 2.0, -1.0), {"C:在": 1.5}), SideWeights((0.5, 1.0, 0.0), {"A:的": 1.0})
    )
    config.write(folder)
    assert "char_edges" not in json.loads((folder / "reader.json").read_text())
    assert ReaderConfig.read(folder).char_edges == config.char_edges
    stale = {**config.char_edges.to_dict(), "features": ["token_edge"]}
    with pytest.raises(ValueError, match="fit it again"):
        CharEdgeModel.from_dict(stale)
    (folder / CHAR_EDGE_MODEL).write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert ReaderConfig.read(folder).char_edges is None
    assert "char_edges.json not used" in caplog.text


def test_reader_moves_the_edges_of_its_answers_inside_tokens(qa_model_dir: Path) -> None:
    reader = TransformerReader(str(qa_model_dir))
    reader.warm_up()
    passage = make_passage("p", "他在香港中文大学读书。在上海交通大学工作。")
    # Spans of whole tokens as the e5 tokenizer cuts them: 在香港 … 大学 (margin 5), and
    # 在上海 … 大学 (margin 4) in the next sentence.
    glued = SpanCandidate(0, 1, 8, 5.0, 3.0, 2.0, start_token_end=4, end_token_start=6)
    second = SpanCandidate(0, 11, 18, 4.0, 2.0, 2.0, start_token_end=14, end_token_start=16)
    calibration = reader.config.calibration

    def answers() -> list[str]:
        found, margin = reader._merge("他在哪里？", [glued, second], [passage], 3, calibration)
        assert margin == 5.0  # the best span's margin whatever its edges
        for a in found:
            assert passage.text[a.span.start : a.span.end] == a.text
        return [a.text for a in found]

    reader.config.char_edges = None
    assert answers() == ["在香港中文大学", "在上海交通大学"]
    cut_glue = SideWeights((0.0, 3.0, 0.0), {"C:在": 5.0})
    reader.config.char_edges = CharEdgeModel(cut_glue, SideWeights((1.0, 0.0, 0.0), {}))
    assert answers() == ["香港中文大学", "上海交通大学"]
    reading = reader.read("他在哪里读书？", [passage], top_k=1)
    assert np.isfinite(reading.best_margin)  # a real read still runs with the model attached


def test_answers_that_read_the_same_once_refined_are_kept_once(qa_model_dir: Path) -> None:
    reader = TransformerReader(str(qa_model_dir))
    reader.warm_up()
    one, two = make_passage("a", "他在香港读书。"), make_passage("b", "香港读书的人。")
    glued = SpanCandidate(0, 1, 4, 5.0, 3.0, 2.0, start_token_end=4, end_token_start=1)
    clean = SpanCandidate(1, 0, 2, 4.0, 2.0, 2.0, start_token_end=2, end_token_start=0)
    reader.config.char_edges = CharEdgeModel(
        SideWeights((0.0, 0.0, 0.0), {"C:在": 5.0}), SideWeights((1.0, 0.0, 0.0), {})
    )
    found, _ = reader._merge("哪里？", [glued, clean], [one, two], 3, reader.config.calibration)
    assert [(a.text, a.passage.id) for a in found] == [("香港", one.id)]


SHARED_QA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "qa"
SHIPPED = Path(__file__).resolve().parents[1] / "models" / "reader-zh"


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_QA / "cmrc2018_train.json").is_file(), reason="no training data")
def test_shipped_model_is_what_the_command_fits() -> None:
    """``ludao fit-char-edges models/reader-zh`` reproduces the committed file, and it raised
    the held-out share of answers that the right tokens give exactly."""
    from qa.training.char_edges import fit_char_edges

    reader = TransformerReader(str(SHIPPED))
    fitted = fit_char_edges(
        reader.tokenizer,
        SHARED_QA,
        max_length=reader.config.max_length,
        stride=reader.config.stride,
    )
    shipped = json.loads((SHIPPED / CHAR_EDGE_MODEL).read_text(encoding="utf-8"))
    assert json.loads(json.dumps(fitted.to_dict(), ensure_ascii=False)) == shipped
    exact = shipped["metrics"]["heldout_exact_from_gold_tokens"]
    assert exact["after"] > exact["before"]


@pytest.mark.slow
def test_shipped_model_cuts_a_glued_character_off_a_year() -> None:
    """e5's tokenizer glues 起 to 年 ("1998年起" is two tokens, "1998" and "年起"); the shipped
    model ends a year answer inside that token."""
    reader = TransformerReader(str(SHIPPED))
    edges = reader.config.char_edges
    assert edges is not None
    text = "他毕业于北京大学，1998年起在上海工作。"
    windows = reader.tokenizer.pair_windows(["何时？"], [text], max_length=64, stride=16)[0]
    offsets = [
        o for o, s in zip(windows[0].offsets, windows[0].sequence_ids, strict=True) if s == 1
    ]
    year = text.index("1998")
    first = next(o for o in offsets if o[0] == year)
    last = next(o for o in offsets if o[0] < text.index("起") < o[1] or o[0] == text.index("年"))
    assert text[last[0] : last[1]] == "年起"  # the glue this model exists for
    start, end = edges.refine(text, first[0], last[1], first[1], last[0])
    assert text[start:end] == "1998年"
