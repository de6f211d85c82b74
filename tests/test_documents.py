from __future__ import annotations

import difflib
import logging
import re
from pathlib import Path

import pytest

from qa.cleaning import clean_text
from qa.corpus import load_documents
from qa.documents import load_document
from qa.loaders import DocumentError, RawText, read_text_file, register_loader, registry

SEED = Path(__file__).resolve().parents[1] / "data" / "corpus" / "000_9f14f984024ffdfa.txt"
HEADINGS = ("一张蓝图绘到底", "雨林生态万物生", "活水奔流育新质")


def paragraphs(text: str) -> list[str]:
    return text.split("\n\n") if text else []


def squash(text: str) -> str:
    return re.sub(r"\s", "", text)


def assert_offsets_map_back(raw: str, text: str, offsets: list[int]) -> None:
    assert len(offsets) == len(text) + 1
    assert offsets == sorted(offsets)
    for i, char in enumerate(text):
        if not char.isspace():
            assert raw[offsets[i]] == char, (i, char)


# --- decoding ---------------------------------------------------------------------------------

GB_TEXT = (
    "厦门全社会研发投入强度从2020年的3.08%提升至2024年的3.46%，企业研发经费支出年均增长13%以上。"
)
BIG5_TEXT = "臺灣的經濟發展與科技創新密不可分，研發投入強度持續提升，產業鏈日趨完整。"


@pytest.mark.parametrize(
    ("encoding", "text"),
    [("gbk", GB_TEXT), ("gb18030", GB_TEXT), ("big5", BIG5_TEXT), ("utf-8-sig", GB_TEXT)],
)
def test_read_text_file_decodes_chinese_encodings(tmp_path, encoding, text):
    path = tmp_path / "doc.txt"
    path.write_bytes(text.encode(encoding))
    assert read_text_file(path) == text


def test_read_text_file_utf16_with_bom(tmp_path):
    path = tmp_path / "doc.txt"
    path.write_bytes(GB_TEXT.encode("utf-16"))
    assert read_text_file(path) == GB_TEXT


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",
        bytes(range(1, 9)) * 40,
    ],
)
def test_read_text_file_rejects_binary(tmp_path, data):
    path = tmp_path / "image.txt"
    path.write_bytes(data)
    with pytest.raises(DocumentError) as info:
        read_text_file(path)
    assert info.value.path == str(path)
    assert "binary" in info.value.reason


# --- cleaning ---------------------------------------------------------------------------------


def test_clean_text_normalises_whitespace_and_controls():
    raw = "  Hello \t world.\r\nSecond\x07 line\u200b here.\r\n\r\n\r\nThird  para.  "
    text, offsets = clean_text(raw)
    assert text == "Hello world.\n\nSecond line here.\n\nThird para."
    assert_offsets_map_back(raw, text, offsets)
    assert offsets[-1] == raw.index("para.") + len("para.")


def test_clean_text_joins_broken_chinese_lines_across_blank_lines():
    raw = "道出了厦门金融服务商的核\n\n心理念。该行自2016年\n与弘信电子建立合作。\n"
    text, offsets = clean_text(raw)
    assert text == "道出了厦门金融服务商的核心理念。该行自2016年与弘信电子建立合作。"
    assert_offsets_map_back(raw, text, offsets)


def test_clean_text_joins_latin_words_with_one_space():
    raw = (
        "The narrowest four-sided display in the world was made\n"
        "by a local manufacturer of panels that has its factory in\n\n"
        "Xiamen, China.\nThe panel is a wide-\nscreen one."
    )
    text, _ = clean_text(raw)
    assert paragraphs(text) == [
        "The narrowest four-sided display in the world was made by a local manufacturer of "
        "panels that has its factory in Xiamen, China.",
        "The panel is a wide-screen one.",
    ]


def test_clean_text_keeps_headings_apart_from_cut_off_lines():
    # The line before the heading was cut off at a page end: gluing it to the heading would
    # create the fake sentence "...大幅提升创新雨林生态万物生善战者，...".
    raw = "引导资源持续向产业需求倾斜，大幅提升创新\n\n雨林生态万物生\n\n善战者，求之于势。\n"
    text, _ = clean_text(raw)
    assert paragraphs(text) == [
        "引导资源持续向产业需求倾斜，大幅提升创新",
        "雨林生态万物生",
        "善战者，求之于势。",
    ]


