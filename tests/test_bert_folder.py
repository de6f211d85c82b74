"""The lean path loaded without sentence-transformers (embeddings.bert_folder, #14 cold start).

A plain Transformer → mean Pooling → Normalize folder is read from its own files and its BERT
loaded with transformers alone: the vectors must be the ones the lean path computes over the
sentence-transformers model, at every precision, and sentence-transformers must not even be
imported. Any other layout must be declined with its reason, and then load as before.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_query_engine import PASSAGES, QUESTIONS

from embeddings import bert_folder
from embeddings.encoder import SentenceEncoder
from embeddings.lean import LeanEncoder

REPO = Path(__file__).resolve().parents[1]


def test_a_plain_folder_is_read_as_sentence_transformers_reads_it(tiny_e5):
    folder = bert_folder.read_folder(tiny_e5)
    reference = SentenceEncoder(str(tiny_e5), query_engine="torch").model
    assert folder.prompts == reference.prompts
    assert folder.max_seq_length in (None, reference[0].max_seq_length)
    bert, _, max_length = bert_folder.load_bert(folder, device="cpu")
    assert bert_folder.truncation_length(folder, bert, max_length) == reference[0].max_seq_length


TEXTS = [
    *QUESTIONS,
    *PASSAGES,
    "query: 2024年厦门全社会研发投入强度是多少？",
    "What was Xiamen's R&D intensity in 2024?  (3.46%)",
    "特殊记号 <s> 与 </s> 和 <mask> 写在正文里 <unk> <pad>",
    "全角　空格、Ｆｕｌｌｗｉｄｔｈ　ＡＢＣ１２３ and tabs\tand\nnew lines",
    "",
    "长" * 700,
]


def _assert_transformers_ids(folder: bert_folder.BertFolder, limit: int) -> None:
    """The file-alone tokenizer gives AutoTokenizer's ids and length limit on every text."""
    from transformers import AutoTokenizer

    tokenizer, max_length = bert_folder.load_tokenizer(folder)
    reference = AutoTokenizer.from_pretrained(folder.transformer_dir)
    assert max_length == reference.model_max_length
    for text in TEXTS:
        expected = reference(text, truncation=True, max_length=limit)["input_ids"]
        with tokenizer.configured(limit) as rust:
            assert rust.encode(text).ids == expected, text


def test_the_tokenizer_file_alone_gives_transformers_ids(tiny_e5):
    _assert_transformers_ids(bert_folder.read_folder(tiny_e5), 32)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d | {"tokenizer_class": "BertTokenizer"}, "not a generic"),
        (lambda d: d | {"add_bos_token": True}, "add_bos_token"),
        (lambda d: d | {"mask_token": "<not-in-the-file>"}, "not in tokenizer.json"),
        (lambda d: d | {"extra_special_tokens": ["<extra_1>"]}, "not in tokenizer.json"),
    ],
)
def test_a_tokenizer_transformers_would_change_loads_through_transformers(
    tmp_path, tiny_e5, change, reason
):
    folder_path = Path(shutil.copytree(tiny_e5, tmp_path / "model"))
    _edit(folder_path, "tokenizer_config.json", change)
    folder = bert_folder.read_folder(folder_path)
    with pytest.raises(bert_folder.NotPlainFolder, match=reason):
        bert_folder.load_tokenizer(folder)
    _, tokenizer, _ = bert_folder.load_bert(folder, device="cpu")
    assert hasattr(tokenizer, "backend_tokenizer"), "not transformers' tokenizer"
    alone = SentenceEncoder(str(folder_path), precision="fp32")
    via_st = SentenceEncoder(str(folder_path), precision="fp32", query_engine="torch")
    for text in TEXTS[:3]:
        np.testing.assert_allclose(alone.encode_query(text), via_st.encode_query(text), atol=1e-5)
    assert alone._model is None


def test_a_missing_or_broken_tokenizer_file_is_declined(tmp_path, tiny_e5):
    folder_path = Path(shutil.copytree(tiny_e5, tmp_path / "model"))
    (folder_path / "tokenizer.json").write_text("{ not a tokenizer", encoding="utf-8")
    with pytest.raises(bert_folder.NotPlainFolder, match="unreadable"):
        bert_folder.load_tokenizer(bert_folder.read_folder(folder_path))
    (folder_path / "tokenizer.json").unlink()
    with pytest.raises(bert_folder.NotPlainFolder, match=r"no tokenizer\.json"):
        bert_folder.load_tokenizer(bert_folder.read_folder(folder_path))


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_lean_alone_gives_the_lean_vectors_of_the_sentence_transformers_model(tiny_e5, precision):
    alone = SentenceEncoder(str(tiny_e5), precision=precision)  # type: ignore[arg-type]
    queries = np.stack([alone.encode_query(q) for q in QUESTIONS])
    passages = alone.encode_passages(list(PASSAGES), show_progress=False)
    assert alone._model is None, "the sentence-transformers model was loaded"
    via_st = SentenceEncoder(str(tiny_e5), precision=precision, query_engine="torch")  # type: ignore[arg-type]
    model = via_st.model
    lean = LeanEncoder(model)
    expected_queries = np.stack([lean.encode(q, "query: ") for q in QUESTIONS])
    expected_passages = lean.encode_all(list(PASSAGES), "passage: ")
    np.testing.assert_allclose(queries, expected_queries, atol=1e-6)
    np.testing.assert_allclose(passages, expected_passages, atol=1e-6)
    assert alone.dimension == via_st.dimension
    assert alone.resolved_precision == via_st.resolved_precision
    assert alone.prompts == model.prompts


