"""Metrics and question files of qa.eval, with every expected number worked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qa.eval.latency import percentile
from qa.eval.metrics import (
    answer_in_text,
    cmrc_em,
    cmrc_f1,
    detect_language,
    exact_match,
    f1,
    is_no_answer,
    normalize_answer_en,
    normalize_answer_zh,
    squad_em,
    squad_f1,
)
from qa.eval.question_files import QAExample, load_examples, load_squad_paragraphs

QA_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "qa"

# --- CMRC 2018 (Chinese) --------------------------------------------------------------------------


def test_identical_answer_is_exact() -> None:
    assert cmrc_em("3.46%", ["3.46%"]) == 1.0
    assert cmrc_f1("3.46%", ["3.46%"]) == 1.0


def test_percent_sign_is_not_official_punctuation() -> None:
    # The official CMRC 2018 list is -:_*^/\~`+= plus full-width marks; "%" is not on it, so
    # "3.46" != "3.46%" and EM is 0.
    assert cmrc_em("3.46", ["3.46%"]) == 0.0
    # Tokens: pred ["3.46"], gold ["3.46", "%"] (nltk splits "%" off the number).
    # LCS = 1; P = 1/1, R = 1/2; F1 = 2 * 1 * 0.5 / 1.5 = 2/3.
    assert cmrc_f1("3.46", ["3.46%"]) == pytest.approx(2 / 3)


def test_number_with_chinese_unit_partial_f1() -> None:
    # pred "448.53亿元" → ["448.53", "亿", "元"] (3 tokens); gold "448.53" → ["448.53"] (1 token).
    # LCS = 1; P = 1/3, R = 1/1; F1 = 2 * (1/3) * 1 / (4/3) = 0.5.
    assert cmrc_f1("448.53亿元", ["448.53"]) == pytest.approx(0.5)
    # Swapped: P = 1/1, R = 1/3; F1 is symmetric, still 0.5.
    assert cmrc_f1("448.53", ["448.53亿元"]) == pytest.approx(0.5)
    assert cmrc_em("448.53", ["448.53亿元"]) == 0.0


def test_long_prediction_around_the_answer() -> None:
    # pred tokens: 规模以上 (4) + “ dropped + 小巨人 (3) + ” dropped + 工业企业营业收入 (8)
    #              + "448.53", 亿, 元 (3) = 18 tokens; gold "448.53亿元" = 3 tokens.
    # LCS = 3; P = 3/18 = 1/6, R = 3/3 = 1; F1 = 2 * (1/6) / (7/6) = 2/7.
    prediction = "规模以上“小巨人”工业企业营业收入448.53亿元"
    assert cmrc_f1(prediction, ["448.53亿元"]) == pytest.approx(2 / 7)


def test_mixed_chinese_english_answer() -> None:
    # "GPU芯片" → ["gpu", "芯", "片"] (3 tokens: the Latin run is one word); gold "芯片" → 2 tokens.
    # LCS = 2; P = 2/3, R = 2/2; F1 = 2 * (2/3) * 1 / (5/3) = 4/5.
    assert cmrc_f1("GPU芯片", ["芯片"]) == pytest.approx(0.8)
    assert cmrc_em("GPU芯片", ["芯片"]) == 0.0
    # Lower-casing: "GPU芯片" and "gpu芯片" normalise to the same string.
    assert cmrc_em("GPU芯片", ["gpu芯片"]) == 1.0
    # The Latin run is one token, not three letters: "gp芯片" vs "gpu芯片" shares only 芯片.
    # pred ["gp", 芯, 片], gold ["gpu", 芯, 片]; LCS = 2; P = R = 2/3; F1 = 2/3.
    assert cmrc_f1("GP芯片", ["GPU芯片"]) == pytest.approx(2 / 3)


def test_f1_uses_longest_common_substring_not_subsequence() -> None:
    # pred 厦门市集美区 (6 tokens), gold 厦门集美 (4 tokens). Common subsequence 厦门集美 has 4
    # tokens, but the longest common *substring* is 厦门 or 集美 = 2.
    # P = 2/6 = 1/3, R = 2/4 = 1/2; F1 = 2 * (1/6) / (5/6) = 2/5.
    assert cmrc_f1("厦门市集美区", ["厦门集美"]) == pytest.approx(0.4)


def test_official_punctuation_is_removed() -> None:
    # 《》 are on the official list, so the book-title marks do not count.
    title = "《1985年—2000年厦门经济社会发展战略》"
    assert cmrc_em(title, ["1985年—2000年厦门经济社会发展战略"]) == 1.0
    assert normalize_answer_zh("“揭榜挂帅”与“企业出题”") == "揭榜挂帅与企业出题"
    assert normalize_answer_zh("  A-B：c  ") == "abc"
    # The em dash "—" (U+2014) is not on the list (only the full-width hyphen "－" is).
    assert cmrc_em("1985年2000年", ["1985年—2000年"]) == 0.0
    assert cmrc_em("1985年2000年", ["1985年－2000年"]) == 1.0


def test_punctuation_only_prediction_scores_zero() -> None:
    # "，。" normalises to nothing: no tokens, LCS = 0, F1 = 0; "" != "芯片", EM = 0.
    assert cmrc_f1("，。", ["芯片"]) == 0.0
    assert cmrc_em("，。", ["芯片"]) == 0.0


# --- SQuAD v1.1 (English) -------------------------------------------------------------------------


def test_squad_articles_and_punctuation() -> None:
    assert normalize_answer_en("The  Cat, sat.") == "cat sat"
    assert squad_em("The cat", ["cat"]) == 1.0
    # pred ["cat", "sat"], gold ["cat"]; common 1; P = 1/2, R = 1; F1 = 2 * 0.5 / 1.5 = 2/3.
    assert squad_f1("the cat sat", ["a cat"]) == pytest.approx(2 / 3)
    # Bag of tokens: order does not matter. pred [sat, cat], gold [cat, sat] → F1 = 1, EM = 0.
    assert squad_f1("sat cat", ["cat sat"]) == 1.0
    assert squad_em("sat cat", ["cat sat"]) == 0.0
    # Unlike CMRC, SQuAD drops "%" and ".": "3.46%" → "346", so "3.46" matches.
    assert squad_em("3.46", ["3.46%"]) == 1.0


# --- Language-aware entry points ------------------------------------------------------------------


def test_detect_language() -> None:
    assert detect_language("GPU芯片") == "zh"
    assert detect_language("國家") == "zh"  # Traditional characters count too
    assert detect_language("The cat") == "en"
    assert detect_language("3.46%") == "en"


def test_metric_follows_the_language_of_the_golds() -> None:
    # English golds → SQuAD: the article is dropped, EM = 1.
    assert exact_match("The cat", ["cat"]) == 1.0
    # Chinese gold → CMRC: "%" counts, EM = 0; with SQuAD it would be 1.
    assert exact_match("3.46", ["3.46%", "百分之3.46"]) == 0.0
    # language forces the metric: a Latin-only gold in a Chinese data set is scored like CMRC.
    assert exact_match("3.46", ["3.46%"], language="zh") == 0.0
    assert exact_match("3.46", ["3.46%"]) == 1.0
    assert f1("3.46", ["3.46%"], language="zh") == pytest.approx(2 / 3)


def test_max_over_gold_answers() -> None:
    assert exact_match("芯片", ["GPU芯片", "芯片"]) == 1.0
    # Gold 1 "448.53": F1 0.5 (see above).
    # Gold 2 "营业收入448.53亿元" → 4 + 3 = 7 tokens; pred 3 tokens; LCS = 3;
    # P = 3/3 = 1, R = 3/7; F1 = 2 * (3/7) / (10/7) = 6/10. Max = 0.6.
    assert f1("448.53亿元", ["448.53", "营业收入448.53亿元"]) == pytest.approx(0.6)
    # English: pred [cat, sat]; gold "dog" → 0, gold "the cat" → [cat], F1 2/3. Max = 2/3.
    assert f1("the cat sat", ["dog", "the cat"]) == pytest.approx(2 / 3)


@pytest.mark.parametrize("metric", [exact_match, f1, cmrc_em, cmrc_f1, squad_em, squad_f1])
def test_no_answer_handling(metric) -> None:
    # Unanswerable (no golds): an empty prediction is right, any text is wrong.
    assert metric("", []) == 1.0
    assert metric(None, []) == 1.0
    assert metric("  \n", []) == 1.0
    assert metric("厦门", []) == 0.0
    # Blank gold strings are not answers.
    assert metric("", ["", " "]) == 1.0
    # Answerable: an empty prediction scores 0.
    assert metric("", ["厦门"]) == 0.0
    assert metric(None, ["cat"]) == 0.0


def test_is_no_answer() -> None:
    assert is_no_answer(None)
    assert is_no_answer(" \t")
    assert not is_no_answer("厦门")


def test_golds_must_be_a_list() -> None:
    with pytest.raises(TypeError):
        f1("芯片", "芯片")  # type: ignore[arg-type]


# --- answer_in_text -------------------------------------------------------------------------------


def test_answer_in_text_ignores_whitespace_and_line_breaks() -> None:
    passage = "目前，厦门集聚317家私募基金\n管理人，管理基金2001只"
    assert answer_in_text("317家私募基金管理人", passage)
    assert answer_in_text("317 家私募基金管理人", passage)
    assert answer_in_text("厦门集聚\u3000317家", passage)  # ideographic space
    assert not answer_in_text("318家", passage)
    assert not answer_in_text("   ", passage)
    assert not answer_in_text("", passage)


# --- Data loading ---------------------------------------------------------------------------------


def _squad_file(tmp_path: Path) -> Path:
    data = {
        "version": "v1.1",
        "data": [
            {
                "title": "厦门",
                "paragraphs": [
                    {
                        "id": "P1",
                        "context": "厦门集聚317家私募基金管理人。",
                        "qas": [
                            {
                                "id": "q1",
                                "question": "厦门集聚了多少家私募基金管理人？",
                                "answers": [
                                    {"text": "317家", "answer_start": 4},
                                    {"text": "317家", "answer_start": 4},
                                    {"text": "317", "answer_start": 4},
                                ],
                            }
                        ],
                    },
                    {
                        "context": "天马微电子自2011年落户厦门。",
                        "qas": [
                            {"id": "q2", "question": "天马何时落户厦门？", "answers": []},
                            {"id": "q3", "question": "", "answers": []},  # blank: skipped
                        ],
                    },
                ],
            },
            {
                "title": "duplicate",
                "paragraphs": [{"context": "厦门集聚317家私募基金管理人。", "qas": []}],
            },
        ],
    }
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_load_squad_examples_keep_their_paragraph(tmp_path: Path) -> None:
    examples = load_examples(_squad_file(tmp_path))
    assert examples == [
        QAExample(
            id="q1",
            question="厦门集聚了多少家私募基金管理人？",
            answers=("317家", "317"),  # duplicates dropped, order kept
            context="厦门集聚317家私募基金管理人。",
            title="厦门",
        ),
        QAExample(
            id="q2",
            question="天马何时落户厦门？",
            answers=(),
            context="天马微电子自2011年落户厦门。",
            title="厦门",
        ),
    ]


def test_load_squad_paragraphs_dedupes_contexts(tmp_path: Path) -> None:
    assert load_squad_paragraphs(_squad_file(tmp_path)) == [
        ("P1", "厦门集聚317家私募基金管理人。"),
        ("p0000_001", "天马微电子自2011年落户厦门。"),
    ]


def test_load_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "dev.jsonl"
    lines = [
        {"id": "d01", "question": "厦门以什么为核载体？", "answers": ["科学城"]},
        {"id": "du1", "question": "厦门今年的GDP是多少？", "answers": []},
    ]
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    path.write_text(text + "\n\n", encoding="utf-8")
    assert load_examples(path) == [
        QAExample(id="d01", question="厦门以什么为核载体？", answers=("科学城",)),
        QAExample(id="du1", question="厦门今年的GDP是多少？", answers=()),
    ]


def test_single_line_jsonl_with_json_suffix(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text('{"id": 7, "question": "谁？", "answers": ["郑南峰"]}\n', encoding="utf-8")
    assert load_examples(path) == [QAExample(id="7", question="谁？", answers=("郑南峰",))]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"id": "a", "question": "q", "answers": ["x"]}\n{oops\n', "line 2"),
        ("noanswers.jsonl", '{"id": "a", "question": "q"}\n', "'answers' must be a list"),
        ("noid.jsonl", '{"question": "q", "answers": []}\n', "missing 'id'"),
        ("dup.jsonl", '{"id": "a", "question": "q", "answers": []}\n' * 2, "more than once"),
        ("empty.jsonl", "\n", "no questions"),
        ("list.json", "[1, 2]", "expected SQuAD-format"),
        ("squad.json", '{"data": [{"paragraphs": [{"qas": []}]}]}', "no 'context'"),
    ],
)
def test_malformed_files_name_the_file(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as error:
        load_examples(path)
    assert name in str(error.value)


def test_paragraphs_need_squad_format(tmp_path: Path) -> None:
    path = tmp_path / "dev.jsonl"
    path.write_text('{"id": "a", "question": "q", "answers": []}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"dev\.jsonl"):
        load_squad_paragraphs(path)


@pytest.mark.skipif(not QA_DATA.is_dir(), reason="shared QA data not available")
def test_real_cmrc_dev_file_loads_and_golds_score_perfectly() -> None:
    examples = load_examples(QA_DATA / "cmrc2018_dev.json")
    assert len(examples) == 3219
    assert all(e.context and e.answers for e in examples)
    assert all(exact_match(e.answers[0], e.answers, language="zh") == 1.0 for e in examples)
    assert len(load_squad_paragraphs(QA_DATA / "cmrc2018_dev.json")) == 848


# --- percentile -----------------------------------------------------------------------------------


@pytest.mark.parametrize("q", [0, 12.5, 50, 95, 100])
def test_percentile_matches_numpy(q: float) -> None:
    values = [120.0, 3.0, 57.5, 8.0, 8.0, 41.0, 99.9]
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_by_hand() -> None:
    # Sorted [10, 20, 30, 40]; p50 sits at position 1.5 → 20 + 0.5 * (30 - 20) = 25.
    assert percentile([40, 10, 30, 20], 50) == 25.0
    # p95: position 0.95 * 3 = 2.85 → 30 + 0.85 * 10 = 38.5.
    assert percentile([40, 10, 30, 20], 95) == pytest.approx(38.5)
    assert percentile([7.0], 95) == 7.0


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)
