"""From logits to spans (pure functions): best_spans, tidy_span, Calibration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from qa.readers.spans import Calibration, best_spans, tidy_span

# A window: token 0 is <s>, tokens 1-2 the question, 3 a separator, 4-11 the context, 12 </s>.
OFFSETS = [(-1, -1)] * 4 + [(i * 2, i * 2 + 2) for i in range(8)] + [(-1, -1)]


def logits(peaks: dict[int, float], null: float = 0.0, n: int = len(OFFSETS)) -> np.ndarray:
    values = np.full(n, -5.0)
    values[0] = null
    for token, value in peaks.items():
        values[token] = value
    return values


def test_clear_peak_gives_its_span_and_margin_over_null() -> None:
    start, end = logits({6: 8.0}, null=1.0), logits({8: 7.0}, null=0.5)
    spans = best_spans(start, end, OFFSETS, context_index=3)
    best = spans[0]
    assert (best.char_start, best.char_end) == (OFFSETS[6][0], OFFSETS[8][1])
    assert best.margin == pytest.approx(8.0 + 7.0 - (1.0 + 0.5))
    assert best.context_index == 3
    assert [s.margin for s in spans] == sorted((s.margin for s in spans), reverse=True)


def test_end_never_before_start() -> None:
    # the best end (token 5) lies before the best start (token 9): that pair is not allowed
    start, end = logits({9: 9.0, 4: 1.0}), logits({5: 9.0, 10: 2.0})
    spans = best_spans(start, end, OFFSETS, context_index=0)
    assert all(s.char_end > s.char_start for s in spans)
    best = spans[0]
    assert (best.char_start, best.char_end) == (OFFSETS[9][0], OFFSETS[10][1])


def test_max_answer_tokens_limits_length() -> None:
    start, end = logits({4: 9.0, 9: 1.0}), logits({11: 9.0, 10: 1.0})
    assert (best_spans(start, end, OFFSETS, context_index=0)[0].char_start) == OFFSETS[4][0]
    short = best_spans(start, end, OFFSETS, context_index=0, max_answer_tokens=3)
    for span in short:
        first = next(t for t, o in enumerate(OFFSETS) if o[0] == span.char_start)
        last = next(t for t, o in enumerate(OFFSETS) if o[1] == span.char_end)
        assert last - first + 1 <= 3
    assert (short[0].char_start, short[0].char_end) == (OFFSETS[9][0], OFFSETS[11][1])


def test_question_and_special_tokens_are_never_spans() -> None:
    # the highest logits sit on question tokens and on </s>: they must be ignored
    start, end = logits({1: 20.0, 12: 20.0, 7: 3.0}), logits({2: 20.0, 12: 20.0, 7: 3.0})
    spans = best_spans(start, end, OFFSETS, context_index=0)
    assert spans
    assert all(s.char_start >= 0 for s in spans)
    assert (spans[0].char_start, spans[0].char_end) == OFFSETS[7]


def test_no_context_tokens_no_spans() -> None:
    offsets = [(-1, -1)] * 5
    assert best_spans(np.zeros(5), np.zeros(5), offsets, context_index=0) == []


def test_n_best_caps_the_list() -> None:
    rng = np.random.default_rng(0)
    start, end = rng.normal(size=len(OFFSETS)), rng.normal(size=len(OFFSETS))
    assert len(best_spans(start, end, OFFSETS, context_index=0, n_best=4)) <= 4
    assert len(best_spans(start, end, OFFSETS, context_index=0, n_best=50)) == 36  # 8·9/2


def test_window_without_the_answer_scores_below_null() -> None:
    start, end = logits({6: -1.0}, null=6.0), logits({6: -1.0}, null=6.0)
    assert best_spans(start, end, OFFSETS, context_index=0)[0].margin < 0


@pytest.mark.parametrize(
    ("text", "raw", "expected"),
    [
        ("根据《厦门市科技创新条例》规定", "厦门市科技创新条例》", "《厦门市科技创新条例》"),
        ("根据《厦门市科技创新条例》规定", "《厦门市科技创新条例", "《厦门市科技创新条例》"),
        ("所谓“十四五”规划", "“十四五", "“十四五”"),
        ("所谓“十四五”规划", "十四五”", "“十四五”"),
        ("强度达3.46%，位居前列", "3.46%，", "3.46%"),
        ("强度达3.46%，位居前列", "3.46%", "3.46%"),
        ("答案：信息中心。", "：信息中心。", "信息中心"),
        ("有 A123 号", " A123 ", "A123"),
    ],
)
def test_tidy_span(text: str, raw: str, expected: str) -> None:
    start = text.index(raw)
    s, e = tidy_span(text, start, start + len(raw))
    assert text[s:e] == expected


def test_tidy_span_drops_an_unpartnered_mark() -> None:
    text = "《条例甲和条例乙"  # the closing mark is nowhere near: drop the opening one
    s, e = tidy_span(text, 0, 3)
    assert text[s:e] == "条例"


def test_tidy_span_of_only_separators_is_empty() -> None:
    text = "甲，。、乙"
    s, e = tidy_span(text, 1, 4)
    assert e <= s


def test_calibration_is_a_monotone_probability() -> None:
    cal = Calibration(scale=0.7, bias=-1.2)
    margins = np.linspace(-30, 30, 121)
    probs = [cal.probability(float(m)) for m in margins]
    assert all(0.0 < p < 1.0 for p in probs)
    assert all(a < b for a, b in itertools.pairwise(probs))
    assert cal.probability(1.2 / 0.7) == pytest.approx(0.5)
    assert cal.probability(2.0) == pytest.approx(1 / (1 + math.exp(-(0.7 * 2.0 - 1.2))))


def test_calibration_survives_huge_margins() -> None:
    cal = Calibration(scale=1.0, bias=0.0)
    assert cal.probability(1e6) == pytest.approx(1.0)
    assert cal.probability(-1e6) == pytest.approx(0.0)
    assert math.isfinite(cal.probability(-1e6))
    assert cal.probability(-float("inf")) == 0.0