def test_serving_path_never_imports_sentence_transformers(tiny_e5):
    script = textwrap.dedent(
        f"""
        import sys
        from embeddings.encoder import SentenceEncoder
        encoder = SentenceEncoder({str(tiny_e5)!r})
        encoder.encode_passages(["厦门的研发投入强度"], show_progress=False)
        encoder.encode_query("研发投入强度是多少？")
        loaded = {{m.split(".")[0] for m in sys.modules}}
        heavy = sorted(loaded & {{"sentence_transformers", "sklearn"}})
        print("imported:", heavy)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "imported: []" in out.stdout, out.stdout


def test_the_torch_engines_still_load_sentence_transformers(tiny_e5):
    encoder = SentenceEncoder(str(tiny_e5), query_engine="torch", passage_engine="lean")
    encoder.encode_query(QUESTIONS[0])
    assert encoder._model is not None


def _edit(folder: Path, name: str, change) -> None:
    path = folder / name
    data = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(change(data)), encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "change", "reason"),
    [
        ("1_Pooling/config.json", lambda d: d | {"pooling_mode_cls_token": True}, "not mean"),
        ("1_Pooling/config.json", lambda d: d | {"include_prompt": False}, "prompt out"),
        ("sentence_bert_config.json", lambda d: d | {"do_lower_case": True}, "lower-cases"),
        ("sentence_bert_config.json", lambda d: d | {"model_args": {"x": 1}}, "model_args"),
        ("modules.json", lambda d: d[:1], "not Transformer → Pooling"),
        (
            "config_sentence_transformers.json",
            lambda d: d | {"default_prompt_name": "query"},
            "prompts",
        ),
    ],
)
def test_other_layouts_are_declined_with_their_reason(tmp_path, tiny_e5, name, change, reason):
    folder = Path(shutil.copytree(tiny_e5, tmp_path / "model"))
    _edit(folder, name, change)
    with pytest.raises(bert_folder.NotPlainFolder, match=reason):
        bert_folder.read_folder(folder)


def test_a_hub_id_or_a_broken_folder_is_declined(tmp_path, tiny_e5):
    with pytest.raises(bert_folder.NotPlainFolder, match="not a local"):
        bert_folder.read_folder("intfloat/multilingual-e5-small-not-here")
    folder = Path(shutil.copytree(tiny_e5, tmp_path / "model"))
    (folder / "modules.json").write_bytes(b"\xff\xfe not json")
    with pytest.raises(bert_folder.NotPlainFolder, match="unreadable"):
        bert_folder.read_folder(folder)


def test_a_declined_folder_still_loads_through_sentence_transformers(tmp_path, tiny_e5):
    folder = Path(shutil.copytree(tiny_e5, tmp_path / "model"))
    _edit(folder, "sentence_bert_config.json", lambda d: d | {"model_args": {}})
    encoder = SentenceEncoder(str(folder), precision="fp32")
    reference = SentenceEncoder(str(tiny_e5), precision="fp32", query_engine="torch")
    np.testing.assert_allclose(
        encoder.encode_query(QUESTIONS[0]), reference.encode_query(QUESTIONS[0]), atol=1e-5
    )
    assert encoder._model is not None and encoder._lean  # lean, built over the ST model


@pytest.mark.slow
def test_the_default_tokenizer_file_alone_gives_transformers_ids():
    from conftest import REAL_LUDAO_HOME

    from embeddings.models import resolve_model

    path = Path(resolve_model("multilingual-e5-small", cache_dir=REAL_LUDAO_HOME / "models"))
    _assert_transformers_ids(bert_folder.read_folder(path), 512)  # the converted folder


@pytest.mark.slow
def test_default_model_loads_alone_with_the_same_vectors():
    from conftest import REAL_LUDAO_HOME

    cache = REAL_LUDAO_HOME / "models"
    alone = SentenceEncoder("multilingual-e5-small", cache_dir=cache, precision="fp32")
    question = "2024年厦门全社会研发投入强度是多少？"
    vector = alone.encode_query(question)
    assert alone._model is None
    reference = SentenceEncoder(
        "multilingual-e5-small", cache_dir=cache, precision="fp32", query_engine="torch"
    )
    np.testing.assert_allclose(
        vector, LeanEncoder(reference.model).encode(question, "query: "), atol=1e-6
    )
    assert float(vector @ reference.encode_query(question)) >= 0.9999
