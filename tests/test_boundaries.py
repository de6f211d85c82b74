"""The boundary model: features, fitting, its file, and the reader choosing edges with it."""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import make_passage

from qa.eval.metrics import is_boundary_error
from qa.readers import TransformerReader
from qa.readers.boundaries import (
    FEATURES,
    BoundaryCandidate,
    BoundaryModel,
    edge_terms,
    group_features,
    language_of,
)
from qa.readers.compact import BOUNDARY_MODEL, ReaderConfig
from qa.training.boundaries import Group, choice_scores, fit_boundary_model

FILLER = "天地玄黄宇宙洪荒日月盈昃辰宿列张寒来暑往秋收冬藏闰余成岁律吕调阳云腾致雨露结为霜"


def test_edge_terms_name_the_characters_at_and_beside_the_edges() -> None:
    text = "他在2024年的报告里"
    span = BoundaryCandidate(start=2, end=7, margin=0.0, start_score=0.0, end_score=0.0)
    assert text[2:7] == "2024年"
    assert edge_terms(text, span) == ["F:0", "L:年", "B:在", "A:的", "BF:在0", "LA:年的"]
    whole = BoundaryCandidate(start=0, end=len(text), margin=0, start_score=0, end_score=0)
    assert edge_terms(text, whole)[2:4] == ["B:∅", "A:∅"]


def test_question_language() -> None:
    assert language_of("厦门的研发投入强度是多少？") == "zh"
    assert language_of("How large is Xiamen's R&D intensity?") == "en"


def test_features_describe_the_span_against_the_best_one() -> None:
    text = "总容量达2,782万立方公尺，集水面积3.66平方公里。"
    best = BoundaryCandidate(4, 14, margin=10.0, start_score=6.0, end_score=4.0)
    longer = BoundaryCandidate(0, 14, margin=8.0, start_score=4.5, end_score=3.5)
    rows = group_features("总容量是多少？", text, [best, longer])
    named = [dict(zip(FEATURES, row, strict=True)) for row in rows]
    assert named[0]["is_best"] == 1 and named[0]["margin_gap"] == 0
    assert named[1]["contains_best"] == 1 and named[1]["inside_best"] == 0
    assert named[1]["margin_gap"] == -2 and named[1]["start_gap"] == -1.5
    assert named[0]["number_q_digit"] == 1  # a "how much" question and a span with digits
    assert named[1]["question_overlap"] > named[0]["question_overlap"]  # "总容量" is asked about
    assert named[0]["after_is_break"] == 1  # "，" follows the best span


def synthetic_group(rng: random.Random, glue: str) -> tuple[str, list[BoundaryCandidate], int]:
    """A passage where the gold answer sits between a glue character and "的"; the reader's
    margins are noise, so only the edges can tell the gold span from its neighbours."""
    answer = "".join(rng.sample(FILLER, rng.randint(2, 5)))
    left = "".join(rng.sample(FILLER, 6))
    text = f"{left}{glue}{answer}的{''.join(rng.sample(FILLER, 6))}"
    start = len(left) + 1
    spans = [
        (start, start + len(answer)),  # gold
        (start - 1, start + len(answer)),  # the glue character included
        (start, start + len(answer) + 1),  # "的" included
        (start + 1, start + len(answer)),  # one character short
    ]
    order = list(range(len(spans)))
    rng.shuffle(order)  # the reader's margin order: random
    candidates = []
    for rank, k in enumerate(order):
        s, e = spans[k]
        margin = 10.0 - rank
        candidates.append(BoundaryCandidate(s, e, margin, margin / 2, margin / 2))
    return text, candidates, order.index(0)


def to_group(question: str, text: str, candidates: list[BoundaryCandidate], gold: int) -> Group:
    exact = np.zeros(len(candidates))
    exact[gold] = 1
    return Group(
        dense=group_features(question, text, candidates),
        terms=[edge_terms(text, c) for c in candidates],
        exact=exact,
        f1=exact.copy(),
        boundary_error=exact == 0,
    )


def test_fitting_learns_edges_that_margins_do_not_know() -> None:
    rng = random.Random(3)
    train = [to_group("什么？", *synthetic_group(rng, rng.choice("在是于"))) for _ in range(400)]
    new = [to_group("什么？", *synthetic_group(rng, rng.choice("在是于"))) for _ in range(200)]
    model = fit_boundary_model(train, min_count=3)
    before, after = choice_scores(new, None), choice_scores(new, model)
    assert before["exact_match"] < 40  # the margin's best span is the gold one a quarter of times
    assert after["exact_match"] > 90
    assert before["boundary_error_share"] == 100.0  # every miss here is at the edges


