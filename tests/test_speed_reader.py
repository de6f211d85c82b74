"""Speed options of the neural reader: precision (bf16, int8), fewer passages, early exit."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from conftest import SYNTHETIC_QUESTION, make_passage, synthetic_code_example
from test_transformer_reader import faked

from qa.config import Settings
from qa.readers import TransformerReader, reader_from_settings


def _compare(
    reference: TransformerReader, other: TransformerReader, *, seed: int, n: int = 30
) -> tuple[int, int, float]:
    """On ``n`` synthetic questions: how often ``other`` is right, how often it agrees with
    ``reference``, and the largest gap between their top answers' probabilities."""
    rng = random.Random(seed)
    right = same = 0
    gap = 0.0
    for i in range(n):
        context, code, _ = synthetic_code_example(rng)
        passage = make_passage(f"p{i}", context)
        a = reference.read(SYNTHETIC_QUESTION, [passage], top_k=1).answers[0]
        b = other.read(SYNTHETIC_QUESTION, [passage], top_k=1).answers[0]
        right += b.text == code
        same += a.text == b.text
        gap = max(gap, abs(a.score - b.score))
    return right, same, gap


def test_int8_reader_loads_and_answers_like_the_float_one(tiny_trained_reader: Path) -> None:
    import torch

    fp32 = TransformerReader(str(tiny_trained_reader), max_length=64, stride=16, precision="fp32")
    int8 = TransformerReader(str(tiny_trained_reader), max_length=64, stride=16, precision="int8")
    int8.warm_up()
    linears = [m for m in int8._model.modules() if isinstance(m, torch.nn.Linear)]
    dynamic = [m for m in int8._model.modules() if "quantized" in type(m).__module__]
    assert dynamic and not linears  # every Linear was swapped for a dynamic int8 one
    right, same, _ = _compare(fp32, int8, seed=99)
    assert right >= 24 and same >= 27


@pytest.mark.parametrize("engine", ["torch", "lean"])
def test_bf16_reader_runs_in_bf16_and_answers_like_the_float_one(
    tiny_trained_reader: Path, engine: str
) -> None:
    import torch

    def reader(precision: str) -> TransformerReader:
        return TransformerReader(
            str(tiny_trained_reader), max_length=64, stride=16, precision=precision, engine=engine
        )

    fp32, bf16 = reader("fp32"), reader("bf16")
    assert bf16.resolved_precision == "bf16" and fp32.resolved_precision == "fp32"
    seen: list[torch.dtype] = []
    layer = next(m for m in bf16._model.modules() if isinstance(m, torch.nn.Linear))
    assert layer.weight.dtype == torch.bfloat16
    layer.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    right, same, score_gap = _compare(fp32, bf16, seed=7)
    if engine == "torch":
        assert set(seen) == {torch.bfloat16}  # the matmuls really ran in bf16
    else:  # the lean path calls no module: its products differ from fp32 by bf16's rounding
        assert bf16._lean is not None and not seen
        row = [list(range(5, 60))]
        gap = np.abs(bf16._lean.logits(row)[0][0] - fp32._lean.logits(row)[0][0]).max()
        assert 0 < gap < 0.5, gap
    assert right >= 27 and same >= 29 and score_gap < 0.05


def test_auto_precision_follows_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from embeddings import precision

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    assert precision.resolve_precision("auto") == "fp32"  # emulated bf16 would be slower
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert precision.resolve_precision("auto") == "bf16"
    assert precision.resolve_precision("fp32") == "fp32"
    assert precision.resolve_precision("int8") == "int8"  # never chosen automatically
    assert precision.resolve_precision("auto", "mps") == "fp32"
    with pytest.raises(ValueError, match="CPU only"):
        precision.resolve_precision("int8", "cuda")


def test_bad_options_are_clear_errors(tiny_trained_reader: Path) -> None:
    with pytest.raises(ValueError, match="precision"):
        TransformerReader(str(tiny_trained_reader), precision="int4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_passages"):
        TransformerReader(str(tiny_trained_reader), max_passages=0)
    with pytest.raises(ValueError, match="early_exit"):
        TransformerReader(str(tiny_trained_reader), early_exit=1.5)


def _passages(*texts: str):
    return [make_passage(f"d{i}", t) for i, t in enumerate(texts)]


def test_max_passages_reads_only_the_first_ones(qa_model_dir: Path, tiny_tokenizer) -> None:
    reader, model = faked(qa_model_dir, tiny_tokenizer, max_passages=1, batch_size=64)
    reading = reader.read("问题", _passages("天气甲很好乙。", "甲公司乙。"), top_k=3)
    assert sum(model.batches) == 1  # one short passage = one window
    assert {a.passage.doc_id for a in reading.answers} == {"d0"}


def test_early_exit_skips_the_rest_when_the_top_passage_is_sure(
    qa_model_dir: Path, tiny_tokenizer
) -> None:
    reader, model = faked(qa_model_dir, tiny_tokenizer, early_exit=0.5, batch_size=64)
    sure = reader.read("问题", _passages("天气甲很好乙。", "甲公司乙。", "甲三乙。"), top_k=3)
    assert model.batches == [1] and sure.early_exit
    assert sure.answers[0].text == "甲很好乙" and not sure.no_answer

    model.batches.clear()
    unsure = reader.read("问题", _passages("今天天气很好。", "甲公司乙。", "甲三乙。"), top_k=3)
    assert model.batches == [1, 2]  # the top passage alone, then the other two
    assert not unsure.early_exit
    assert unsure.answers[0].passage.doc_id in {"d1", "d2"}
    # The cost the benchmarks count: every position of every window, padding included.
    assert sure.tokens is not None and unsure.tokens is not None
    assert 0 < sure.tokens < unsure.tokens
    assert {"d1", "d2"} <= {a.passage.doc_id for a in unsure.answers}


def test_reader_from_settings_passes_the_speed_options(tiny_trained_reader: Path) -> None:
    settings = Settings(
        reader=str(tiny_trained_reader),
        reader_precision="int8",
        reader_passages=2,
        reader_early_exit=0.9,
        reader_max_length=48,
        reader_stride=12,
    )
    reader = reader_from_settings(settings)
    assert isinstance(reader, TransformerReader)
    assert (reader.precision, reader.max_passages, reader.early_exit) == ("int8", 2, 0.9)
    assert (reader.config.max_length, reader.config.stride) == (48, 12)
    off = Settings(reader=str(tiny_trained_reader), reader_early_exit=0.0, reader_passages=0)
    plain = reader_from_settings(off)
    assert (plain.max_passages, plain.early_exit, plain.precision) == (None, None, "auto")
    default = reader_from_settings(Settings(reader=str(tiny_trained_reader)))
    assert (default.early_exit, default.max_passages) == (0.8, 3)
