"""``ludao docs list/remove/restore`` and the counts ``ludao index`` prints, with a fake model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner
from conftest import FakeEncoder

from qa.cli import cli


class FakeSentenceEncoder(FakeEncoder):
    """Takes ``SentenceEncoder``'s arguments; counts the passages it embeds, across instances."""

    embedded: ClassVar[list[str]] = []

    def __init__(self, name: str, *, device: str = "cpu", **_: object) -> None:
        super().__init__(model_id=f"fake:{name}")

    def encode_passages(self, texts, *, show_progress=None):  # type: ignore[no-untyped-def]
        FakeSentenceEncoder.embedded.extend(texts)
        return super().encode_passages(texts, show_progress=show_progress)


@pytest.fixture(autouse=True)
def fake_embeddings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("embeddings.encoder.SentenceEncoder", FakeSentenceEncoder)
    monkeypatch.setattr(FakeSentenceEncoder, "embedded", [])


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "handbook.txt").write_text(
        "员工手册\n\n员工每年享有带薪年休假。工作满十年的员工可以休假十天。\n\n"
        "报销差旅费用应在出差结束后十日内提交单据，由财务部门审核后统一支付。",
        encoding="utf-8",
    )
    (folder / "report.txt").write_text(
        "年度报告\n\n2024年，厦门全社会研发投入强度达到3.46%，高于全国平均水平。",
        encoding="utf-8",
    )
    return folder


def invoke(*args: str):
    return CliRunner().invoke(cli, ["-q", *args])


def index(corpus: Path) -> dict:
    result = invoke("index", str(corpus))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def listing(corpus: Path) -> dict:
    result = invoke("docs", "list", "--corpus", str(corpus), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_index_prints_reused_embedded_and_removed_counts(corpus: Path) -> None:
    first = index(corpus)
    assert first["embedded"] == first["passages"] >= 2
    assert first["reused"] == 0 and first["removed"] == 0
    (corpus / "report.txt").write_text("年度报告\n\n全年接待游客一亿人次。", encoding="utf-8")
    second = index(corpus)
    assert second["embedded"] >= 1 and second["removed"] >= 1
    assert second["reused"] + second["embedded"] == second["passages"]
    assert second["reused"] >= 1  # the handbook's passages were not embedded again


def test_docs_list_json_and_table(corpus: Path) -> None:
    index(corpus)
    data = listing(corpus)
    docs = {d["id"]: d for d in data["documents"]}
    assert set(docs) == {"handbook", "report"}
    expected = hashlib.sha256((corpus / "report.txt").read_bytes()).hexdigest()
    assert docs["report"]["sha256"] == expected
    assert docs["report"]["source"].endswith("report.txt")
    assert docs["handbook"]["passages"] >= 1 and docs["handbook"]["indexed"]
    assert data["removed"] == []

    table = invoke("docs", "list", "--corpus", str(corpus))
    assert table.exit_code == 0
    line = next(row for row in table.output.splitlines() if row.startswith("report\t"))
    assert expected[:12] in line and "report.txt" in line


def test_docs_remove_then_index_keeps_it_out_until_restored(corpus: Path) -> None:
    index(corpus)
    embedded_before = len(FakeSentenceEncoder.embedded)
    result = invoke("docs", "remove", "report", "--corpus", str(corpus))
    assert result.exit_code == 0, result.output
    assert "removed report" in result.output
    assert len(FakeSentenceEncoder.embedded) == embedded_before  # nothing re-embedded

    ask = invoke(
        "ask", "研发投入强度是多少？", "--corpus", str(corpus), "--reader", "sentence", "--json"
    )
    assert ask.exit_code == 0, ask.output
    assert all(p["doc"] != "report" for p in json.loads(ask.output)["passages"])

    again = index(corpus)
    assert again["excluded_documents"] == ["report"] and again["embedded"] == 0
    assert [d["id"] for d in listing(corpus)["documents"]] == ["handbook"]
    assert [d["id"] for d in listing(corpus)["removed"]] == ["report"]

    result = invoke("docs", "restore", "report", "--corpus", str(corpus))
    assert result.exit_code == 0, result.output
    back = index(corpus)
    assert back["excluded_documents"] == [] and back["embedded"] >= 1
    assert {d["id"] for d in listing(corpus)["documents"]} == {"handbook", "report"}


def test_docs_remove_by_path(corpus: Path) -> None:
    index(corpus)
    result = invoke("docs", "remove", str(corpus / "handbook.txt"), "--corpus", str(corpus))
    assert result.exit_code == 0, result.output
    assert [d["id"] for d in listing(corpus)["documents"]] == ["report"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("docs", "remove", "no-such-doc"), "no document 'no-such-doc'"),
        (("docs", "restore", "report"), "no removed document 'report'"),
    ],
)
def test_unknown_documents_fail_cleanly(corpus: Path, args: tuple[str, ...], message: str) -> None:
    index(corpus)
    result = invoke(*args, "--corpus", str(corpus))
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_docs_without_an_index_fail_cleanly(corpus: Path) -> None:
    result = invoke("docs", "list", "--corpus", str(corpus))
    assert result.exit_code == 1
    assert "no index" in result.output and "ludao index" in result.output


def test_help_explains_how_removal_is_undone() -> None:
    result = CliRunner().invoke(cli, ["docs", "--help"])
    assert result.exit_code == 0
    assert "restore" in result.output and "remove" in result.output and "list" in result.output