def test_clean_text_heading_rule_has_limits():
    # A long line without punctuation is a wrapped line, not a heading; Markdown '#' always is.
    raw = "厦门国际银行分行负责人向调研小分队道出了厦门金融服务商的核\n\n心理念。\n# 标题\n正文。"
    text, _ = clean_text(raw)
    assert paragraphs(text) == [
        "厦门国际银行分行负责人向调研小分队道出了厦门金融服务商的核心理念。",
        "# 标题",
        "正文。",
    ]


def test_clean_text_joins_narrow_columns_without_punctuation():
    # Lines of 11 characters with no comma are as wide as the next line: wrapped, not headings.
    raw = "厦门国际银行分行负责人\n\n向调研小分队道出了厦门\n\n金融服务商的核心理念。\n"
    text, _ = clean_text(raw)
    assert text == "厦门国际银行分行负责人向调研小分队道出了厦门金融服务商的核心理念。"


def test_clean_text_closing_quote_after_stop_ends_paragraph():
    raw = "“服务就跟进到哪里。”\n厦门国际银行分行负责人向调研小分队\n道出了核心理念。"
    text, _ = clean_text(raw)
    assert paragraphs(text) == [
        "“服务就跟进到哪里。”",
        "厦门国际银行分行负责人向调研小分队道出了核心理念。",
    ]


def test_clean_text_drops_repeated_and_near_duplicate_paragraphs():
    first = "与服务模式创新同步，在厦门，科技金融产品“财政政策+金融工具”的突出特点。"
    other = "厦门国际银行股份有限公司“金融活水”服务体系，确立“融资创新”为特色。"
    rewrapped = "与服务模式创新同步，在厦门，科技金融产品“财\n\n政政策+金融工具”的突出特点。"
    near = first.replace("突出", "显著")  # two characters changed
    fragment = "科技金融产品“财政政策+金融工具”的突出特点。"  # cut-off piece of ``first``
    raw = "\n\n".join([first, other, rewrapped, near, fragment, other])
    text, offsets = clean_text(raw)
    assert paragraphs(text) == [first, other]
    assert_offsets_map_back(raw, text, offsets)


def test_clean_text_keeps_fuller_paragraph_when_it_contains_an_earlier_one():
    cut = "厦门深化运用“揭榜挂帅”与“企业出题”机制，转变创新驱动方式"
    full = cut + "，大幅提升创新效能。"
    raw = f"{cut}\n\n标题一则\n\n{full}\n"
    text, _ = clean_text(raw)
    assert paragraphs(text) == ["标题一则", full]


@pytest.mark.parametrize(
    "title", ["一张蓝图绘到底", "关于加快培育和发展新质生产力的若干措施实施意见"]
)
def test_clean_text_keeps_heading_that_the_text_cites(title):
    raw = f"{title}\n\n为落实《{title}》，以战略定力确保科技创新永远站在前端。\n"
    text, _ = clean_text(raw)
    assert paragraphs(text)[0] == title
    assert len(paragraphs(text)) == 2


# --- loading ----------------------------------------------------------------------------------


def test_load_document_fields(tmp_path):
    path = tmp_path / "报告 2024.md"
    raw = "# 年度报告\n\n第一段的内容在这里，\n继续在这里。\n\n第一段的内容在这里，继续在这里。\n"
    path.write_text(raw, encoding="utf-8")
    doc = load_document(path)
    assert doc.id == "报告_2024"
    assert doc.title == "年度报告"
    assert doc.source == str(path)
    assert doc.text == "# 年度报告\n\n第一段的内容在这里，继续在这里。"
    assert doc.dropped_paragraphs == 1
    assert len(doc.offsets) == len(doc.text) + 1
    assert raw[doc.original_offset(doc.text.index("继续"))] == "继"


