"""The lean path (embeddings.lean): the same vectors as sentence-transformers' ``encode``, for
queries one at a time and for passages in token-budget batches.

Runs on a tiny random BERT wrapped as a sentence-transformers folder (conftest's tokenizer, e5's
layout: Transformer → mean Pooling → Normalize, ``query: `` prompt), at every precision; the real
default model is checked in the slow test at the end.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import REAL_LUDAO_HOME, save_sentence_folder

from embeddings.encoder import SentenceEncoder
from embeddings.lean import (
    LeanEncoder,
    fused_qkv,
    packed_linear,
    token_budget_batches,
    unsupported_reason,
)
from qa.config import Settings

QUESTIONS = (
    "2024年厦门全社会研发投入强度是多少？",
    "工作满十年的员工可以休假几天？",
    "When does the library open?",
    "年",
    "研发投入强度" * 60,  # past the tiny model's 128 positions: truncated as in encode
)


def _pair(folder: Path, precision: str) -> tuple[SentenceEncoder, SentenceEncoder]:
    reference = SentenceEncoder(str(folder), precision=precision, query_engine="torch")  # type: ignore[arg-type]
    lean = SentenceEncoder(str(folder), precision=precision, query_engine="lean")  # type: ignore[arg-type]
    return reference, lean


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8", "auto"])
def test_lean_vectors_match_sentence_transformers(tiny_e5, precision):
    reference, lean = _pair(tiny_e5, precision)
    for question in QUESTIONS:
        theirs, ours = reference.encode_query(question), lean.encode_query(question)
        assert ours.shape == theirs.shape and ours.dtype == np.float32
        assert np.linalg.norm(ours) == pytest.approx(1.0, abs=1e-5)
        assert float(ours @ theirs) >= 0.9999, (precision, question)
    assert isinstance(lean._lean, LeanEncoder)  # the lean path ran, not the fallback
    assert lean.model_id == reference.model_id  # the same index serves both


@pytest.mark.parametrize("engine", ["lean", "torch"])
@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_queries_embedded_together_are_each_as_alone(tiny_e5, precision, engine):
    # The server's micro-batches (qa.batching) embed questions of different lengths together:
    # padding must not leak into a row through attention or pooling.
    encoder = SentenceEncoder(str(tiny_e5), precision=precision, query_engine=engine)  # type: ignore[arg-type]
    together = encoder.encode_queries(list(QUESTIONS))
    assert together.shape == (len(QUESTIONS), encoder.dimension)
    for row, question in zip(together, QUESTIONS, strict=True):
        assert float(row @ encoder.encode_query(question)) >= 0.9999, (precision, question)
    assert encoder.encode_queries([]).shape == (0, encoder.dimension)


PASSAGES = (
    "厦门市2024年全社会研发投入强度达到3.2%，比上年提高0.1个百分点。",
    "短",
    "The library opens at nine on weekdays and at ten on weekends.",
    "员工工作满十年的，年休假十天；满二十年的，年休假十五天。" * 3,
    "研发投入强度" * 60,  # truncated at the tiny model's 128 positions
    "",
    "年",
    "同一长度的句子一",
    "同一长度的句子二",
)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
@pytest.mark.parametrize("budget", [1, 40, 4096])
def test_lean_passages_match_sentence_transformers(tiny_e5, precision, budget):
    # Batches of mixed lengths (budget 40: several rows each, ragged), one row each (budget 1)
    # and everything at once: each vector as sentence-transformers' encode gives it, in order.
    reference = SentenceEncoder(str(tiny_e5), precision=precision, passage_engine="torch")  # type: ignore[arg-type]
    lean = SentenceEncoder(str(tiny_e5), precision=precision)  # type: ignore[arg-type]
    theirs = reference.encode_passages(list(PASSAGES), show_progress=False)
    prompt = lean.model.prompts["passage"]
    ours = lean._lean_encoder().encode_all(list(PASSAGES), prompt, token_budget=budget)  # type: ignore[union-attr]
    assert ours.shape == theirs.shape and ours.dtype == np.float32
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() >= 0.9999, (precision, budget, cosines)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    # The encoder's own path is the lean one, and gives the same rows.
    np.testing.assert_allclose(lean.encode_passages(list(PASSAGES)), ours, atol=1e-3)
    assert isinstance(lean._lean, LeanEncoder)
    assert lean.encode_passages([]).shape == (0, lean.dimension)


def test_token_budget_batches_cover_every_row_once_shortest_first():
    rng = np.random.default_rng(7)
    for _ in range(200):
        lengths = [int(x) for x in rng.integers(1, 60, size=int(rng.integers(0, 40)))]
        budget = int(rng.integers(1, 200))
        batches = token_budget_batches(lengths, budget)
        flat = [i for batch in batches for i in batch]
        assert sorted(flat) == list(range(len(lengths)))
        assert [lengths[i] for i in flat] == sorted(lengths)
        for batch in batches:
            assert batch and (len(batch) == 1 or sum(lengths[i] for i in batch) <= budget)
    with pytest.raises(ValueError, match="at least 1 token"):
        token_budget_batches([3], 0)


def test_passage_engine_is_checked_and_lean_by_default():
    assert SentenceEncoder().passage_engine == "lean"
    assert Settings().passage_engine == "lean"
    with pytest.raises(ValueError, match="unknown passage engine"):
        SentenceEncoder(passage_engine="onnx")  # type: ignore[arg-type]


def test_lean_tokens_are_sentence_transformers_tokens(tiny_e5):
    encoder = SentenceEncoder(str(tiny_e5), precision="fp32")
    model = encoder.model
    lean = LeanEncoder(model)
    for question in QUESTIONS:
        features = model.tokenizer(
            ["query: " + question], truncation=True, max_length=model[0].max_seq_length
        )
        assert lean.token_ids(question, "query: ") == features["input_ids"][0]
    assert len(lean.token_ids(QUESTIONS[-1], "query: ")) == model[0].max_seq_length
    # The lean path keeps its own tokenizer: the model's batches are still padded and untruncated.
    before = model.tokenizer(["短", "长一点的句子"], padding=True)["input_ids"]
    assert len(before[0]) == len(before[1])


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("rows", [1, 17, 100])
def test_packed_linear_is_the_linear_layer(precision, rows):
    import torch

    torch.manual_seed(rows)
    layer = torch.nn.Linear(64, 96)
    if precision == "bf16":
        layer = layer.to(torch.bfloat16)
    run = packed_linear(layer)
    x = torch.randn(rows, 64)
    with torch.inference_mode():
        got = run(x).float()
        expected = torch.nn.functional.linear(x.to(layer.weight.dtype), layer.weight, layer.bias)
    torch.testing.assert_close(got, expected.float(), rtol=1e-2, atol=1e-2)
    if torch.backends.mkldnn.is_available():
        assert run is not layer and run.__name__ == "run"  # the packed kernel, not the fallback


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fused_projections_are_the_three_linear_layers(precision):
    import torch

    torch.manual_seed(0)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    layers = [torch.nn.Linear(64, 64).to(dtype) for _ in range(3)]
    x = torch.randn(1, 17, 64)
    with torch.inference_mode():
        fused = fused_qkv(*layers)(x).float()
        separate = torch.cat([m(x.to(dtype)) for m in layers], dim=-1).float()
    torch.testing.assert_close(fused, separate, rtol=1e-2, atol=1e-2)


def test_quantised_layers_are_called_as_they_are():
    import torch

    from embeddings.precision import quantize_int8

    model = quantize_int8(torch.nn.Sequential(*(torch.nn.Linear(8, 8) for _ in range(3))))
    assert packed_linear(model[0]) is model[0]
    assert fused_qkv(*model) is None  # int8 projections stay three quantised calls
    mixed = [torch.nn.Linear(8, 8), torch.nn.Linear(8, 8).to(torch.bfloat16), torch.nn.Linear(8, 8)]
    assert fused_qkv(*mixed) is None


def test_a_model_the_lean_path_cannot_run_keeps_sentence_transformers(
    tmp_path, tiny_base, caplog: pytest.LogCaptureFixture
):
    folder = save_sentence_folder(tmp_path / "cls", tiny_base, pooling="cls")
    reference, lean = _pair(folder, "fp32")
    assert "not mean" in (unsupported_reason(lean.model) or "")
    with pytest.raises(ValueError, match="lean path cannot run"):
        LeanEncoder(lean.model)
    with caplog.at_level(logging.INFO, logger="embeddings.encoder"):
        vector = lean.encode_query(QUESTIONS[0])
    assert "lean path cannot run" in caplog.text and lean._lean is False
    np.testing.assert_allclose(vector, reference.encode_query(QUESTIONS[0]), atol=1e-6)
    passages = lean.encode_passages(list(PASSAGES[:3]), show_progress=False)
    expected = reference.encode_passages(list(PASSAGES[:3]), show_progress=False)
    np.testing.assert_allclose(passages, expected, atol=1e-6)


def test_lean_queries_from_many_threads_get_their_own_vectors(tiny_e5):
    encoder = SentenceEncoder(str(tiny_e5), precision="fp32")
    expected = {q: encoder.encode_query(q) for q in QUESTIONS}
    results: dict[tuple[int, str], np.ndarray] = {}

    def ask(worker: int) -> None:
        for question in QUESTIONS[worker % 2 :: 1]:
            results[worker, question] = encoder.encode_query(question)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for (_, question), vector in results.items():
        np.testing.assert_allclose(vector, expected[question], atol=1e-6)


def test_lean_is_the_default_query_engine():
    assert SentenceEncoder().query_engine == "lean"
    assert Settings().query_engine == "lean"


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_default_model_lean_vectors_match_sentence_transformers(precision):
    cache = REAL_LUDAO_HOME / "models"
    reference = SentenceEncoder("multilingual-e5-small", cache_dir=cache, precision=precision)
    reference.query_engine = "torch"
    lean = SentenceEncoder("multilingual-e5-small", cache_dir=cache, precision=precision)
    lean._model = reference.model  # one copy of the 470 MB model: the engines share it
    lean._resolved = reference.resolved_precision
    for question in (*QUESTIONS, "Who is responsible for the digital transformation work?"):
        cosine = float(lean.encode_query(question) @ reference.encode_query(question))
        assert cosine >= 0.9999, f"{precision} {question!r}: {cosine:.6f}"
    assert isinstance(lean._lean, LeanEncoder)
