"""Calibration: the logistic fit, the no-answer threshold, and packaging a trained checkpoint."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SYNTHETIC_QUESTION, make_passage, synthetic_code_example

from qa.calibration import (
    MIN_CROSSLINGUAL,
    calibrate_and_package,
    choose_threshold,
    fit_logistic,
)
from qa.readers import TransformerReader
from qa.readers.compact import DELTA_WEIGHTS, ReaderConfig
from qa.readers.spans import Calibration, asked_across_languages


def sample_logistic(
    scale: float, bias: float, n: int, seed: int, low: float = -6, high: float = 6
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    margins = rng.uniform(low, high, size=n)
    p = 1 / (1 + np.exp(-(scale * margins + bias)))
    return margins, (rng.random(n) < p).astype(float)


@pytest.mark.parametrize(
    ("scale", "bias", "low", "high"),
    [
        (1.5, -0.5, -6, 6),
        (0.3, 1.0, -6, 6),
        (-0.8, 0.2, -6, 6),
        # reader margins run from about -20 to +40: the fit must not overshoot on them
        (0.3, 1.0, -20, 40),
        (0.25, -5.0, 0, 40),
    ],
)
def test_fit_logistic_recovers_the_generating_curve(
    scale: float, bias: float, low: float, high: float
) -> None:
    margins, labels = sample_logistic(scale, bias, 6000, seed=1, low=low, high=high)
    fitted = fit_logistic(margins, labels)
    assert fitted.scale == pytest.approx(scale, abs=0.1 * abs(scale) + 0.05)
    assert fitted.bias == pytest.approx(bias, abs=0.1 * abs(bias) + 0.15)


def test_fit_logistic_on_separable_clusters() -> None:
    rng = np.random.default_rng(0)
    wrong, right = rng.uniform(-5, -1, size=200), rng.uniform(1, 5, size=200)
    fitted = fit_logistic(np.concatenate([wrong, right]), np.r_[np.zeros(200), np.ones(200)])
    assert fitted.scale > 0 and np.isfinite([fitted.scale, fitted.bias]).all()
    assert -1 < -fitted.bias / fitted.scale < 1  # p = 0.5 falls between the clusters
    assert fitted.probability(-3.0) < 0.05 and fitted.probability(3.0) > 0.95


def test_threshold_falls_between_right_answers_and_decoys() -> None:
    answerable = [(p, 1.0) for p in (0.72, 0.8, 0.86, 0.93, 0.97)]
    decoys = [0.05, 0.12, 0.2, 0.31]
    threshold, value = choose_threshold(answerable, decoys)
    assert max(decoys) < threshold <= min(p for p, _ in answerable)
    assert value == pytest.approx(1.0)


def test_threshold_weighs_f1_against_refusals() -> None:
    # confident answers are right, unsure ones wrong; decoys sit in between
    answerable = [(0.9, 1.0), (0.85, 1.0), (0.3, 0.0), (0.25, 0.0)]
    decoys = [0.5, 0.55, 0.6]
    threshold, value = choose_threshold(answerable, decoys)
    assert 0.6 < threshold <= 0.85
    assert value == pytest.approx((0.5 + 1.0) / 2)
    # with no decoys, refusing never pays: answer everything
    assert choose_threshold(answerable, [])[0] == pytest.approx(0.0)


def test_calibrate_and_package_a_trained_checkpoint(
    tiny_trained_reader: Path, tmp_path: Path
) -> None:
    out = tmp_path / "reader"
    result = calibrate_and_package(tiny_trained_reader, out, limit=20)
    assert (out / DELTA_WEIGHTS).is_file() and (out / "reader.json").is_file()
    config = ReaderConfig.read(out)
    assert (
        config.base_model
        == json.loads((tiny_trained_reader / "training.json").read_text())["config"]["base_model"]
    )
    assert 0.0 <= config.no_answer_threshold <= 1.0
    assert config.no_answer_threshold == pytest.approx(result["threshold"], abs=1e-4)
    assert result["heldout_questions"] == 20
    assert 0 < result["heldout_decoys"] <= 10
    assert result["heldout_f1_forced"] >= 80  # the model learned the pattern
    assert result["heldout_f1_forced_by_language"] == {"zh": result["heldout_f1_forced"]}

    # Another run's held-out questions (to compare two checkpoints on the same ones)
    lines = (tiny_trained_reader / "holdout.jsonl").read_text(encoding="utf-8").splitlines()
    other = tmp_path / "other_holdout.jsonl"
    other.write_text("\n".join(lines[:7]) + "\n", encoding="utf-8")
    elsewhere = calibrate_and_package(tiny_trained_reader, tmp_path / "r2", holdout=other)
    assert elsewhere["heldout_questions"] == 7

    compact = TransformerReader(str(out), max_length=64, stride=16)
    full = TransformerReader(str(tiny_trained_reader), max_length=64, stride=16)
    rng = random.Random(99)
    for i in range(8):
        context, _, _ = synthetic_code_example(rng)
        passages = [make_passage(f"n{i}", context)]
        a, b = (r.read(SYNTHETIC_QUESTION, passages, top_k=1) for r in (compact, full))
        assert a.answers[0].text == b.answers[0].text
        assert a.best_margin == pytest.approx(b.best_margin, abs=0.2)
        assert a.answers[0].score == pytest.approx(config.calibration.probability(a.best_margin))


def test_calibrate_with_a_single_held_out_question(
    tiny_trained_reader: Path, tmp_path: Path
) -> None:
    checkpoint = shutil.copytree(tiny_trained_reader, tmp_path / "checkpoint")
    first = (checkpoint / "holdout.jsonl").read_text(encoding="utf-8").splitlines()[0]
    (checkpoint / "holdout.jsonl").write_text(first + "\n", encoding="utf-8")
    result = calibrate_and_package(checkpoint, tmp_path / "reader")
    assert result["heldout_questions"] == 1 and result["heldout_decoys"] == 0
    assert ReaderConfig.read(tmp_path / "reader").base_model


def test_questions_asked_across_languages_are_recognised() -> None:
    chinese, english = ["厦门的人口是五百万。"], ["Xiamen has five million people."]
    assert asked_across_languages("What is the population of Xiamen?", chinese)
    assert asked_across_languages("Xiamen of population is how many?", chinese)  # code-switched
    assert not asked_across_languages("What is the population of Xiamen?", english)
    assert not asked_across_languages("厦门的人口是多少？", chinese)
    assert not asked_across_languages("2024年GDP是多少？", chinese)  # Chinese with a Latin word
    assert not asked_across_languages("？？", chinese)


def test_a_reader_with_a_crosslingual_calibration_uses_it_only_across_languages() -> None:
    own, across = Calibration(scale=1.0, bias=0.0), Calibration(scale=2.0, bias=3.0)
    config = ReaderConfig(
        calibration=own,
        no_answer_threshold=0.4,
        crosslingual_calibration=across,
        crosslingual_threshold=0.1,
    )
    chinese = ["厦门的人口是五百万。"]
    assert config.decision_for("What is the population?", chinese) == (across, 0.1)
    assert config.decision_for("人口是多少？", chinese) == (own, 0.4)
    assert ReaderConfig(calibration=own).decision_for("What?", chinese) == (own, 0.5)


def test_calibration_fits_crosslingual_questions_apart_when_held_out(
    tiny_trained_reader: Path, tmp_path: Path
) -> None:
    lines = (tiny_trained_reader / "holdout.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    asked = ("What is the number?", "Which code is given?", "What code is it?")
    switched = [
        {**row, "id": f"{row['id']}:cs{k}", "question": question, "language": "zh-en"}
        for k, question in enumerate(asked)
        for row in rows
    ]
    assert len(switched) >= MIN_CROSSLINGUAL
    mixed = tmp_path / "holdout.jsonl"
    mixed.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows + switched) + "\n",
        encoding="utf-8",
    )
    result = calibrate_and_package(tiny_trained_reader, tmp_path / "r", limit=40, holdout=mixed)
    config = ReaderConfig.read(tmp_path / "r")
    assert config.crosslingual_calibration is not None
    assert config.crosslingual_threshold is not None
    assert result["crosslingual"]["heldout_questions"] == 40  # capped at limit
    assert result["crosslingual"]["heldout_decoys"] > 0
    # reading back gives the same decision rule as was fitted
    reader = TransformerReader(str(tmp_path / "r"), max_length=64, stride=16)
    passage = make_passage("p", "今天天气很好，编号是K123。")
    _, threshold = reader.config.decision_for("What is the number?", [passage.text])
    assert threshold == config.crosslingual_threshold
    # without enough of them, no separate fit
    few = calibrate_and_package(tiny_trained_reader, tmp_path / "r2", limit=20)
    assert "crosslingual" not in few
    assert ReaderConfig.read(tmp_path / "r2").crosslingual_calibration is None
