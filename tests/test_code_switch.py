"""Code-switched training questions: the Chinese→English dictionary, the switched question, the
copies added to training and to the held-out split."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from qa.training import SpanExample, TrainConfig, load_training_examples
from qa.training.code_switch import ChineseToEnglish, code_switched, code_switched_copies

ENTRIES = [
    ("厦门", ["Xiamen or Amoy, city in Fujian"]),
    ("人口", ["population"]),
    ("张", ["surname Zhang", "to open up"]),  # the surname explains; the second sense translates
    ("导演", ["(film etc) director", "to direct"]),
    ("哈哈", ["see 哈哈大笑"]),  # a cross-reference, not a translation
]


def dictionary() -> ChineseToEnglish:
    return ChineseToEnglish(ENTRIES)


def test_the_dictionary_keeps_the_first_translating_sense_in_its_case() -> None:
    d = dictionary()
    assert d.english("厦门") == "Xiamen"
    assert d.english("人口") == "population"
    assert d.english("张") == "open up"
    assert d.english("导演") == "director"
    assert d.english("哈哈") is None
    assert d.english("多少") == "how many"  # interrogatives come from the built-in table


def test_every_known_word_is_switched_at_rate_one_and_none_at_zero() -> None:
    d, rng = dictionary(), random.Random(0)
    assert code_switched("厦门的人口是多少？", d, rng, 1.0) == "Xiamen of population is how many?"
    assert code_switched("厦门的人口是多少？", d, rng, 0.0) == "厦门的人口是多少？"
    assert code_switched("今天天气好", d, rng, 1.0) == "今天天气好"  # nothing it knows


def _example(i: int, question: str, language: str = "zh") -> SpanExample:
    return SpanExample(
        id=f"q{i}",
        question=question,
        context="厦门的人口是五百万。",
        answer_start=6,
        answer_text="五百万",
        paragraph_key=f"f:{i}:0",
        language=language,
    )


def test_copies_are_made_for_the_asked_share_of_chinese_questions_only() -> None:
    chinese = [_example(i, "厦门的人口是多少？") for i in range(400)]
    english = [_example(400 + i, "What is the population?", "en") for i in range(50)]
    copies = code_switched_copies(
        chinese + english, dictionary(), fraction=0.25, rng=random.Random(3)
    )
    assert 70 <= len(copies) <= 130  # about a quarter of 400
    assert all(c.language == "zh-en" and c.id.endswith(":cs") for c in copies)
    assert all(c.question != "厦门的人口是多少？" for c in copies)
    assert {c.answer_text for c in copies} == {"五百万"}  # the span is the original's
    assert code_switched_copies(chinese, None, fraction=0.5, rng=random.Random(0)) == []
    assert code_switched_copies(chinese, dictionary(), fraction=0.0, rng=random.Random(0)) == []


def test_training_data_gets_copies_in_training_and_held_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qa.training.code_switch as code_switch

    monkeypatch.setattr(code_switch, "load_dictionary", dictionary)
    paragraphs = [
        {
            "context": "厦门的人口是五百万。",
            "qas": [
                {
                    "id": f"p{i}",
                    "question": "厦门的人口是多少？",
                    "answers": [{"text": "五百万", "answer_start": 6}],
                }
            ],
        }
        for i in range(200)
    ]
    (tmp_path / "zh_train.json").write_text(
        json.dumps({"data": [{"title": "t", "paragraphs": paragraphs}]}), encoding="utf-8"
    )
    config = TrainConfig(
        data_dir=tmp_path,
        out_dir=tmp_path / "out",
        files=("zh_train.json",),
        holdout_fraction=0.2,
        code_switch_fraction=0.5,
    )
    plain_train, plain_held = load_training_examples(
        TrainConfig(**{**config.__dict__, "code_switch_fraction": 0.0}), random.Random(1)
    )
    train, held = load_training_examples(config, random.Random(1))
    switched = [e for e in train if e.language == "zh-en"]
    held_switched = [e for e in held if e.language == "zh-en"]
    assert len(train) == len(plain_train) + len(switched) and switched
    assert len(held) == len(plain_held) + len(held_switched) and held_switched
    # copies stay on their side of the split: no held-out paragraph is trained on
    assert not {e.paragraph_key for e in train} & {e.paragraph_key for e in held}
