"""The reader on the lean BERT layers (qa.readers.lean, #14): transformers' logits and answers.

A tiny random ``BertForQuestionAnswering`` with 64-token windows, so passages overflow into
windows of different lengths (the padding the lean path never multiplies). Its logits must be
those of transformers' forward at each precision, its readings the same, and a model it cannot
run must keep transformers' forward.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import make_passage, save_tiny_qa_model, tiny_bert_config

from qa.config import Settings
from qa.readers import load_reader
from qa.readers.lean import LeanSpanScorer, unsupported_reason
from qa.readers.transformer import TransformerReader
from qa.readers.windows import make_windows

QUESTION = "工作满十年的员工可以休假几天？"
TEXTS = (
    "工作满十年的员工每年可以休假十五天，满二十年的二十天。" * 3,  # overflows: two windows
    "短。",
    "The library opens at nine on weekdays and at ten on weekends.",
)


def _readers(folder, precision: str) -> tuple[TransformerReader, TransformerReader]:
    lean = TransformerReader(str(folder), precision=precision, engine="lean")  # type: ignore[arg-type]
    torch_ = TransformerReader(str(folder), precision=precision, engine="torch")  # type: ignore[arg-type]
    lean.warm_up()
    torch_.warm_up()
    return lean, torch_


@pytest.mark.parametrize(("precision", "atol"), [("fp32", 1e-4), ("bf16", 5e-2), ("int8", 1e-4)])
def test_lean_logits_are_transformers_logits(qa_model_dir, precision, atol):
    lean, torch_ = _readers(qa_model_dir, precision)
    assert lean._lean is not None and torch_._lean is None
    windows = make_windows(
        lean._tokenizer, [QUESTION] * len(TEXTS), list(TEXTS), max_length=64, stride=16
    )
    assert len({len(r) for r in windows.input_ids}) > 1, "windows of one length test no padding"
    ours, theirs = lean._run(windows), torch_._run(windows)
    for w in range(len(windows)):
        assert ours.start[w].shape == (len(windows.input_ids[w]),)
        np.testing.assert_allclose(ours.start[w], theirs.start[w], atol=atol)
        np.testing.assert_allclose(ours.end[w], theirs.end[w], atol=atol)
    assert ours.widths == [len(r) for r in windows.input_ids]  # no padding counted
    assert ours.tokens < theirs.tokens  # transformers' batches were padded to the longest


def test_lean_readings_are_transformers_readings(qa_model_dir):
    lean, torch_ = _readers(qa_model_dir, "fp32")
    passages = [make_passage(f"doc{i}", text) for i, text in enumerate(TEXTS)]
    ours, theirs = lean.read(QUESTION, passages, top_k=3), torch_.read(QUESTION, passages, top_k=3)
    assert [(a.text, a.passage.id, a.span) for a in ours.answers] == [
        (a.text, a.passage.id, a.span) for a in theirs.answers
    ]
    for a, b in zip(ours.answers, theirs.answers, strict=True):
        assert a.score == pytest.approx(b.score, abs=1e-5)
    assert ours.no_answer == theirs.no_answer
    batch = lean.read_many([(QUESTION, passages, 3), ("When does it open?", passages[2:], 2)])
    assert [a.text for a in batch[0].answers] == [a.text for a in ours.answers]


def test_scores_rows_of_any_length_alone_or_together(qa_model_dir):
    lean, _ = _readers(qa_model_dir, "fp32")
    rows = [[0, 5, 6, 7, 2], [0, 9, 2], list(range(3, 40))]
    together = lean._lean.logits(rows)
    for row, (start, end) in zip(rows, together, strict=True):
        alone_start, alone_end = lean._lean.logits([row])[0]
        np.testing.assert_allclose(start, alone_start, atol=1e-5)
        np.testing.assert_allclose(end, alone_end, atol=1e-5)


def test_engine_is_checked_and_lean_by_default(qa_model_dir):
    assert Settings().reader_engine == "lean"
    assert TransformerReader(str(qa_model_dir)).engine == "lean"
    with pytest.raises(ValueError, match="unknown reader engine"):
        TransformerReader(str(qa_model_dir), engine="onnx")
    reader = load_reader(str(qa_model_dir), engine="torch")
    reader.warm_up()
    assert reader._lean is None


def test_a_reader_the_lean_path_cannot_run_keeps_transformers(
    tmp_path, tiny_tokenizer, caplog: pytest.LogCaptureFixture
):
    from transformers import BertForQuestionAnswering

    config = tiny_bert_config(len(tiny_tokenizer))
    config.hidden_act = "relu"
    model = BertForQuestionAnswering(config).eval()
    assert "not gelu" in (unsupported_reason(model, tiny_tokenizer) or "")
    with pytest.raises(ValueError, match="cannot run this reader"):
        LeanSpanScorer(model, tiny_tokenizer)
    model.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    reader = TransformerReader(str(tmp_path), precision="fp32")
    with caplog.at_level(logging.INFO, logger="qa.readers.transformer"):
        reading = reader.read(QUESTION, [make_passage("d", TEXTS[0])])
    assert "lean path cannot run" in caplog.text and reader._lean is None
    assert reading.tokens > 0


def test_a_non_bert_model_is_reported():
    class Other:
        qa_outputs = None

    assert "not a BertForQuestionAnswering" in (unsupported_reason(Other(), None) or "")


def test_tiny_models_differ_so_the_comparison_can_fail(tmp_path, tiny_tokenizer, qa_model_dir):
    """A different model gives different logits: the tests above compare something real."""
    other = tmp_path / "other"
    save_tiny_qa_model(other, tiny_tokenizer, seed=7)
    a, _ = _readers(qa_model_dir, "fp32")
    b, _ = _readers(other, "fp32")
    row = [[0, 5, 6, 7, 8, 2]]
    assert not np.allclose(a._lean.logits(row)[0][0], b._lean.logits(row)[0][0], atol=1e-3)
