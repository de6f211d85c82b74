from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import pytest

from qa.chunking import chunk, split_sentences
from qa.cleaning import clean_text
from qa.documents import load_document
from qa.schema import Document, Passage

SEED = Path(__file__).resolve().parents[1] / "data" / "corpus" / "000_9f14f984024ffdfa.txt"


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def squash(text: str) -> str:
    return re.sub(r"\s", "", text)


def covered(text: str, passages: list[Passage]) -> set[int]:
    return {i for p in passages for i in range(p.start, p.end)}


def make_doc(text: str, **kwargs) -> Document:
    return Document(id="doc", title="标题", text=text, **kwargs)


# --- sentences --------------------------------------------------------------------------------


def test_closing_quote_stays_with_its_sentence():
    text = "他说：“创新链如同接力赛。”行业人士这样形容。真的吗？！当然……还有呢"
    assert sentences(text) == [
        "他说：“创新链如同接力赛。”",
        "行业人士这样形容。",
        "真的吗？！",
        "当然……",
        "还有呢",
    ]


def test_semicolon_and_half_width_marks_in_chinese():
    text = "提出“投结合”；推动升级!效果很好?是的"
    assert sentences(text) == ["提出“投结合”；", "推动升级!", "效果很好?", "是的"]


def test_decimals_and_abbreviations_do_not_split():
    text = "强度从3.08%提升至3.46%。Growth was 3.46 percent, e.g. in Xiamen. Dr. Wang agreed! Why?"
    assert sentences(text) == [
        "强度从3.08%提升至3.46%。",
        "Growth was 3.46 percent, e.g. in Xiamen.",
        "Dr. Wang agreed!",
        "Why?",
    ]


def test_paragraph_break_ends_a_sentence_and_spans_are_stripped():
    text = "  雨林生态万物生 \n\n善战者，求之于势。 \n \n end without stop\nstill same  "
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == [
        "雨林生态万物生",
        "善战者，求之于势。",
        "end without stop\nstill same",
    ]
    in_spans = {i for s, e in spans for i in range(s, e)}
    assert {i for i, c in enumerate(text) if not c.isspace()} <= in_spans


# --- chunking ---------------------------------------------------------------------------------


def test_passages_are_exact_slices_and_cover_everything():
    text = "\n\n".join(
        f"第{i}段。" + "".join(f"这是第{i}段的第{j}句话，内容用来测试分块。" for j in range(i % 7))
        for i in range(12)
    )
    doc = make_doc(text)
    passages = chunk(doc, max_chars=120, min_chars=40)
    for p in passages:
        assert p.text == doc.text[p.start : p.end] == p.text.strip()
        assert len(p.text) <= 120
        assert p.doc_id == "doc" and p.title == "标题"
    missing = {i for i, c in enumerate(text) if not c.isspace()} - covered(text, passages)
    assert not missing
    assert [p.start for p in passages] == sorted(p.start for p in passages)


def test_overlap_within_a_paragraph_only():
    para_a = "".join(f"甲段第{j}句话，用来测试重叠。" for j in range(10))
    para_b = "".join(f"乙段第{j}句话，用来测试重叠。" for j in range(10))
    doc = make_doc(para_a + "\n\n" + para_b)
    passages = chunk(doc, max_chars=60, min_chars=10)
    for before, after in pairwise(passages):
        same_paragraph = "\n\n" not in doc.text[before.start : after.end]
        if same_paragraph:
            last_sentence = sentences(before.text)[-1]
            assert after.text.startswith(last_sentence)
            assert after.start < before.end
        else:
            assert after.start > before.end
    assert any("\n\n" in doc.text[a.start : b.end] for a, b in pairwise(passages))


def test_no_overlap_when_disabled():
    text = "".join(f"第{j}句话在这里。" for j in range(30))
    passages = chunk(make_doc(text), max_chars=50, min_chars=10, overlap_sentences=0)
    assert all(b.start >= a.end for a, b in pairwise(passages))
    assert "".join(p.text for p in passages) == text


def test_long_sentence_is_cut_at_clause_boundary():
    clauses = [f"第{j}个分句讲的是厦门的产业" for j in range(12)]
    text = "，".join(clauses) + "。"
    passages = chunk(make_doc(text), max_chars=50, min_chars=10)
    assert len(passages) > 1
    for p in passages:
        assert len(p.text) <= 50
    for p in passages[:-1]:
        assert p.text.endswith("，")


