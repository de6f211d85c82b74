"""The lean paths' models built from plain torch modules give transformers' numbers exactly, and
the default serve path then never imports transformers (issue #14, cold start)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import make_passage, save_tiny_base, save_tiny_qa_model
from safetensors.torch import load_file

from embeddings import plain_bert
from embeddings.bert_folder import load_bert, read_folder
from embeddings.lean import LeanBert
from qa.readers import TransformerReader
from qa.readers.compact import ReaderConfig, export_compact, load_reader_model
from qa.readers.lean import LeanSpanScorer

ROWS = [[0, 5, 9, 17, 33, 2], [0, 44, 2], [0, 7, 7, 8, 60, 61, 62, 63, 2]]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, tiny_tokenizer) -> Path:
    return save_tiny_base(tmp_path_factory.mktemp("plain-base"), tiny_tokenizer, seed=7)


@pytest.fixture(scope="module")
def tiny_qa(tmp_path_factory, tiny_tokenizer):
    folder = tmp_path_factory.mktemp("plain-qa")
    return folder, save_tiny_qa_model(folder, tiny_tokenizer, seed=8)


def test_the_plain_bert_gives_transformers_hidden_states(tiny_bert) -> None:
    from transformers import BertModel

    reference = BertModel.from_pretrained(tiny_bert, add_pooling_layer=False).eval()
    shape = plain_bert.read_config(tiny_bert, "BertModel")
    plain = plain_bert.build(
        shape, load_file(str(tiny_bert / "model.safetensors")), span_head=False
    )
    assert type(plain).__name__ == "PlainBert" and isinstance(plain.config, plain_bert.BertShape)
    assert not any(p.is_meta for p in plain.parameters())
    with torch.inference_mode():
        got = LeanBert(plain).hidden(ROWS)
        lean_reference = LeanBert(reference).hidden(ROWS)
        first = reference(input_ids=torch.tensor([ROWS[0]])).last_hidden_state[0]
    assert torch.equal(got, lean_reference)
    torch.testing.assert_close(got[: len(ROWS[0])], first, rtol=1e-5, atol=1e-5)


def test_the_plain_span_model_gives_transformers_logits(tiny_qa, tiny_tokenizer) -> None:
    folder, reference = tiny_qa
    shape = plain_bert.read_config(folder, "BertForQuestionAnswering")
    plain = plain_bert.build(shape, load_file(str(folder / "model.safetensors")), span_head=True)
    got = LeanSpanScorer(plain, tiny_tokenizer).logits(ROWS)
    with torch.inference_mode():
        out = reference(input_ids=torch.tensor([ROWS[2]]))
    torch.testing.assert_close(torch.from_numpy(got[2][0]), out.start_logits[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.from_numpy(got[2][1]), out.end_logits[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"position_embedding_type": "relative_key"}, "position_embedding_type"),
        ({"hidden_act": "gelu_new"}, "hidden_act"),
        ({"is_decoder": True}, "is_decoder"),
        ({"architectures": ["BertForMaskedLM"]}, "architectures"),
        ({"model_type": "roberta"}, "model type"),
        ({"hidden_size": None}, "hidden_size"),
    ],
)
def test_configs_the_plain_modules_cannot_stand_for_are_refused(
    tiny_bert, tmp_path, change, why
) -> None:
    raw = json.loads((tiny_bert / "config.json").read_text())
    raw.update(change)
    if raw["hidden_size"] is None:
        del raw["hidden_size"]
    (tmp_path / "config.json").write_text(json.dumps(raw))
    with pytest.raises(plain_bert.NotPlainBert, match=why):
        plain_bert.read_config(tmp_path, "BertModel")


def test_weights_that_do_not_fit_are_refused(tiny_bert) -> None:
    shape = plain_bert.read_config(tiny_bert, "BertModel")
    state = load_file(str(tiny_bert / "model.safetensors"))
    name = "encoder.layer.0.intermediate.dense.weight"
    with pytest.raises(plain_bert.NotPlainBert, match="missing"):
        plain_bert.build(shape, {k: v for k, v in state.items() if k != name}, span_head=False)
    with pytest.raises(plain_bert.NotPlainBert, match="unexpected"):
        plain_bert.build(shape, {**state, "extra.weight": state[name]}, span_head=False)
    with pytest.raises(plain_bert.NotPlainBert, match="not"):
        plain_bert.build(shape, {**state, name: state[name][:, :3]}, span_head=False)
    # The pooler and the positions buffer are never read by the lean path: ignored, not refused.
    extra = {"pooler.dense.weight": torch.zeros(2, 2), "embeddings.position_ids": torch.arange(4)}
    built = plain_bert.build(shape, {**state, **extra}, span_head=False)
    assert isinstance(built, plain_bert.PlainBert)


def test_load_bert_builds_plain_modules_only_when_asked_and_allowed(
    tiny_bert, tmp_path, monkeypatch
) -> None:
    from conftest import save_sentence_folder

    folder = read_folder(save_sentence_folder(tmp_path / "st", tiny_bert))
    kwargs = {"add_pooling_layer": False}
    plain, _, _ = load_bert(folder, device="cpu", model_kwargs=kwargs, plain=True)
    full, _, _ = load_bert(folder, device="cpu", model_kwargs=kwargs)
    assert type(plain).__name__ == "PlainBert" and type(full).__name__ == "BertModel"
    with torch.inference_mode():
        assert torch.equal(LeanBert(plain).hidden(ROWS), LeanBert(full).hidden(ROWS))
    other, _, _ = load_bert(folder, device="cpu", model_kwargs={"attn_implementation": "eager"})
    assert type(other).__name__ == "BertModel"  # an option only transformers applies
    monkeypatch.setenv(plain_bert.ENV_SWITCH, "0")
    switched, _, _ = load_bert(folder, device="cpu", model_kwargs=kwargs, plain=True)
    assert type(switched).__name__ == "BertModel"


def test_a_compact_reader_reads_the_same_on_plain_modules(tmp_path, tiny_qa, tiny_bert) -> None:
    folder, _ = tiny_qa
    compact = export_compact(folder, tmp_path / "compact", ReaderConfig(base_model=str(tiny_bert)))
    plain, tokenizer, _ = load_reader_model(str(compact), plain=True)
    full, _, _ = load_reader_model(str(compact))
    assert type(plain).__name__ == "PlainBertForQuestionAnswering"
    assert type(full).__name__ == "BertForQuestionAnswering"
    for (s1, e1), (s2, e2) in zip(
        LeanSpanScorer(plain, tokenizer).logits(ROWS),
        LeanSpanScorer(full, tokenizer).logits(ROWS),
        strict=True,
    ):
        assert (s1 == s2).all() and (e1 == e2).all()


def test_a_reader_the_lean_path_refuses_gets_transformers_model(
    tmp_path, tiny_qa, tiny_bert, monkeypatch
) -> None:
    """The plain modules have no forward: where the lean path declines, the reader reloads
    transformers' model instead of failing at its first question."""
    folder, _ = tiny_qa
    compact = export_compact(folder, tmp_path / "compact", ReaderConfig(base_model=str(tiny_bert)))
    monkeypatch.setattr("qa.readers.compact.unsupported_reason", lambda *a: "refused here")
    reader = TransformerReader(str(compact), engine="lean")
    reader.warm_up()
    assert type(reader._model).__name__ == "BertForQuestionAnswering"
    assert reader.read("问题？", [make_passage("a", "公司2023年实现营业收入448.53亿元。")])


_SERVE_PATH = """
import sys
from qa.config import Settings
from qa.pipeline import Pipeline

pipeline = Pipeline.from_settings(Settings.load(), preload_reader=True)
response = pipeline.ask("2024年厦门全社会研发投入强度是多少？")
assert response.answers, response
heavy = [m for m in ("transformers", "sentence_transformers") if m in sys.modules]
assert not heavy, heavy
"""


@pytest.mark.slow
def test_the_default_pipeline_answers_without_importing_transformers(tmp_path) -> None:
    """The shipped reader and the converted e5 model both load as plain modules: a fresh
    process answers a question with neither transformers nor sentence-transformers imported."""
    from conftest import real_server_env

    root = Path(__file__).resolve().parents[1]
    run = subprocess.run(
        [sys.executable, "-c", _SERVE_PATH],
        cwd=root,
        env=real_server_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
