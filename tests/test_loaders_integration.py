"""One corpus of office files (PDF, DOCX, HTML, GBK and Big5 text), indexed and asked for real.

Each file holds one fact the others do not; one natural question per file must be answered
from that file (and, for the PDF, from the right page) by the real pipeline: the converted
multilingual-e5-small encoder and the shipped reader.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_loaders import make_pdf

from qa.config import DEFAULT_READER, Settings
from qa.pipeline import Pipeline

pytestmark = [pytest.mark.slow, pytest.mark.integration]

PDF_PAGES = [
    [
        "鹭岛港务集团二〇二三年度报告",
        "集团主营集装箱装卸、散货仓储和港口物流业务，",
        "下设五个码头公司。",
    ],
    [
        "二、经营情况",
        "二〇二三年，集团全年完成集装箱吞吐量1255.4万标准箱，",
        "同比增长3.2%，其中外贸箱量占比接近七成。",
    ],
    ["三、安全生产", "全年组织应急演练46次，未发生较大及以上安全", "生产事故。"],
]
DOCX_PARAGRAPHS = [
    "人事处关于招聘行政人员的公告",
    "因工作需要，学校面向社会公开招聘行政管理人员若干名。",
    "本次招聘报名截止日期为2024年5月20日，逾期不再受理。",
    "报名材料请交至行政楼二楼人事处办公室。",
]
HTML_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>图书馆概况</title>
<script>var banner = "馆藏数量以最新统计为准";</script></head>
<body><h1>图书馆概况</h1>
<p>学校图书馆由总馆和三个分馆组成，
馆舍总面积约9.6万平方米。</p>
<p>图书馆现有纸质藏书约452万册，订阅中外文期刊三千余种。</p>
<p onclick="track()">阅览室对全校师生开放，凭校园卡入馆。</p>
</body></html>
"""
GBK_TEXT = (
    "后勤集团关于第二食堂的说明\n\n"
    "第二食堂位于翔安校区学生公寓区北侧，共有就餐座位1800个。\n"
    "食堂一楼供应大众快餐，二楼设有风味档口。\n"
)
BIG5_TEXT = (
    "校車服務說明\n\n"
    "校車每天往返於思明校區與翔安校區之間。\n"
    "首班校車於早上6:50從思明校區發車，末班車於晚上九點返回。\n"
    "乘車時請出示校園卡。\n"
)

QUESTIONS = [
    # (question, file, fact the answer must contain, page for PDFs)
    ("2023年集团的集装箱吞吐量是多少？", "annual-report.pdf", "1255.4万", 2),
    ("招聘报名的截止日期是哪天？", "recruitment.docx", "2024年5月20日", None),
    ("图书馆有多少册纸质藏书？", "library.html", "452万", None),
    ("第二食堂有多少个座位？", "canteen.txt", "1800", None),
    ("首班校車幾點發車？", "shuttle.txt", "6:50", None),
]


def _make_corpus(folder: Path) -> None:
    import docx

    make_pdf(folder / "annual-report.pdf", PDF_PAGES)
    document = docx.Document()
    for text in DOCX_PARAGRAPHS:
        document.add_paragraph(text)
    table = document.add_table(rows=2, cols=2)
    for c, value in enumerate(["岗位", "人数"]):
        table.cell(0, c).text = value
    for c, value in enumerate(["行政管理", "3"]):
        table.cell(1, c).text = value
    document.save(str(folder / "recruitment.docx"))
    (folder / "library.html").write_text(HTML_PAGE, encoding="utf-8")
    (folder / "canteen.txt").write_bytes(GBK_TEXT.encode("gbk"))
    (folder / "shuttle").mkdir()
    (folder / "shuttle" / "shuttle.txt").write_bytes(BIG5_TEXT.encode("big5"))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Iterator[Pipeline]:
    if not (DEFAULT_READER / "reader.json").is_file():
        pytest.skip("the shipped reader is not in models/reader-zh")
    from conftest import REAL_LUDAO_HOME

    from embeddings.models import resolve_model

    resolve_model("multilingual-e5-small", cache_dir=REAL_LUDAO_HOME / "models")
    home = tmp_path_factory.mktemp("home")
    (home / "models").symlink_to(REAL_LUDAO_HOME / "models", target_is_directory=True)
    folder = tmp_path_factory.mktemp("office-corpus")
    _make_corpus(folder)
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("LUDAO_HOME", str(home))
    try:
        yield Pipeline.from_settings(Settings.load(corpus=(str(folder),)))
    finally:
        monkeypatch.undo()


def test_every_format_is_indexed(pipeline: Pipeline) -> None:
    assert pipeline.info().documents == 5


@pytest.mark.parametrize(("question", "file", "fact", "page"), QUESTIONS)
def test_question_is_answered_from_its_file(
    pipeline: Pipeline, question: str, file: str, fact: str, page: int | None
) -> None:
    response = pipeline.ask(question)
    # The best span is judged, not the decline decision: that is the reader's calibration,
    # measured on question sets, and the Big5 question sits on the threshold (0.313 vs
    # 0.3129 in fp32, just under it in bf16), so asserting it here would test rounding.
    assert response.answers, question
    best = response.answers[0]
    assert best.passage.doc_id == Path(file).stem  # ids are file stems
    assert fact in best.text, (question, best.text)
    if page is not None:
        assert best.passage.page == page