def test_fitting_refuses_groups_without_gold() -> None:
    rng = random.Random(0)
    text, candidates, _ = synthetic_group(rng, "在")
    group = to_group("什么？", text, candidates, 0)
    empty = Group(group.dense, group.terms, group.exact * 0, group.f1 * 0, group.boundary_error)
    with pytest.raises(ValueError, match="nothing to learn"):
        fit_boundary_model([empty])


def strong_model(**weights: float) -> BoundaryModel:
    row = [weights.get(name, 0.0) for name in FEATURES]
    return BoundaryModel(weights=tuple(row), terms={})


def test_model_file_round_trips_and_a_stale_one_is_refused(tmp_path: Path) -> None:
    model = BoundaryModel(
        weights=tuple(float(i) for i in range(len(FEATURES))), terms={"A:的": -1.5}
    )
    again = BoundaryModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again.weights == model.weights and again.terms == model.terms
    stale = {**model.to_dict(), "features": ["margin_gap"], "weights": [1.0]}
    with pytest.raises(ValueError, match="fit it again"):
        BoundaryModel.from_dict(stale)


def test_reader_config_reads_the_model_and_skips_a_broken_one(
    qa_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "with-boundaries"
    shutil.copytree(qa_model_dir, folder)
    config = ReaderConfig.read(folder)
    assert config.boundaries is None
    config.boundaries = strong_model(log_chars=-5.0)
    config.write(folder)
    assert "boundaries" not in json.loads((folder / "reader.json").read_text())
    assert ReaderConfig.read(folder).boundaries == config.boundaries
    (folder / BOUNDARY_MODEL).write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert ReaderConfig.read(folder).boundaries is None
    assert "boundaries.json not used" in caplog.text


def reader_with(folder: Path, model: BoundaryModel | None) -> TransformerReader:
    reader = TransformerReader(str(folder))
    reader.warm_up()
    reader.config.boundaries = model
    return reader


@pytest.mark.parametrize("prefer", ["short", "long"])
def test_reader_answers_with_the_edges_the_model_chooses(
    qa_model_dir: Path, passages, prefer: str
) -> None:
    question = "公司的营业收入是多少？"
    plain = reader_with(qa_model_dir, None)
    groups = plain.boundary_candidates(question, passages[0])
    assert len(groups) >= 2  # a random model still proposes overlapping spans
    texts = [t for t, _ in groups]
    want = min(texts, key=len) if prefer == "short" else max(texts, key=len)
    weight = -50.0 if prefer == "short" else 50.0
    chosen = reader_with(qa_model_dir, strong_model(log_chars=weight))
    before = plain.read(question, passages[:1], top_k=3)
    after = chosen.read(question, passages[:1], top_k=3)
    assert before.answers[0].text == texts[0]  # without a model: the best margin
    assert after.answers[0].text == want
    assert after.answers[0].score == before.answers[0].score  # the edges moved, not the confidence
    assert after.no_answer == before.no_answer and after.best_margin == before.best_margin
    top = after.answers[0]
    assert top.passage.text[top.span.start : top.span.end] == top.text
    for other in after.answers[1:]:  # nothing left that overlaps the chosen span
        assert other.span.end <= top.span.start or top.span.end <= other.span.start


def test_reader_leaves_english_questions_to_the_margin(qa_model_dir: Path) -> None:
    passage = make_passage("en", "The company reported revenue of 5 million dollars last year.")
    question = "How much revenue did the company report?"
    plain = reader_with(qa_model_dir, None).read(question, [passage], top_k=1)
    zh_only = reader_with(qa_model_dir, strong_model(log_chars=-50.0))
    assert zh_only.read(question, [passage], top_k=1).answers[0].text == plain.answers[0].text


@pytest.mark.parametrize(
    ("prediction", "golds", "question", "expected"),
    [
        ("3.08%提升至2024年的3.46%", ["3.46%"], "强度是多少？", True),  # too long
        ("3.46", ["3.46%"], "强度是多少？", True),  # too short
        ("3.46%", ["3.46%"], "强度是多少？", False),  # exact: no error at all
        ("厦门", ["福州"], "在哪里？", False),  # wrong, not at the edges
        ("", ["福州"], "在哪里？", False),  # declined
        ("the 5 million dollars", ["5 million"], "How much?", True),
    ],
)
def test_boundary_errors(prediction: str, golds: list[str], question: str, expected: bool) -> None:
    assert is_boundary_error(prediction, golds, question=question) is expected
