"""The neural reader end to end on a tiny random model, and its decoding on a faked model."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import make_passage

from qa.errors import ModelLoadError
from qa.readers import SentenceReader, TransformerReader, load_reader
from qa.readers.compact import ReaderConfig
from qa.schema import Passage

QUESTION = "公司的营业收入是多少？"


class PeakModel:
    """Stands in for the model: start logits peak on one token id, end logits on another.

    Every other position scores -10 and the no-answer token 0, so a window holding both marks
    gets a margin of +20 and a window without them a negative one.
    """

    def __init__(self, start_id: int, end_id: int, peak: float = 10.0) -> None:
        self.start_id, self.end_id, self.peak = start_id, end_id, peak
        self.batches: list[int] = []

    def __call__(self, *, input_ids, attention_mask):
        import torch

        self.batches.append(int(input_ids.shape[0]))
        start = torch.full(input_ids.shape, -10.0)
        end = torch.full(input_ids.shape, -10.0)
        start[input_ids == self.start_id] = self.peak
        end[input_ids == self.end_id] = self.peak
        start[:, 0] = end[:, 0] = 0.0
        return SimpleNamespace(start_logits=start, end_logits=end)


def faked(folder: Path, tokenizer, start: str = "甲", end: str = "乙", **options):
    """A reader whose model call is ``PeakModel``'s (transformers' forward path: the lean path
    runs the real weights, tested in test_lean_reader.py)."""
    reader = TransformerReader(str(folder), engine="torch", **options)
    reader.warm_up()
    model = PeakModel(*tokenizer.convert_tokens_to_ids([start, end]))
    reader._model = model
    return reader, model


def check_answers(reading, passages: list[Passage], top_k: int) -> None:
    answers = reading.answers
    assert 0 < len(answers) <= top_k
    ids = {p.id for p in passages}
    for a in answers:
        assert a.passage.id in ids
        assert a.text == a.passage.text[a.span.start : a.span.end]
        assert a.text and a.text == a.text.strip()
        assert 0.0 <= a.score <= 1.0
    scores = [a.score for a in answers]
    assert scores == sorted(scores, reverse=True)
    assert len({a.text for a in answers}) == len(answers)
    for i, a in enumerate(answers):
        for b in answers[i + 1 :]:
            if a.passage.id == b.passage.id:
                assert a.span.end <= b.span.start or b.span.end <= a.span.start


def test_random_model_returns_well_formed_answers(qa_model_dir: Path, passages) -> None:
    reader = TransformerReader(str(qa_model_dir))
    assert reader.name == qa_model_dir.name
    reading = reader.read(QUESTION, passages, top_k=3)
    check_answers(reading, passages, top_k=3)
    assert reading.best_score == reading.answers[0].score
    assert reader.config.max_length == 64  # reader.json travelled with the model


@pytest.mark.parametrize(("threshold", "declines"), [(1.01, True), (0.0, False)])
def test_no_answer_follows_the_threshold(
    qa_model_dir: Path, passages, threshold: float, declines: bool
) -> None:
    reader = TransformerReader(str(qa_model_dir), no_answer_threshold=threshold)
    reading = reader.read(QUESTION, passages[:3])
    assert reading.no_answer is declines
    assert reading.answers  # candidates are kept even when the reader declines


def test_threshold_from_reader_json(qa_model_dir: Path, tmp_path: Path, passages) -> None:
    folder = tmp_path / "strict"
    shutil.copytree(qa_model_dir, folder)
    ReaderConfig(max_length=64, stride=16, no_answer_threshold=1.01).write(folder)
    assert TransformerReader(str(folder)).read(QUESTION, passages[:2]).no_answer
    assert TransformerReader(str(qa_model_dir)).config.no_answer_threshold == 0.5


def test_batching_does_not_change_scores(qa_model_dir: Path, passages) -> None:
    one = TransformerReader(str(qa_model_dir), batch_size=1).read(QUESTION, passages, top_k=5)
    many = TransformerReader(str(qa_model_dir), batch_size=16).read(QUESTION, passages, top_k=5)
    assert [a.text for a in one.answers] == [a.text for a in many.answers]
    assert np.allclose([a.score for a in one.answers], [a.score for a in many.answers], atol=1e-5)


def test_no_passages_means_no_answer(qa_model_dir: Path) -> None:
    reading = TransformerReader(str(qa_model_dir)).read(QUESTION, [])
    assert reading.no_answer and reading.answers == []


def test_decoding_maps_back_to_the_exact_characters(qa_model_dir: Path, tiny_tokenizer) -> None:
    reader, _ = faked(qa_model_dir, tiny_tokenizer)
    first = make_passage("a", "这一段讲的是别的事情，没有要找的内容。")
    second = make_passage("b", "前面的文字，答案是甲子丙丁乙，后面还有文字。")
    reading = reader.read("问题？", [first, second], top_k=3)
    check_answers(reading, [first, second], top_k=3)
    best = reading.answers[0]
    assert best.passage.id == second.id
    assert best.text == "甲子丙丁乙"
    start = second.text.index("甲")
    assert (best.span.start, best.span.end) == (start, start + 5)
    assert best.score > 0.99 and not reading.no_answer
    assert reading.best_margin == pytest.approx(20.0)


def test_answer_near_the_end_of_a_long_passage(qa_model_dir: Path, tiny_tokenizer) -> None:
    reader, model = faked(qa_model_dir, tiny_tokenizer, batch_size=4)
    filler = "这是一段很长的说明文字，用来把答案推到最后一个窗口里。" * 8
    text = filler + "结论：甲三乙。"
    passage = make_passage("long", text)
    reading = reader.read("结论是什么？", [passage], top_k=1)
    best = reading.answers[0]
    assert best.text == "甲三乙"
    assert best.span.start == len(filler) + 3
    assert sum(model.batches) > 3  # the passage really was cut into several windows


def test_answer_across_a_window_edge_is_found_whole(qa_model_dir: Path, tiny_tokenizer) -> None:
    reader, _ = faked(qa_model_dir, tiny_tokenizer)
    for shift in range(0, 60, 7):  # the answer slides across the edges of the 64-token windows
        text = "字" * shift + "开头甲一二三乙结尾" + "字" * 80
        reading = reader.read("问？", [make_passage("p", text)], top_k=1)
        assert reading.answers[0].text == "甲一二三乙", shift
        assert reading.answers[0].span.start == shift + 2


def test_same_text_in_two_passages_is_one_answer(qa_model_dir: Path, tiny_tokenizer) -> None:
    reader, _ = faked(qa_model_dir, tiny_tokenizer)
    a = make_passage("a", "第一处：甲同乙。")
    b = make_passage("b", "第二处也写着甲同乙。")
    reading = reader.read("问？", [a, b], top_k=3)
    assert [x.text for x in reading.answers].count("甲同乙") == 1
    check_answers(reading, [a, b], top_k=3)


def test_declines_when_every_window_prefers_no_answer(qa_model_dir: Path, tiny_tokenizer) -> None:
    reader, _ = faked(qa_model_dir, tiny_tokenizer)
    reading = reader.read("问？", [make_passage("x", "这里没有标记字符，只有普通的句子。")])
    assert reading.no_answer
    assert reading.best_margin is not None and reading.best_margin < 0
    assert all(a.score < 0.5 for a in reading.answers)


def test_load_reader_picks_the_kind(qa_model_dir: Path) -> None:
    assert isinstance(load_reader("sentence"), SentenceReader)
    reader = load_reader(str(qa_model_dir))
    assert isinstance(reader, TransformerReader)
    assert reader._model is None  # loading waits for the first question


def test_unloadable_model_is_a_model_load_error(tmp_path: Path, passages) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="cannot load reader model"):
        TransformerReader(str(tmp_path / "empty")).read(QUESTION, passages)
