"""The ``ludao`` command, in-process with click's runner and a fake embedding model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FakeEncoder

from qa.cli import cli

DOCUMENTS = {
    "report.txt": (
        "厦门科技创新年度报告\n\n"
        "2024年，厦门全社会研发投入强度达到3.46%，高于全国平均水平。"
        "全市高新技术企业数量超过四千家，企业研发经费支出年均增长百分之十三以上。\n\n"
        "全市每万人口高价值发明专利拥有量达到二十九点五件，较五年前实现翻番。"
    ),
    "handbook.txt": (
        "员工手册\n\n"
        "员工每年享有带薪年休假。工作满一年不满十年的员工，年休假五天；"
        "工作满十年的员工可以休假十天。年休假应当提前两周向部门负责人申请。\n\n"
        "报销差旅费用应在出差结束后十日内提交单据，由财务部门审核后统一支付。"
    ),
}


class FakeSentenceEncoder(FakeEncoder):
    """Takes ``SentenceEncoder``'s arguments; embeds with the hashing fake."""

    def __init__(self, name: str, *, device: str = "cpu", **_: object) -> None:
        super().__init__(model_id=f"fake:{name}")


@pytest.fixture(autouse=True)
def fake_embeddings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("embeddings.encoder.SentenceEncoder", FakeSentenceEncoder)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, text in DOCUMENTS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def invoke(*args: str):
    return CliRunner().invoke(cli, ["-q", *args])


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("index", "ask", "eval", "serve", "train-reader", "package-reader", "bench"):
        assert command in result.output


def test_index_reports_what_it_built(corpus: Path, ludao_home: Path) -> None:
    result = invoke("index", str(corpus))
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["documents"] == 2 and data["passages"] >= 2
    assert Path(data["index_dir"]).is_relative_to(ludao_home)
    assert (Path(data["index_dir"]) / "manifest.json").is_file()


def test_ask_json_contract(corpus: Path) -> None:
    question = "工作满十年的员工可以休假几天？"
    result = invoke("ask", question, "--corpus", str(corpus), "--reader", "sentence", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"question", "answers", "no_answer", "passages", "reader", "timings_ms"} <= set(data)
    assert data["question"] == question and data["reader"] == "sentence"
    assert data["answers"] and not data["no_answer"]
    passages = {p["id"]: p for p in data["passages"]}
    for p in data["passages"]:
        assert {"id", "doc", "title", "text", "score"} <= set(p)
    for a in data["answers"]:
        assert {"text", "score", "doc", "passage_id", "start", "end"} <= set(a)
        cited = passages[a["passage_id"]]  # every answer cites a returned passage
        assert cited["text"][a["start"] : a["end"]] == a["text"]
        assert a["doc"] == cited["doc"]
    assert "十天" in data["answers"][0]["text"]
    assert set(data["timings_ms"]) >= {"retrieve", "read", "total"}


def test_ask_prints_answer_and_sources(corpus: Path) -> None:
    result = invoke("ask", "研发投入强度是多少？", "--corpus", str(corpus), "--reader", "sentence")
    assert result.exit_code == 0, result.output
    assert "3.46%" in result.output
    assert "[1]" in result.output


@pytest.mark.parametrize(
    ("question", "message"), [("", "empty"), ("  \t ", "empty"), ("？！", "no words")]
)
def test_ask_rejects_a_bad_question_cleanly(corpus: Path, question: str, message: str) -> None:
    result = invoke("ask", question, "--corpus", str(corpus), "--reader", "sentence")
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_eval_on_jsonl_against_a_corpus(corpus: Path, tmp_path: Path) -> None:
    questions = tmp_path / "questions.jsonl"
    rows = [
        {"id": "a", "question": "工作满十年的员工可以休假几天？", "answers": ["十天"]},
        {"id": "b", "question": "厦门的研发投入强度是多少？", "answers": ["3.46%"]},
        {"id": "c", "question": "火星上的天气怎么样？", "answers": []},
    ]
    questions.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    predictions = tmp_path / "predictions.jsonl"
    result = invoke(
        "eval",
        str(questions),
        "--corpus",
        str(corpus),
        "--reader",
        "sentence",
        "--predictions",
        str(predictions),
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    keys = {"n", "exact_match", "f1", "no_answer_accuracy", "recall@1", "recall@5", "mrr"}
    assert keys | {"latency_ms", "reader", "embedding_model"} <= set(data)
    assert set(data["latency_ms"]) == {"p50", "p95"}
    assert data["n"] == 3 and data["reader"] == "sentence"
    assert data["embedding_model"] == "multilingual-e5-small"
    assert data["recall@5"] == 100.0  # two short documents: the gold passage is always found
    assert 0 < data["f1"] < 100  # whole sentences overlap the gold answers without matching
    lines = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == ["a", "b", "c"]
    for line in lines:
        assert {"id", "question", "prediction", "score", "passage_id", "no_answer"} <= set(line)
    assert lines[2]["no_answer"] is True and lines[2]["prediction"] == ""
    assert "十天" in lines[0]["prediction"]


def squad_file(tmp_path: Path) -> Path:
    context = DOCUMENTS["handbook.txt"]
    start = context.index("十天")
    data = {
        "data": [
            {
                "title": "员工手册",
                "paragraphs": [
                    {
                        "id": "p1",
                        "context": context,
                        "qas": [
                            {
                                "id": "s1",
                                "question": "工作满十年的员工可以休假几天？",
                                "answers": [{"text": "十天", "answer_start": start}],
                            }
                        ],
                    },
                    {"id": "p2", "context": DOCUMENTS["report.txt"], "qas": []},
                ],
            }
        ]
    }
    path = tmp_path / "tiny_squad.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_eval_gold_passage_mode(tmp_path: Path) -> None:
    result = invoke("eval", str(squad_file(tmp_path)), "--gold-passage", "--reader", "sentence")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["mode"] == "gold-passage" and data["n"] == 1
    assert data["recall@1"] is None and data["embedding_model"] is None
    assert data["f1"] > 0


def test_eval_squad_file_over_its_own_paragraphs(tmp_path: Path) -> None:
    result = invoke("eval", str(squad_file(tmp_path)), "--reader", "sentence", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["mode"] == "open-domain (file paragraphs)"
    assert data["recall@5"] == 100.0


def test_eval_of_a_broken_file_is_a_clean_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n", encoding="utf-8")
    result = invoke("eval", str(broken), "--reader", "sentence")
    assert result.exit_code != 0
    assert "Error" in result.output and "Traceback" not in result.output
