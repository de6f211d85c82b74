"""Per-document access: groups on documents and users, filtered before ranking (issue #13, 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FakeEncoder, make_passage

from qa.access import (
    ANONYMOUS,
    EVERYONE,
    DocumentAccess,
    UploadGroups,
    User,
    groups_for_source,
    parse_rules,
)
from qa.pipeline import Pipeline
from qa.readers import SentenceReader
from qa.retrieval import Retriever

# The same question has a different true answer in each department's handbook.
HR = "人事部规定：员工出差每天的餐费补贴标准是八十元。"
FIN = "财务部规定：员工出差每天的餐费补贴标准是一百二十元。"
PUBLIC = "图书馆每天早上九点开门，晚上六点关门。"
QUESTION = "员工出差每天的餐费补贴标准是多少？"


class SpyRetriever(Retriever):
    """Records every passage position the dense and sparse rankings return."""

    seen: list[int]

    def dense_ranking(self, query, k, *, allowed=None, vector=None):
        ids = super().dense_ranking(query, k, allowed=allowed, vector=vector)
        self.seen.extend(ids)
        return ids

    def sparse_ranking(self, query, k, *, allowed=None):
        ids = super().sparse_ranking(query, k, allowed=allowed)
        self.seen.extend(ids)
        return ids


@pytest.fixture
def pipeline() -> Pipeline:
    passages = [make_passage("hr", HR), make_passage("fin", FIN), make_passage("lib", PUBLIC)]
    retriever = SpyRetriever(FakeEncoder(), passages).build()
    retriever.seen = []
    access = DocumentAccess(passages, {"hr": {"hr"}, "fin": {"finance"}})
    return Pipeline(retriever=retriever, reader=SentenceReader(), access=access, cache_size=16)


def _docs(response) -> set[str]:
    return {h.passage.doc_id for h in response.hits} | {a.passage.doc_id for a in response.answers}


def test_two_users_same_question_different_correct_answers(pipeline: Pipeline) -> None:
    hr = pipeline.ask(QUESTION, groups=User("li", frozenset({"hr"})).groups)
    fin = pipeline.ask(QUESTION, groups=User("wang", frozenset({"finance"})).groups)
    assert not hr.no_answer and "八十元" in hr.answers[0].text
    assert not fin.no_answer and "一百二十元" in fin.answers[0].text
    assert "fin" not in _docs(hr) and "hr" not in _docs(fin)


def test_a_user_without_access_gets_no_answer_and_no_hint(pipeline: Pipeline) -> None:
    response = pipeline.ask(QUESTION, groups=ANONYMOUS.groups)
    assert response.no_answer
    assert _docs(response) <= {"lib"}  # "closest passages" come from what they may read


def test_forbidden_passages_are_never_ranked(pipeline: Pipeline) -> None:
    pipeline.ask(QUESTION, groups=frozenset({"hr"}))
    assert pipeline.retriever.seen and 1 not in pipeline.retriever.seen  # row 1 is finance's


def test_answer_cache_is_not_shared_across_groups(pipeline: Pipeline) -> None:
    first = pipeline.ask(QUESTION, groups=frozenset({"finance"}))
    assert "一百二十元" in first.answers[0].text
    again = pipeline.ask(QUESTION, groups=frozenset())
    assert "cache" not in again.timings_ms and again.no_answer
    cached = pipeline.ask(QUESTION, groups=frozenset({"finance"}))
    assert "cache" in cached.timings_ms


def test_no_groups_argument_is_unrestricted_and_counts_follow_groups(pipeline: Pipeline) -> None:
    assert {"hr", "fin"} <= _docs(pipeline.ask(QUESTION, top_k=3))
    assert pipeline.visible_counts(frozenset({EVERYONE})) == {"documents": 1, "passages": 1}
    assert pipeline.visible_counts(frozenset({"hr"})) == {"documents": 2, "passages": 2}
    assert pipeline.visible_counts(None) == {"documents": 3, "passages": 3}


def test_rules_and_upload_groups(tmp_path: Path) -> None:
    rules = parse_rules(["hr/*=hr|board", "*.secret.txt=board"])
    assert groups_for_source("/srv/docs/hr/pay/2024.txt", rules) == {"hr", "board"}
    assert groups_for_source("/srv/docs/x.secret.txt", rules) == {"board"}
    assert groups_for_source("/srv/docs/hrx/a.txt", rules) == {EVERYONE}
    uploads = UploadGroups(tmp_path)
    uploads.set("plan.txt", ["finance"])
    source = str(tmp_path / "plan.txt")
    assert groups_for_source(source, rules, [uploads]) == {"finance"}
    with pytest.raises(ValueError):
        parse_rules(["no-equals-sign"])
    with pytest.raises(ValueError):
        parse_rules(["a=bad group!"])


def test_changing_the_rules_relabels_without_re_embedding(tmp_path: Path, monkeypatch) -> None:
    from qa.config import Settings

    corpus = tmp_path / "corpus"
    (corpus / "hr").mkdir(parents=True)
    (corpus / "hr" / "travel.txt").write_text(HR, encoding="utf-8")
    (corpus / "library.txt").write_text(PUBLIC, encoding="utf-8")
    encoder = FakeEncoder()
    settings = Settings(corpus=(str(corpus),), reader="sentence", home=str(tmp_path / "home"))
    monkeypatch.setattr("qa.index.locate_index", _fake_locate(encoder, tmp_path))

    first = Pipeline.from_settings(settings)
    assert not first.access.restricted
    calls = encoder.passage_calls
    labelled = Pipeline.from_settings(
        Settings(**{**settings.__dict__, "access_rules": ("hr/*=hr",)})
    )
    assert encoder.passage_calls == calls  # nothing embedded again
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    groups = {Path(d["source"]).name: d["groups"] for d in manifest["documents"]}
    assert groups == {"travel.txt": ["hr"], "library.txt": [EVERYONE]}
    assert labelled.ask(QUESTION, groups=ANONYMOUS.groups).no_answer
    assert not labelled.ask(QUESTION, groups=frozenset({"hr"})).no_answer


def test_an_index_without_groups_means_everyone(tmp_path: Path) -> None:
    from qa.index.labels import saved_groups

    assert saved_groups({"documents": [{"id": "a", "source": "x"}]}) == {"a": {EVERYONE}}


def _fake_locate(encoder, tmp_path: Path):
    from types import SimpleNamespace

    return lambda settings: SimpleNamespace(index_dir=tmp_path / "index", encoder=encoder)


class _CliEncoder(FakeEncoder):
    def __init__(self, name: str, *, device: str = "cpu", **_: object) -> None:
        super().__init__(model_id=f"fake:{name}")


def test_cli_ask_as_groups(tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from qa.cli import cli

    monkeypatch.setattr("embeddings.encoder.SentenceEncoder", _CliEncoder)
    corpus = tmp_path / "corpus"
    (corpus / "hr").mkdir(parents=True)
    (corpus / "finance").mkdir()
    (corpus / "hr" / "travel.txt").write_text(HR, encoding="utf-8")
    (corpus / "finance" / "travel.txt").write_text(FIN, encoding="utf-8")
    monkeypatch.setenv("LUDAO_ACCESS_RULES", "hr/*=hr; finance/*=finance")

    def ask(*extra: str) -> dict:
        args = ["-q", "ask", QUESTION, "--corpus", str(corpus), "--reader", "sentence", "--json"]
        result = CliRunner().invoke(cli, [*args, *extra])
        assert result.exit_code == 0, result.output
        return json.loads(result.output.strip().splitlines()[-1])

    assert "八十元" in ask("--as-groups", "hr")["answers"][0]["text"]
    assert "一百二十元" in ask("--as-groups", "finance")["answers"][0]["text"]
    nobody = ask("--as-groups", "")
    assert nobody["no_answer"] and nobody["passages"] == []
    assert len({p["doc"] for p in ask("--top-k", "5")["passages"]}) == 2  # operator: all