def test_title_falls_back_to_stem(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("这是一个完整的句子，不是标题。\n", encoding="utf-8")
    assert load_document(path).title == "notes"


def test_registered_loader_with_pages(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_LOADERS", dict(registry._LOADERS))
    raw = "第一页的内容。\n\n\n第二页的内容。\n"

    def fake_pdf(path: Path) -> RawText:
        return RawText(raw, page_starts=(0, raw.index("第二页")))

    register_loader("PDF", fake_pdf)
    path = tmp_path / "scan.pdf"
    path.write_bytes(b"%PDF")
    doc = load_document(path)
    assert ".pdf" in registry.registered_suffixes()
    assert doc.page_at(0) == 1
    assert doc.page_at(doc.text.index("第二页")) == 2
    assert doc.page_at(doc.text.index("第二页") - 1) == 1


def test_load_document_unknown_suffix(tmp_path):
    path = tmp_path / "data.xyz"
    path.write_text("text", encoding="utf-8")
    with pytest.raises(DocumentError, match="no loader"):
        load_document(path)


def test_load_documents_walks_folders_and_skips_bad_files(tmp_path, caplog):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "a.txt").write_text("甲文件。", encoding="utf-8")
    (tmp_path / "sub" / "b.md").write_text("乙文件。", encoding="utf-8")
    (tmp_path / "sub" / "deeper" / "a.txt").write_bytes(GB_TEXT.encode("gbk"))
    (tmp_path / "sub" / "c.bin").write_bytes(b"\x00\x01")
    (tmp_path / "sub" / "broken.txt").write_bytes(b"\x00binary")
    (tmp_path / ".hidden" / "d.txt").write_text("丁文件。", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="qa.corpus"):
        docs = list(load_documents([tmp_path, tmp_path / "missing.txt"]))
    assert [d.text for d in docs] == ["甲文件。", "乙文件。", GB_TEXT]
    assert [d.id for d in docs] == ["a", "b", "a-2"]
    assert "broken.txt" in caplog.text
    assert "missing.txt" in caplog.text


# --- the real seed file -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed():
    return load_document(SEED)


def test_seed_joins_words_broken_across_lines(seed):
    raw = SEED.read_text(encoding="utf-8")
    assert "核\n\n心理念" in raw
    position = seed.text.index("核心理念")
    # The kept occurrence really comes from a join: the original has a line break inside it.
    start, end = seed.offsets[position], seed.offsets[position + 3] + 1
    assert squash(raw[start:end]) == "核心理念" != raw[start:end]
    for para in paragraphs(seed.text):
        assert not para.startswith(("心理念", "政政策")), para
        assert not para.endswith(("的核", "产品“财")), para


def test_seed_excerpt_joins_cai_zheng(seed):
    raw = SEED.read_text(encoding="utf-8")
    start = raw.index("与服务模式创新同步，在厦门，科技金融产品“财\n")
    excerpt = raw[start : raw.index("跟得紧”。", start) + 5]
    text, offsets = clean_text(excerpt)
    assert "财政政策" in text
    assert paragraphs(text) == [squash(excerpt)]
    assert_offsets_map_back(excerpt, text, offsets)


def test_seed_offsets_map_back(seed):
    raw = SEED.read_text(encoding="utf-8")
    assert_offsets_map_back(raw, seed.text, list(seed.offsets))


def test_seed_has_no_duplicate_paragraphs(seed):
    raw = SEED.read_text(encoding="utf-8")
    kept = [re.sub(r"\W", "", p) for p in paragraphs(seed.text)]
    for i, a in enumerate(kept):
        for b in kept[:i]:
            assert a != b
            if min(len(a), len(b)) >= 16:
                assert a not in b and b not in a
                assert difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() < 0.9
    dropped = seed.dropped_paragraphs
    assert dropped > 0
    # Nothing lost but duplicates: every dropped paragraph's text is still somewhere in the doc.
    assert raw.count("企业成长到哪里，服务就跟进到哪里。") > 1
    assert seed.text.count("企业成长到哪里，服务就跟进到哪里。") == 1


def test_seed_headings_stand_alone(seed):
    paras = paragraphs(seed.text)
    assert seed.title == "鹭江弄潮——厦门锻造新质生产力观察"
    for heading in HEADINGS:
        assert heading in paras
        glued = [
            p for p in paras if p != heading and (p.startswith(heading) or p.endswith(heading))
        ]
        assert not glued
