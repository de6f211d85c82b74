"""Reader training: data reading and splitting, window labels, and a tiny model that learns."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
import torch
from conftest import (
    SYNTHETIC_QUESTION,
    make_passage,
    save_tiny_base,
    synthetic_code_example,
    write_synthetic_squad,
)

from qa.readers import TransformerReader
from qa.training import (
    EVALUATION_ONLY_FILES,
    SpanExample,
    TrainConfig,
    build_windows,
    load_training_examples,
    read_span_examples,
    split_holdout,
    train_reader,
)


def squad(paragraphs: list[dict]) -> dict:
    return {"version": "test", "data": [{"title": "t", "paragraphs": paragraphs}]}


# --- the tiny model learns --------------------------------------------------------------------


def test_training_loss_falls(tiny_trained_reader: Path) -> None:
    info = json.loads((tiny_trained_reader / "training.json").read_text())
    losses = [h["loss"] for h in info["loss_history"]]
    assert info["steps"] == 500 and len(losses) == 25
    assert losses[-1] < 0.2 * losses[0]
    assert min(losses[-3:]) < 0.5
    assert (tiny_trained_reader / "model.safetensors").is_file()


def test_trained_reader_extracts_the_pattern_from_new_text(tiny_trained_reader: Path) -> None:
    reader = TransformerReader(str(tiny_trained_reader), max_length=64, stride=16)
    rng = random.Random(2024)  # not the seed the training set was drawn with
    right = 0
    for i in range(40):
        context, code, start = synthetic_code_example(rng)
        passage = make_passage(f"new{i}", context)
        reading = reader.read(SYNTHETIC_QUESTION, [passage], top_k=1)
        best = reading.answers[0]
        right += best.text == code and best.span.start == start
    assert right >= 32  # 80%


def test_trained_reader_finds_the_code_in_the_right_passage(tiny_trained_reader: Path) -> None:
    reader = TransformerReader(str(tiny_trained_reader), max_length=64, stride=16)
    decoy = make_passage("decoy", "今天天气很好，我们一起去公园散步，然后回家吃饭。")
    rng = random.Random(7)
    chosen = 0
    for i in range(10):
        context, code, _ = synthetic_code_example(rng)
        reading = reader.read(SYNTHETIC_QUESTION, [decoy, make_passage(f"t{i}", context)], 2)
        best = reading.answers[0]
        chosen += best.passage.doc_id == f"t{i}" and code.startswith(best.text[:2])
    assert chosen >= 9  # the passage without a code never wins


def test_holdout_is_written_for_calibration(tiny_trained_reader: Path) -> None:
    lines = (tiny_trained_reader / "holdout.jsonl").read_text(encoding="utf-8").splitlines()
    held = [SpanExample(**json.loads(line)) for line in lines]
    assert 10 <= len(held) <= 60  # about 10% of 300
    for ex in held:
        assert ex.context[ex.answer_start :].startswith(ex.answer_text)


def test_second_phase_continues_from_the_checkpoint(
    tiny_trained_reader: Path, tmp_path: Path
) -> None:
    info = json.loads((tiny_trained_reader / "training.json").read_text())
    config = TrainConfig(
        **{
            **info["config"],
            "data_dir": Path(info["config"]["data_dir"]),
            "files": tuple(info["config"]["files"]),
            "out_dir": tmp_path / "phase2",
            "init_from": tiny_trained_reader,
            "seed": 99,  # another shuffle, but the same held-out paragraphs
            "max_steps": 20,
            "learning_rate": 1e-4,
        }
    )
    threads = torch.get_num_threads()
    try:
        out = train_reader(config)
    finally:
        torch.set_num_threads(threads)
    first_loss = json.loads((out / "training.json").read_text())["loss_history"][0]["loss"]
    assert first_loss < 0.2 * info["loss_history"][0]["loss"]  # it did not start from scratch
    held = (out / "holdout.jsonl").read_text(encoding="utf-8")
    assert held == (tiny_trained_reader / "holdout.jsonl").read_text(encoding="utf-8")


def _phase_config(trained: Path, out: Path, **overrides) -> TrainConfig:
    info = json.loads((trained / "training.json").read_text())
    return TrainConfig(
        **{
            **info["config"],
            "data_dir": Path(info["config"]["data_dir"]),
            "files": tuple(info["config"]["files"]),
            "out_dir": out,
            "init_from": trained,
            "seed": 99,
            "max_steps": 40,
            "checkpoint_every": 20,
            "learning_rate": 1e-3,
            **overrides,
        }
    )


def _train(config: TrainConfig) -> Path:
    threads = torch.get_num_threads()
    try:
        return train_reader(config)
    finally:
        torch.set_num_threads(threads)


def test_an_interrupted_run_resumes_as_if_it_had_not_stopped(
    tiny_trained_reader: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safetensors.torch import load_file

    import qa.training.loop as loop

    whole = _train(_phase_config(tiny_trained_reader, tmp_path / "whole"))

    saved = loop._save_state

    def save_then_stop(*args, **kwargs):
        saved(*args, **kwargs)
        raise KeyboardInterrupt  # the machine went away right after the first checkpoint

    monkeypatch.setattr(loop, "_save_state", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        _train(_phase_config(tiny_trained_reader, tmp_path / "cut"))
    assert json.loads((tmp_path / "cut" / "training.json").read_text())["steps"] == 20
    monkeypatch.setattr(loop, "_save_state", saved)
    resumed = _train(_phase_config(tiny_trained_reader, tmp_path / "cut", resume=True))

    a = json.loads((whole / "training.json").read_text())
    b = json.loads((resumed / "training.json").read_text())
    assert a["steps"] == b["steps"] == 40
    assert [h["step"] for h in b["loss_history"]] == [20, 40]
    losses = [h["loss"] for h in b["loss_history"]]
    assert losses == pytest.approx([h["loss"] for h in a["loss_history"]], abs=2e-4)
    wa, wb = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=1e-5, atol=1e-6)


def test_resume_refuses_a_run_with_other_data_settings(
    tiny_trained_reader: Path, tmp_path: Path
) -> None:
    _train(_phase_config(tiny_trained_reader, tmp_path / "run", max_steps=20))
    with pytest.raises(ValueError, match="stride"):
        _train(_phase_config(tiny_trained_reader, tmp_path / "run", resume=True, stride=24))


def test_resume_without_a_checkpoint_starts_fresh(
    tiny_trained_reader: Path, tmp_path: Path
) -> None:
    out = _train(_phase_config(tiny_trained_reader, tmp_path / "new", resume=True, max_steps=20))
    assert json.loads((out / "training.json").read_text())["steps"] == 20
    from qa.training.loop import STATE_FILE

    assert (out / STATE_FILE).is_file()


def test_a_second_phase_starts_from_a_compact_reader(
    tiny_trained_reader: Path, tmp_path: Path
) -> None:
    from qa.readers.compact import ReaderConfig, export_compact

    info = json.loads((tiny_trained_reader / "training.json").read_text())
    compact = tmp_path / "compact"
    export_compact(
        tiny_trained_reader, compact, ReaderConfig(base_model=info["config"]["base_model"])
    )
    out = _train(_phase_config(tiny_trained_reader, tmp_path / "p2", init_from=compact))
    first = json.loads((out / "training.json").read_text())["loss_history"][0]["loss"]
    assert first < 0.2 * info["loss_history"][0]["loss"]  # the compact weights were loaded


# --- reading the training files ----------------------------------------------------------------


@pytest.mark.parametrize("name", EVALUATION_ONLY_FILES)
def test_evaluation_files_are_never_read_for_training(tmp_path: Path, name: str) -> None:
    write_synthetic_squad(tmp_path / name, 2, seed=0)
    with pytest.raises(ValueError, match="evaluation only"):
        read_span_examples(tmp_path / name)


def test_train_reader_refuses_an_evaluation_file(tmp_path: Path, tiny_tokenizer) -> None:
    base = save_tiny_base(tmp_path / "base", tiny_tokenizer)
    write_synthetic_squad(tmp_path / "data" / "cmrc2018_dev.json", 4, seed=0)
    config = TrainConfig(
        data_dir=tmp_path / "data",
        out_dir=tmp_path / "out",
        base_model=str(base),
        files=("cmrc2018_dev.json",),
        max_steps=1,
    )
    with pytest.raises(ValueError, match="evaluation only"):
        train_reader(config)
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_squad_file_becomes_examples(tmp_path: Path) -> None:
    path = write_synthetic_squad(tmp_path / "cmrc2018_train.json", 5, seed=3)
    examples = read_span_examples(path)
    assert len(examples) == 5
    assert len({ex.paragraph_key for ex in examples}) == 5
    for ex in examples:
        assert ex.context[ex.answer_start : ex.answer_start + len(ex.answer_text)] == ex.answer_text
        assert ex.language == "zh" and ex.question == SYNTHETIC_QUESTION


TRADITIONAL = "臺灣的首都是臺北市，人口約兩百六十萬，擁有許多國際機構。"


def test_traditional_text_is_converted_and_offsets_still_match(tmp_path: Path) -> None:
    answers = ["臺北市", "兩百六十萬", "國際機構"]
    qas = [
        {
            "id": f"d{i}",
            "question": f"第{i}個問題是甚麼？",
            "answers": [{"text": a, "answer_start": TRADITIONAL.index(a)}],
        }
        for i, a in enumerate(answers)
    ]
    qas.append(  # a wrong offset is repaired by finding the text
        {"id": "off", "question": "首都？", "answers": [{"text": "臺北市", "answer_start": 0}]}
    )
    qas.append(  # an answer that is not in the paragraph is dropped
        {"id": "gone", "question": "總統？", "answers": [{"text": "高雄", "answer_start": 3}]}
    )
    path = tmp_path / "drcd_sample.json"
    path.write_text(json.dumps(squad([{"context": TRADITIONAL, "qas": qas}]), ensure_ascii=False))

    examples = read_span_examples(path, to_simplified=True)
    assert [ex.id for ex in examples] == ["d0", "d1", "d2", "off"]
    assert examples[0].context.startswith("台湾的首都是台北市")
    assert [ex.answer_text for ex in examples] == ["台北市", "两百六十万", "国际机构", "台北市"]
    for ex in examples:
        assert ex.context[ex.answer_start : ex.answer_start + len(ex.answer_text)] == ex.answer_text
        assert "個" not in ex.question and "臺" not in ex.context

    config = TrainConfig(data_dir=tmp_path, out_dir=tmp_path, files=(path.name,))
    train, held = load_training_examples(
        config, random.Random(0)
    )  # drcd* files are converted by name
    assert {ex.context for ex in train + held} == {examples[0].context}


def test_questions_without_text_or_answers_are_skipped(tmp_path: Path) -> None:
    qas = [
        {"id": "blank", "question": "  ", "answers": [{"text": "甲", "answer_start": 0}]},
        {"id": "none", "question": "有吗？", "answers": []},
        {"id": "ok", "question": "是什么？", "answers": [{"text": "甲", "answer_start": 0}]},
    ]
    path = tmp_path / "cmrc2018_trial.json"
    path.write_text(json.dumps(squad([{"context": "甲乙丙。", "qas": qas}])))
    assert [ex.id for ex in read_span_examples(path)] == ["ok"]


# --- holding out whole paragraphs --------------------------------------------------------------


def many_examples(paragraphs: int = 400, per_paragraph: int = 3) -> list[SpanExample]:
    return [
        SpanExample(
            id=f"{p}-{q}",
            question=f"问题{q}？",
            context=f"段落{p}的内容。",
            answer_start=0,
            answer_text="段落",
            paragraph_key=f"file:0:{p}",
            language="zh",
        )
        for p in range(paragraphs)
        for q in range(per_paragraph)
    ]


def test_holdout_never_splits_a_paragraph() -> None:
    examples = many_examples()
    train, held = split_holdout(examples, 0.1, seed=13)
    assert len(train) + len(held) == len(examples)
    assert {e.paragraph_key for e in train}.isdisjoint({e.paragraph_key for e in held})
    assert 0.05 < len(held) / len(examples) < 0.15
    _, again_held = split_holdout(examples, 0.1, seed=13)
    assert again_held == held  # a stable hash: the same split every run
    _, other = split_holdout(examples, 0.1, seed=14)
    assert other != held
    assert split_holdout(examples, 0.0, seed=13)[1] == []


# --- window labels -----------------------------------------------------------------------------


def window_text(tokenizer, ids: list[int]) -> str:
    pieces = tokenizer.convert_ids_to_tokens(ids)
    return "".join(p for p in pieces if p not in tokenizer.all_special_tokens).replace("▁", "")


def test_window_labels_point_at_the_answer(tiny_tokenizer) -> None:
    rng = random.Random(5)
    examples = []
    for i in range(30):
        context, code, _ = synthetic_code_example(rng)
        context = "很长的开头。" * rng.randint(0, 12) + context  # some answers in later windows
        question = f"问题{i}：编号是什么？"
        examples.append(
            SpanExample(f"q{i}", question, context, context.index(code), code, f"f:0:{i}", "zh")
        )
    windows = build_windows(
        tiny_tokenizer,
        examples,
        max_length=40,
        stride=10,
        negative_fraction=1.0,
        rng=random.Random(0),
    )
    assert all(len(w.input_ids) <= 40 for w in windows)
    positives = [w for w in windows if w.start > 0]
    negatives = [w for w in windows if w.start == 0]
    assert negatives and all(w.end == 0 for w in negatives)
    assert len(positives) == len(examples)  # one answer-bearing window per question
    for w in windows:
        sep = w.input_ids.index(tiny_tokenizer.sep_token_id)
        asked = window_text(tiny_tokenizer, w.input_ids[:sep])
        example = examples[int(re.match(r"问题(\d+)", asked).group(1))]
        context = window_text(tiny_tokenizer, w.input_ids[sep:])
        if w.start > 0:
            assert sep < w.start <= w.end < len(w.input_ids)
            answer = window_text(tiny_tokenizer, w.input_ids[w.start : w.end + 1])
            assert answer == example.answer_text
        else:
            assert example.answer_text not in context