def test_hard_cut_does_not_split_numbers():
    text = "营" * 45 + "业收入448.53亿元" + "增" * 40 + "。"
    passages = chunk(make_doc(text), max_chars=50, min_chars=10)
    assert all(len(p.text) <= 50 for p in passages)
    assert any("448.53亿元" in p.text for p in passages)


def test_small_paragraphs_are_merged_with_neighbours():
    heading = "雨林生态万物生"
    body = "善战者，求之于势。厦门产业发展的跃迁之道，在于以链主动能牵引产业生态。"
    doc = make_doc(f"{heading}\n\n{body}\n\n{heading}二\n\n{body}")
    passages = chunk(doc, max_chars=300, min_chars=80)
    assert all(len(p.text) >= 80 for p in passages[:-1])
    assert passages[0].text.startswith(f"{heading}\n\n善战者")


def test_passages_never_cross_a_gap():
    text = "第一段。\n\n第二段接着第一段。\n\n第三段在丢弃的重复之后。"
    gap = text.index("第三段")
    doc = make_doc(text, paragraph_gaps=(gap,))
    passages = chunk(doc, max_chars=300, min_chars=80)
    assert not any(p.start < gap < p.end for p in passages)
    assert len(chunk(make_doc(text), max_chars=300, min_chars=80)) == 1


def test_ids_are_deterministic_and_positions_map_back():
    raw = "\n\n标题行\n\n第一句在这里，\n\n继续写完。第二句。\n"
    text, offsets = clean_text(raw)
    assert text == "标题行\n\n第一句在这里，继续写完。第二句。"
    doc = make_doc(text, offsets=tuple(offsets), pages=((0, 3),))
    first = chunk(doc)
    assert first == chunk(doc)
    assert first[0].id == Passage.make_id("doc", first[0].start, first[0].text)
    assert {p.id for p in chunk(Document(id="other", title="", text=text))}.isdisjoint(
        {p.id for p in first}
    )
    for p in first:
        assert squash(raw[p.orig_start : p.orig_end]) == squash(p.text)
        assert p.page == 3


@pytest.mark.parametrize(
    "kwargs", [{"max_chars": 0}, {"min_chars": 400}, {"overlap_sentences": -1}]
)
def test_invalid_settings(kwargs):
    with pytest.raises(ValueError):
        chunk(make_doc("一句话。"), **kwargs)


def test_empty_document():
    assert chunk(make_doc("")) == []


# --- the real seed file -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed():
    return load_document(SEED)


@pytest.mark.parametrize(("max_chars", "min_chars"), [(300, 80), (150, 50), (500, 150)])
def test_seed_passages_bounded_covering_and_citable(seed, max_chars, min_chars):
    raw = SEED.read_text(encoding="utf-8")
    passages = chunk(seed, max_chars=max_chars, min_chars=min_chars)
    assert passages
    missing = {i for i, c in enumerate(seed.text) if not c.isspace()} - covered(seed.text, passages)
    assert not missing
    for p in passages:
        assert 0 < len(p.text) <= max_chars
        assert p.text == seed.text[p.start : p.end]
        # The cited span of the original file holds exactly this text, line breaks aside.
        assert squash(raw[p.orig_start : p.orig_end]) == squash(p.text)
    assert len({p.id for p in passages}) == len(passages)


def test_seed_passages_hold_no_duplicated_paragraph(seed):
    for p in chunk(seed):
        paras = [squash(x) for x in p.text.split("\n\n")]
        assert len(paras) == len(set(paras))
        for sentence in sentences(p.text):
            if len(sentence) >= 16:
                assert p.text.count(sentence) == 1, sentence


def test_seed_headings_are_not_fake_sentences(seed):
    all_sentences = sentences(seed.text)
    for heading in ("一张蓝图绘到底", "雨林生态万物生", "活水奔流育新质"):
        assert heading in all_sentences
        assert not [s for s in all_sentences if s != heading and s.startswith(heading)]
        assert not [s for s in all_sentences if s != heading and s.endswith(heading)]
