"""PDF, DOCX and HTML loaders, legacy encodings, folder patterns and the per-file report.

Every file is made in the test: PDFs with reportlab (Chinese through its built-in CID font
``STSong-Light``, so no font file is needed), DOCX with python-docx, HTML as strings.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FakeEncoder

from qa.chunking import chunk
from qa.cli import cli
from qa.corpus import load_documents
from qa.documents import load_document
from qa.ingest import FileReport, IngestReport, PathFilter, glob_regex
from qa.loaders import DocumentError, read_text_file, registered_suffixes
from qa.loaders import pdf as pdf_loader


def scan_documents(paths: list[Path], **patterns: list[str]) -> tuple[list, IngestReport]:
    """The documents under ``paths`` and the per-file report of loading them."""
    report = IngestReport()
    return list(load_documents(paths, report=report, **patterns)), report


# --- making files -----------------------------------------------------------------------------


def make_pdf(path: Path, pages: list[list[str]], *, password: str | None = None) -> Path:
    """One PDF page per item, one drawn line per string, in a CJK font reportlab ships."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    page = canvas.Canvas(str(path), encrypt=password)
    for lines in pages:
        page.setFont("STSong-Light", 11)
        for row, line in enumerate(lines):
            page.drawString(50, 790 - 16 * row, line)
        page.showPage()
    page.save()
    return path


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("财务处年度预算说明", level=1)
    document.add_paragraph("本说明介绍各部门二〇二四年度的预算安排。")
    table = document.add_table(rows=3, cols=3)
    for r, row in enumerate([["部门", "人数", "预算"], ["后勤处", "45", "380万元"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    merged = table.cell(2, 0).merge(table.cell(2, 2))
    merged.text = "合计另行公布"
    document.add_paragraph("预算执行情况每季度通报一次。")
    document.save(str(path))
    return path


THREE_PAGES = [
    [
        "厦门港务集团年度报告",
        "第一部分介绍集团概况。集团总部位于厦门市湖",
        "里区，员工总数为三千二百人。",
    ],
    ["第二部分介绍经营情况。全年集装箱吞吐量达", "到一千二百五十五万标准箱，同比增长三个百分点。"],
    ["第三部分介绍安全生产。全年开展应急演练四十", "六次，未发生重大安全事故。"],
]


# --- PDF --------------------------------------------------------------------------------------


def test_pdf_passages_carry_their_page_numbers(tmp_path):
    doc = load_document(make_pdf(tmp_path / "report.pdf", THREE_PAGES))
    # Lines wrapped inside a word are joined, across the page's line breaks.
    assert "员工总数为三千二百人" in doc.text
    assert "吞吐量达到一千二百五十五万标准箱" in doc.text
    assert [number for _, number in doc.pages] == [1, 2, 3]
    expected = {"员工总数": 1, "集装箱吞吐量": 2, "应急演练": 3}
    for marker, page in expected.items():
        assert doc.page_at(doc.text.index(marker)) == page
    # The product's passage sizes: all three short pages would fit in one passage, but a
    # passage does not run on into the next page, so each is cited by its own page.
    passages = chunk(doc, max_chars=300, min_chars=80)
    starts = {}
    for passage in passages:
        for marker in expected:
            if marker in passage.text:
                starts[marker] = passage.page
                # A passage is cited by the page it starts on.
                assert passage.page == doc.page_at(passage.start)
    assert starts == expected


def test_encrypted_and_broken_pdfs_are_skipped_with_reasons(tmp_path, caplog):
    folder = tmp_path / "corpus"
    folder.mkdir()
    make_pdf(folder / "good.pdf", THREE_PAGES[:1])
    make_pdf(folder / "secret.pdf", [["机密：明年的招标底价。"]], password="s3cret")
    whole = make_pdf(tmp_path / "whole.pdf", THREE_PAGES).read_bytes()
    (folder / "truncated.pdf").write_bytes(whole[: len(whole) // 2])
    (folder / "garbage.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(1, 256)) * 20)
    (folder / "renamed.pdf").write_bytes(b"<html><body>not a PDF</body></html>")
    (folder / "notes.txt").write_text("会议纪要：下周一召开例会。", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="qa.corpus"):
        docs, report = scan_documents([folder])
    assert sorted(d.id for d in docs) == ["good", "notes"]
    assert "员工总数" in next(d for d in docs if d.id == "good").text
    skipped = {Path(f.path).name: f for f in report.skipped}
    assert {name: f.reason for name, f in skipped.items()} == {
        "secret.pdf": "encrypted",
        "truncated.pdf": "broken",
        "garbage.pdf": "broken",
        "renamed.pdf": "broken",
    }
    assert "password" in skipped["secret.pdf"].detail
    assert "no %PDF- header" in skipped["renamed.pdf"].detail
    assert "招标底价" not in caplog.text  # the reason is given, the content never leaks
    assert "secret.pdf" in caplog.text and "truncated.pdf" in caplog.text


def test_pdf_with_only_an_owner_password_is_read(tmp_path):
    """AES "permissions" passwords (no printing, no copying) are common and need no password."""
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=str(make_pdf(tmp_path / "plain.pdf", THREE_PAGES)))
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-256")
    writer.write(str(tmp_path / "locked.pdf"))
    doc = load_document(tmp_path / "locked.pdf")
    assert "应急演练四十六次" in doc.text and len(doc.pages) == 3


def test_pdf_without_a_text_layer_is_empty(tmp_path):
    from reportlab.pdfgen import canvas

    page = canvas.Canvas(str(tmp_path / "scan.pdf"))
    page.rect(50, 50, 400, 600, fill=1)  # a page of ink, like a scanned image, and no text
    page.showPage()
    page.save()
    with pytest.raises(DocumentError, match="no text layer") as error:
        load_document(tmp_path / "scan.pdf")
    assert error.value.kind == "empty"


def test_pdf_progress_is_logged(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(pdf_loader, "PROGRESS_EVERY", 2)
    path = make_pdf(tmp_path / "long.pdf", [[f"第{i}页。"] for i in range(1, 6)])
    with caplog.at_level(logging.INFO, logger="qa.loaders.pdf"):
        load_document(path)
    assert "2/5 pages" in caplog.text and "4/5 pages" in caplog.text


@pytest.mark.slow
def test_500_page_pdf_is_read_in_bounded_memory(tmp_path):
    """Peak memory of extraction stays a small multiple of the text it returns.

    Measured (500 pages of 12 lines, ~200k characters): peak 8-9x the size of the text string
    with the parsed-object cache emptied every 25 pages, 16x without (it grows with the page
    count). The bound, 12x, fails when the cache is kept for the whole file.
    """
    line = "港口吞吐量统计表明集装箱业务持续增长，同比上升。"
    pages = [[f"第{p}页第{r}行：{line}" for r in range(1, 13)] for p in range(1, 501)]
    path = make_pdf(tmp_path / "big.pdf", pages)
    # Imports and pypdf's font tables are a one-time cost of the process, not of this file.
    pdf_loader.load_pdf(make_pdf(tmp_path / "small.pdf", pages[:2]))
    started = time.perf_counter()
    tracemalloc.start()
    try:
        raw = pdf_loader.load_pdf(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - started
    text_size = sys.getsizeof(raw.text)
    assert len(raw.page_starts) == 500
    assert raw.text.count("港口吞吐量") == 500 * 12
    assert "第500页第12行" in raw.text
    print(f"500 pages: {len(raw.text)} chars, peak {peak / text_size:.1f}x text, {elapsed:.1f}s")
    assert peak < 12 * text_size


# --- DOCX -------------------------------------------------------------------------------------


def test_docx_paragraphs_and_tables_in_document_order(tmp_path):
    doc = load_document(make_docx(tmp_path / "budget.docx"))
    paragraphs = doc.text.split("\n\n")
    assert paragraphs == [
        "财务处年度预算说明",
        "本说明介绍各部门二〇二四年度的预算安排。",
        "部门 | 人数 | 预算",
        "后勤处 | 45 | 380万元",
        "合计另行公布",  # merged across three columns: read once
        "预算执行情况每季度通报一次。",
    ]
    assert doc.title == "财务处年度预算说明"


def test_docx_that_is_not_a_package_is_reported(tmp_path):
    (tmp_path / "broken.docx").write_bytes(b"PK\x03\x04 truncated zip")
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100
    (tmp_path / "locked.docx").write_bytes(ole + "EncryptionInfo".encode("utf-16-le"))
    (tmp_path / "old.docx").write_bytes(ole + "WordDocument".encode("utf-16-le"))
    _, report = scan_documents([tmp_path])
    reasons = {Path(f.path).name: (f.reason, f.detail) for f in report.files}
    assert reasons["broken.docx"][0] == "broken"
    assert reasons["locked.docx"] == ("encrypted", "encrypted: a password-protected Word file")
    assert reasons["old.docx"][0] == "broken" and ".doc" in reasons["old.docx"][1]


# --- HTML -------------------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html><head><title>不应出现的标题</title>
<style>.x { color: red } body::after { content: "样式文字" }</style>
<script>var secret = "脚本里的口令"; document.write("脚本输出");</script>
</head>
<body onload="alert('事件处理器')">
<nav><a href="/">首页</a> | <a href="/news">新闻</a></nav>
<h1>图书馆开放时间</h1>
<p onclick="track('点击统计')">总馆周一至周日
   开放，时间为早上8:00至晚上10:00。</p>
<p>R&amp;D 部门 &lt;研究&gt; 资料室&nbsp;在三楼&#65292;编号&#x41;区。</p>
<!-- 注释里的内容 -->
<noscript>请启用脚本</noscript>
<template><p>模板内容</p></template>
<div hidden>隐藏的内容</div>
<table><tr><th>校区</th><th>电话</th></tr><tr><td>思明</td><td>2181234</td></tr></table>
<ul><li>第一项</li><li>第二项</li></ul>
<pre>代码第一行
代码第二行</pre>
<script type="module">console.log("模块脚本")</script>
</body></html>
"""


def test_html_keeps_only_visible_text(tmp_path):
    (tmp_path / "library.html").write_text(PAGE, encoding="utf-8")
    doc = load_document(tmp_path / "library.html")
    for hidden in [
        "脚本",
        "secret",
        "样式文字",
        "color",
        "不应出现的标题",
        "事件处理器",
        "点击统计",
        "注释",
        "请启用脚本",
        "模板内容",
        "隐藏的内容",
        "模块脚本",
    ]:
        assert hidden not in doc.text, hidden
    paragraphs = doc.text.split("\n\n")
    assert paragraphs[0] == "首页 | 新闻"
    assert "图书馆开放时间" in paragraphs
    # A source line break between Chinese characters vanishes; other whitespace is one space.
    assert "总馆周一至周日开放，时间为早上8:00至晚上10:00。" in paragraphs
    assert "R&D 部门 <研究> 资料室 在三楼，编号A区。" in paragraphs
    assert paragraphs[-6:] == [
        "校区 | 电话",
        "思明 | 2181234",
        "第一项",
        "第二项",
        "代码第一行",
        "代码第二行",
    ]


def test_html_charset_declared_or_detected(tmp_path):
    text = "朱镕基同志视察了厦门港，听取了港口建设情况的汇报。"  # 镕 is GBK, not GB2312
    declared = f'<html><head><meta charset="gb2312"></head><body><p>{text}</p></body></html>'
    (tmp_path / "declared.html").write_bytes(declared.encode("gbk"))
    traditional = "朱鎔基同志視察了廈門港，聽取了港口建設情況的匯報。"
    http_equiv = (
        f'<meta http-equiv="Content-Type" content="text/html; charset=big5"><p>{traditional}</p>'
    )
    (tmp_path / "big5.htm").write_bytes(http_equiv.encode("big5"))
    lying = f'<meta charset="utf-8"><p>{text}</p>'  # says UTF-8, is GBK
    (tmp_path / "lying.html").write_bytes(lying.encode("gbk"))
    (tmp_path / "bare.html").write_bytes(f"<p>{text}</p>".encode("gbk"))
    docs = {d.id: d.text for d in load_documents([tmp_path])}
    assert docs["declared"] == text
    assert docs["big5"] == traditional
    assert docs["lying"] == text
    assert docs["bare"] == text


def test_deeply_nested_html_does_not_overflow(tmp_path):
    (tmp_path / "deep.html").write_text("<div>" * 5000 + "深处的文字。" + "</div>" * 5000)
    assert load_document(tmp_path / "deep.html").text == "深处的文字。"


# --- text encodings ---------------------------------------------------------------------------

ENCODED = {
    "gbk": "关于调整职工食堂开放时间的通知：自下月起，午餐时间延长至下午一点半。",
    # Outside GBK: CJK Extension B (𠀀 𪚥), Extension A (䶮), Tibetan and Mongolian letters.
    "gb18030": "生僻字𠀀𪚥䶮登记表：藏文ཀཁ，蒙古文ᠮᠣᠩᠭᠣᠯ。",
    "gb18030_long": "人名用字登记：张𬌗、刘䶮二人已录入系统。"
    + "请各单位核对本单位人员姓名用字。" * 3,
    "big5": "關於調整職工餐廳開放時間的通知：自下月起，午餐時間延長至下午一點半。",
}


@pytest.mark.parametrize("name", ENCODED)
def test_legacy_chinese_encodings_decode_exactly(tmp_path, name):
    text = ENCODED[name]
    data = text.encode(name.split("_")[0])
    if name.startswith("gb18030"):
        with pytest.raises(UnicodeEncodeError):
            text.encode("gbk")  # really outside GBK
    (tmp_path / "notice.txt").write_bytes(data)
    assert read_text_file(tmp_path / "notice.txt") == text


def test_binary_empty_and_unsupported_files_are_reported(tmp_path):
    (tmp_path / "ok.md").write_text("# 标题\n\n正文内容。", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.md").write_bytes(b" \n\t\r\n")
    (tmp_path / "empty.pdf").write_bytes(b"")
    (tmp_path / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    (tmp_path / ".hidden.txt").write_text("隐藏文件。", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main")
    docs, report = scan_documents([tmp_path, tmp_path / "missing.txt"])
    assert [d.id for d in docs] == ["ok"]
    got = {Path(f.path).name: f.reason for f in report.skipped}
    assert got == {
        "binary.txt": "binary",
        "empty.txt": "empty",
        "blank.md": "empty",
        "empty.pdf": "empty",
        "sheet.xlsx": "unsupported",
        "missing.txt": "missing",
    }
    (loaded,) = report.loaded
    assert (loaded.doc_id, loaded.characters, loaded.pages) == ("ok", len(docs[0].text), None)
    counts = report.counts()
    assert counts["files"] == 7 and counts["loaded"] == 1 and counts["skipped"] == 6
    assert counts["skipped_by_reason"]["empty"] == 3
    json.dumps(report.to_dict())  # plain data


# --- include / exclude ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("**/*.pdf", "a.pdf", True),
        ("**/*.pdf", "x/y/a.PDF", True),
        ("**/*.pdf", "x/a.pdf.txt", False),
        ("*.pdf", "x/a.pdf", False),  # the regex alone; PathFilter also tries bare names
        ("drafts/*", "drafts/a.txt", True),
        ("drafts/*", "drafts/sub/a.txt", False),
        ("drafts/**", "drafts/sub/a.txt", True),
        ("report-202?.txt", "report-2024.txt", True),
        ("report-[!0-9].txt", "report-a.txt", True),
        ("report-[!0-9].txt", "report-1.txt", False),
        ("a+b (1).txt", "a+b (1).txt", True),
    ],
)
def test_glob_regex(pattern, path, matches):
    assert bool(glob_regex(pattern).fullmatch(path)) is matches


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "share"
    for name in [
        "policy.txt",
        "reports/2023.txt",
        "reports/drafts/2024.txt",
        "drafts/idea.md",
        "archive/old/memo.txt",
        "data.xlsx",
    ]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"{name}的内容。", encoding="utf-8")
    return root


def _names(root: Path, **patterns) -> tuple[list[str], list[str]]:
    _, report = scan_documents([root], **patterns)

    def relative(file: FileReport) -> str:
        return Path(file.path).relative_to(root).as_posix()

    return [relative(f) for f in report.loaded], [relative(f) for f in report.skipped]


def test_include_and_exclude_patterns(tree):
    loaded, skipped = _names(tree)
    assert len(loaded) == 5 and skipped == ["data.xlsx"]  # unsupported, listed
    loaded, skipped = _names(tree, include=["**/*.txt"])
    assert loaded == [
        "archive/old/memo.txt",
        "policy.txt",
        "reports/2023.txt",
        "reports/drafts/2024.txt",
    ]
    assert skipped == []  # the spreadsheet does not match the include: not listed
    loaded, _ = _names(tree, exclude=["drafts/*"])  # anchored at the folder given
    assert loaded == [
        "archive/old/memo.txt",
        "policy.txt",
        "reports/2023.txt",
        "reports/drafts/2024.txt",
    ]
    loaded, _ = _names(tree, exclude=["drafts", "archive/"])  # bare name: any depth
    assert loaded == ["policy.txt", "reports/2023.txt"]
    loaded, skipped = _names(tree, include=["reports", "*.xlsx"], exclude=["**/drafts/**"])
    assert loaded == ["reports/2023.txt"] and skipped == ["data.xlsx"]
    loaded, _ = _names(tree, include=["*.TXT"])  # case does not matter
    assert len(loaded) == 4


def test_path_filter_ignores_blank_patterns():
    assert not PathFilter.of(["", "  "], None)
    assert PathFilter.of(["*.pdf"], None).accepts("a/b.pdf")


def test_named_files_are_taken_whatever_the_patterns(tree):
    docs = list(load_documents([tree / "drafts" / "idea.md"], include=["*.pdf"]))
    assert [d.id for d in docs] == ["idea"]


def test_registry_has_the_office_formats():
    assert {".pdf", ".docx", ".html", ".htm", ".txt", ".md"} <= registered_suffixes()


def test_importing_qa_does_not_import_parsers():
    import subprocess

    code = "import qa, qa.documents, sys; print(sorted({'pypdf','docx','bs4'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the CLI ----------------------------------------------------------------------------------


class _CliEncoder(FakeEncoder):
    def __init__(self, name: str, *, device: str = "cpu", **_: object) -> None:
        super().__init__(model_id=f"fake:{name}")


def test_index_command_prints_the_per_file_report(monkeypatch, tree):
    monkeypatch.setattr("embeddings.encoder.SentenceEncoder", _CliEncoder)
    make_pdf(tree / "reports" / "annual.pdf", THREE_PAGES)
    (tree / "reports" / "broken.pdf").write_bytes(b"%PDF-1.4 nothing else")
    args = ["-q", "index", str(tree), "--include", "reports/**", "--exclude", "drafts"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    files = {Path(f["path"]).name: f for f in out["files"]}
    assert set(files) == {"2023.txt", "annual.pdf", "broken.pdf"}
    assert files["annual.pdf"]["status"] == "loaded" and files["annual.pdf"]["pages"] == 3
    assert files["annual.pdf"]["passages"] >= 1
    assert files["broken.pdf"]["status"] == "skipped"
    assert files["broken.pdf"]["reason"] == "broken"
    assert (out["files_loaded"], out["files_skipped"]) == (2, 1)
    assert out["skipped_by_reason"] == {"broken": 1}
    assert out["documents"] == 2


def test_index_command_explains_why_nothing_was_indexed(monkeypatch, tmp_path):
    monkeypatch.setattr("embeddings.encoder.SentenceEncoder", _CliEncoder)
    make_pdf(tmp_path / "locked.pdf", [["机密。"]], password="pw")
    result = CliRunner().invoke(cli, ["-q", "index", str(tmp_path)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "no readable documents" in result.output
    assert "locked.pdf: encrypted" in result.output
