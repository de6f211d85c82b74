"""Bad input from every door: questions (library, HTTP, CLI), files to index, upload names.

Each case must end in a clear message (a ``LudaoError``, a 4xx with a ``detail``, a non-zero exit
with text) and never in a traceback or a 500. The cases are parametrised so the suite's size is
the count of pytest items in this file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FakeEncoder

from qa.chunking import chunk
from qa.cli import cli
from qa.corpus import load_documents
from qa.errors import QuestionError
from qa.loaders import registered_suffixes
from qa.pipeline import Pipeline
from qa.readers.sentence import SentenceReader
from qa.retrieval import Retriever
from qa.uploads import UploadError, safe_upload_name, save_upload

pytest.importorskip("fastapi")

import ui

TEXT = (
    "厦门科技创新年度报告\n\n"
    "2024年，厦门全社会研发投入强度达到3.46%，高于全国平均水平。"
    "全市高新技术企业数量超过四千家。\n\n"
    "员工每年享有带薪年休假。工作满十年的员工可以休假十天。"
)

BAD_QUESTIONS = {
    "empty": "",
    "spaces": "   ",
    "tabs-newlines": "\t\n\r\n",
    "control-only": "\x00\x01\x02\x7f\x1b\x9b",
    "punctuation-only": "？！。，……",
    "symbols-only": "@#$%^&*()",
    "zero-width-only": "\u200b\u200b\ufeff",
    "huge-100kb": "研发投入强度是多少" * 11_400,
    "just-over-limit": "问" * 501,
}


class _CliEncoder(FakeEncoder):
    def __init__(self, name: str, *, device: str = "cpu", **_: object) -> None:
        super().__init__(model_id=f"fake:{name}")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "report.txt").write_text(TEXT, encoding="utf-8")
    return folder


@pytest.fixture
def pipeline(corpus: Path) -> Pipeline:
    docs = list(load_documents([corpus]))
    passages = [p for d in docs for p in chunk(d, max_chars=120, min_chars=20)]
    retriever = Retriever(FakeEncoder(), passages).build()
    return Pipeline(retriever=retriever, reader=SentenceReader(), max_question_chars=500)


@pytest.fixture
def client(pipeline: Pipeline, tmp_path: Path):
    from fastapi.testclient import TestClient

    app = ui.create_app(
        pipeline, feedback_path=tmp_path / "f.jsonl", upload_dir=tmp_path / "up", admin_token="t"
    )
    with TestClient(app, client=("127.0.0.1", 50000)) as test_client:
        test_client.headers["authorization"] = "Bearer t"  # admin: uploads need the token
        yield test_client


# --- questions --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BAD_QUESTIONS)
def test_library_rejects_bad_question(pipeline: Pipeline, name: str) -> None:
    with pytest.raises(QuestionError) as info:
        pipeline.ask(BAD_QUESTIONS[name])
    assert str(info.value)  # a message a user can read


@pytest.mark.parametrize("name", BAD_QUESTIONS)
def test_api_rejects_bad_question_with_400(client, name: str) -> None:
    question = BAD_QUESTIONS[name]
    response = client.post("/api/ask", json={"question": question})
    # Over 16 KB the body limit answers first (413); otherwise the pipeline's check (400).
    assert response.status_code in (400, 413)
    assert isinstance(response.json()["detail"], str) and response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"question": 123}', 422),
        (b'{"question": null}', 422),
        (b'{"question": ["a", "b"]}', 422),
        (b'{"question": {"text": "q"}}', 422),
        (b'{"question": true}', 422),
        (b"{}", 422),
        (b"[]", 422),
        (b'"just a string"', 422),
        (b'{"question": "q", "top_k": 0}', 422),
        (b'{"question": "q", "top_k": 9999}', 422),
        (b'{"question": "q", "top_k": "five"}', 422),
        (b'{"question": "q", "unknown": 1}', 422),
        (b"{not json", 422),
        (b"\xff\xfe\x00\x01binary", 422),
        (b'{"question": "\xb2\xe2\xca\xd4"}', 400),  # GBK bytes, not UTF-8
        (b"", 422),
    ],
)
def test_api_rejects_malformed_bodies(client, body: bytes, status: int) -> None:
    response = client.post("/api/ask", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert "Traceback" not in response.text


def test_api_rejects_a_body_over_the_limit(client) -> None:
    body = json.dumps({"question": "问" * 20_000}).encode()
    assert client.post("/api/ask", content=body).status_code == 413


def test_api_answers_a_question_with_stray_control_characters(client) -> None:
    response = client.post("/api/ask", json={"question": "研发投入\x00强度\u200b是多少？\x07"})
    assert response.status_code == 200
    assert "3.46%" in json.dumps(response.json(), ensure_ascii=False)


@pytest.mark.parametrize("name", ["empty", "spaces", "control-only", "huge-100kb"])
def test_cli_rejects_bad_question(monkeypatch, corpus: Path, name: str) -> None:
    monkeypatch.setattr("embeddings.encoder.SentenceEncoder", _CliEncoder)
    result = CliRunner().invoke(
        cli, ["-q", "ask", BAD_QUESTIONS[name], "--corpus", str(corpus), "--reader", "sentence"]
    )
    assert result.exit_code != 0
    assert "Error" in result.output and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


# --- files to index ---------------------------------------------------------------------------

BAD_FILES: dict[str, bytes] = {
    "binary.txt": bytes(range(256)) * 40,
    "empty.txt": b"",
    "whitespace.md": b" \n\t\n  \r\n",
    "png-named.txt": b"\x89PNG\r\n\x1a\n" + b"\x00" * 200,
    "random-bytes.md": bytes((i * 131 + 7) % 256 for i in range(3000)),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_file_is_skipped_and_the_rest_indexed(corpus: Path, name: str) -> None:
    (corpus / name).write_bytes(BAD_FILES[name])
    docs = list(load_documents([corpus]))
    assert [d.id for d in docs] == ["report"]


def test_index_of_only_bad_files_fails_with_a_message(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr("embeddings.encoder.SentenceEncoder", _CliEncoder)
    folder = tmp_path / "bad"
    folder.mkdir()
    for name, data in BAD_FILES.items():
        (folder / name).write_bytes(data)
    result = CliRunner().invoke(cli, ["-q", "index", str(folder)])
    assert result.exit_code != 0
    assert "no readable documents" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("gbk", "办公室通知：年度会议定于三月十日在二号楼召开，请各部门负责人准时参加。"),
        ("gb18030", "办公室通知：年度会议定于三月十日召开，地点在䶮字楼，请准时参加。"),
        ("big5", "辦公室通知：年度會議定於三月十日在二號樓召開，請各部門負責人準時參加。"),
    ],
)
def test_office_encodings_are_read_not_rejected(corpus: Path, encoding: str, text: str) -> None:
    (corpus / "notice.txt").write_bytes(text.encode(encoding))
    docs = {d.id: d for d in load_documents([corpus])}
    assert docs["notice"].text == text


# --- upload names -----------------------------------------------------------------------------

TRAVERSAL_NAMES = {
    "../../etc/passwd.txt": "passwd.txt",
    "..\\..\\windows\\system.ini.txt": "system.ini.txt",
    "/etc/cron.d/job.md": "job.md",
    "C:\\Users\\admin\\notes.txt": "notes.txt",
    "..%2F..%2Fx.txt": "%2F..%2Fx.txt",  # not decoded: one harmless name
    ".bashrc.txt": "bashrc.txt",
    "...txt.txt": "txt.txt",
    "报告\x00.txt": "报告.txt",
    "a\nb\r.txt": "ab.txt",
    "con.txt": "_con.txt",
    "年度报告.TXT": "年度报告.TXT",
}


@pytest.mark.parametrize("raw", TRAVERSAL_NAMES)
def test_upload_names_cannot_escape_or_hide(raw: str) -> None:
    assert safe_upload_name(raw, registered_suffixes()) == TRAVERSAL_NAMES[raw]


@pytest.mark.parametrize("raw", ["", "   ", "../..", "/", ".", None, "x.exe", "noext", "a.txt/"])
def test_bad_upload_names_are_refused(raw) -> None:
    with pytest.raises(UploadError):
        safe_upload_name(raw, registered_suffixes())


def test_long_upload_name_is_cut_but_keeps_its_suffix() -> None:
    name = safe_upload_name("长" * 500 + ".txt", registered_suffixes())
    assert name.endswith(".txt") and len(name) <= 120


def test_save_upload_refuses_oversize_and_empty_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(UploadError) as big:
        save_upload(tmp_path, "a.txt", [b"x" * 600, b"x" * 600], max_bytes=1000)
    assert big.value.status == 413
    with pytest.raises(UploadError):
        save_upload(tmp_path, "b.txt", [])
    assert list(tmp_path.iterdir()) == []


def test_upload_endpoint_stores_under_a_safe_name(client, tmp_path: Path) -> None:
    files = {"file": ("../../../evil.txt", "上传的文件内容：会议在周五。".encode(), "text/plain")}
    response = client.post("/api/documents", files=files)
    assert response.status_code == 201, response.text
    assert response.json()["saved"] == "evil.txt"
    assert (tmp_path / "up" / "evil.txt").is_file()
    assert not (tmp_path.parent / "evil.txt").exists()


@pytest.mark.parametrize(
    ("filename", "data", "status"),
    [("tool.exe", b"MZ\x90\x00", 415), ("empty.txt", b"", 400), ("..", b"x", 400)],
)
def test_upload_endpoint_rejects(client, tmp_path: Path, filename, data, status) -> None:
    response = client.post("/api/documents", files={"file": (filename, data, "text/plain")})
    assert response.status_code == status and response.json()["detail"]
    assert not any((tmp_path / "up").glob("*")) if (tmp_path / "up").exists() else True


@pytest.mark.parametrize("host", ["10.0.0.9", "127.0.0.1"])
def test_upload_endpoint_needs_admin_even_from_this_machine(pipeline, tmp_path, host) -> None:
    from fastapi.testclient import TestClient

    app = ui.create_app(pipeline, feedback_path=tmp_path / "f.jsonl", upload_dir=tmp_path / "up")
    with TestClient(app, client=(host, 50000)) as c:
        response = c.post("/api/documents", files={"file": ("a.txt", b"text", "text/plain")})
    assert response.status_code == 401
    assert not (tmp_path / "up" / "a.txt").exists()
