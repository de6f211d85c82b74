"""The compact reader: only what training changed, in float16, put back on the base weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import make_passage, save_tiny_base

from qa.errors import ModelLoadError
from qa.readers import TransformerReader
from qa.readers.compact import (
    DELTA_WEIGHTS,
    WORD_EMBEDDINGS,
    ReaderConfig,
    export_compact,
    load_reader_model,
)
from qa.readers.spans import Calibration


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer) -> tuple[Path, Path]:
    """(base folder, checkpoint folder): a QA model whose encoder moved away from its base."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    root = tmp_path_factory.mktemp("packaging")
    base = save_tiny_base(root / "base", tiny_tokenizer, seed=2)
    model = AutoModelForQuestionAnswering.from_pretrained(base)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name != WORD_EMBEDDINGS:  # training keeps the word embeddings frozen
                param.add_(0.05 * torch.randn(param.shape, generator=generator))
    checkpoint = root / "checkpoint"
    model.save_pretrained(checkpoint)
    tiny_tokenizer.save_pretrained(checkpoint)
    return base, checkpoint


def reader_config(base: Path) -> ReaderConfig:
    return ReaderConfig(
        base_model=str(base),
        max_length=64,
        stride=16,
        max_answer_tokens=10,
        calibration=Calibration(scale=0.8, bias=-0.3),
        no_answer_threshold=0.42,
        metrics={"heldout_f1_forced": 12.5},
    )


def logits_of(model, tokenizer) -> np.ndarray:
    import torch

    enc = tokenizer(["收入是多少？"], ["公司2023年实现营业收入448.53亿元。"], return_tensors="pt")
    with torch.inference_mode():
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    return np.concatenate([out.start_logits.numpy(), out.end_logits.numpy()])


def test_compact_reader_reproduces_the_checkpoint(trained, tmp_path: Path) -> None:
    from safetensors import safe_open

    base, checkpoint = trained
    out = export_compact(checkpoint, tmp_path / "compact", reader_config(base))
    with safe_open(str(out / DELTA_WEIGHTS), framework="pt") as fh:
        names = list(fh.keys())
        dtypes = {str(fh.get_tensor(n).dtype) for n in names}
    assert WORD_EMBEDDINGS not in names and "qa_outputs.weight" in names
    assert dtypes == {"torch.float16"}
    size = (out / DELTA_WEIGHTS).stat().st_size
    assert size < (checkpoint / "model.safetensors").stat().st_size / 4

    original, tokenizer, _ = load_reader_model(str(checkpoint))
    compact, compact_tokenizer, config = load_reader_model(str(out))
    assert compact_tokenizer("测试")["input_ids"] == tokenizer("测试")["input_ids"]
    np.testing.assert_allclose(
        logits_of(compact, tokenizer), logits_of(original, tokenizer), atol=2e-2
    )
    assert config == reader_config(base)  # calibration, threshold and metrics travel along


def test_compact_reader_is_not_just_the_base_model(trained, tmp_path: Path) -> None:
    from transformers import AutoModelForQuestionAnswering

    base, checkpoint = trained
    out = export_compact(checkpoint, tmp_path / "compact", reader_config(base))
    compact, tokenizer, _ = load_reader_model(str(out))
    fresh = AutoModelForQuestionAnswering.from_pretrained(base).eval()
    assert not np.allclose(logits_of(compact, tokenizer), logits_of(fresh, tokenizer), atol=2e-2)


def test_compact_and_full_readers_give_the_same_answers(trained, tmp_path: Path) -> None:
    base, checkpoint = trained
    out = export_compact(checkpoint, tmp_path / "compact", reader_config(base))
    passages = [
        make_passage("a", "公司2023年实现营业收入448.53亿元，同比增长3.46%。"),
        make_passage("b", "员工每年享有带薪年休假，工作满十年的员工可以休假十天。"),
    ]
    full_dir = shutil.copytree(checkpoint, tmp_path / "full")
    ReaderConfig(**{**reader_config(base).__dict__, "base_model": None}).write(full_dir)
    full = TransformerReader(str(full_dir)).read("收入是多少？", passages)
    compact = TransformerReader(str(out)).read("收入是多少？", passages)
    assert [a.text for a in compact.answers] == [a.text for a in full.answers]
    assert np.allclose(
        [a.score for a in compact.answers], [a.score for a in full.answers], atol=0.02
    )
    assert compact.no_answer == full.no_answer


def test_compact_reader_without_base_model_is_refused(trained, tmp_path: Path) -> None:
    _, checkpoint = trained
    out = export_compact(checkpoint, tmp_path / "compact", ReaderConfig(base_model=None))
    with pytest.raises(ModelLoadError, match="base_model"):
        load_reader_model(str(out))


def test_delta_that_does_not_match_its_config_is_refused(trained, tmp_path: Path) -> None:
    base, checkpoint = trained
    out = export_compact(checkpoint, tmp_path / "compact", reader_config(base))
    config = json.loads((out / "config.json").read_text())
    config["num_hidden_layers"] += 1  # the delta holds two layers, the config now asks for three
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="does not match"):
        load_reader_model(str(out))


def test_reader_config_round_trip_and_defaults(tmp_path: Path) -> None:
    assert ReaderConfig.read(tmp_path) == ReaderConfig()
    config = reader_config(tmp_path)
    config.write(tmp_path)
    assert ReaderConfig.read(tmp_path) == config
    raw = json.loads((tmp_path / "reader.json").read_text())
    raw["written_by"] = "a newer Ludao"  # unknown keys are ignored, not fatal
    (tmp_path / "reader.json").write_text(json.dumps(raw))
    assert ReaderConfig.read(tmp_path) == config
