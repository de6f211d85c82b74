"""The answer cache: normalised keys, LRU order, and invalidation when the index changes."""

from __future__ import annotations

import pytest
from conftest import FakeEncoder

from qa.answer_cache import AnswerCache, normalise_question
from qa.pipeline import Pipeline
from qa.readers import SentenceReader
from qa.retrieval import Retriever
from qa.schema import Response


def _response(text: str) -> Response:
    return Response(question=text, answers=[], hits=[], no_answer=True, reader="x")


def test_normalised_questions_share_a_key() -> None:
    assert normalise_question("年假几天？") == normalise_question(" 年假几天? ") == "年假几天"
    assert normalise_question("年假 几天") == "年假几天"
    assert normalise_question("ＡＢＣ  Opens?") == "abc opens"  # NFKC and case folding
    assert normalise_question("a bc") != normalise_question("ab c")
    assert normalise_question("年假几天") != normalise_question("病假几天")


def test_hit_miss_and_least_recently_used_eviction() -> None:
    cache = AnswerCache(2)
    owners = (object(),)
    assert cache.get("a", owners) is None
    cache.put("a", owners, _response("a"))
    cache.put("b", owners, _response("b"))
    assert cache.get("a", owners).question == "a"  # "a" is now the most recent
    cache.put("c", owners, _response("c"))  # evicts "b"
    assert cache.get("b", owners) is None and cache.get("c", owners) is not None
    assert (cache.hits, cache.misses, len(cache)) == (2, 2, 2)


def test_other_owners_empty_the_cache() -> None:
    cache = AnswerCache(8)
    index, reader = object(), object()
    cache.put("a", (index, reader), _response("a"))
    assert cache.get("a", (index, reader)) is not None
    assert cache.get("a", (object(), reader)) is None  # a new index: nothing survives
    assert len(cache) == 0
    assert cache.get("a", (index, reader)) is None  # and the old one does not come back


def test_size_zero_turns_it_off_and_negative_is_an_error() -> None:
    cache = AnswerCache(0)
    cache.put("a", (), _response("a"))
    assert cache.get("a", ()) is None and len(cache) == 0
    with pytest.raises(ValueError, match="cache size"):
        AnswerCache(-1)


class CountingReader(SentenceReader):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def read(self, question, passages, top_k=3):
        self.calls += 1
        return super().read(question, passages, top_k)


def _pipeline(passages, cache_size: int) -> tuple[Pipeline, FakeEncoder, CountingReader]:
    encoder, reader = FakeEncoder(), CountingReader()
    retriever = Retriever(encoder, passages).build()
    return Pipeline(retriever=retriever, reader=reader, cache_size=cache_size), encoder, reader


def test_pipeline_answers_a_repeated_question_from_the_cache(passages) -> None:
    pipeline, encoder, reader = _pipeline(passages, cache_size=16)
    first = pipeline.ask("工作满十年的员工可以休假几天？")
    again = pipeline.ask("工作满十年的员工可以休假几天?")
    assert (encoder.query_calls, reader.calls) == (1, 1)
    assert again.answers == first.answers and again.hits == first.hits
    assert again.question == "工作满十年的员工可以休假几天?"
    assert "cache" in again.timings_ms and "cache" not in first.timings_ms
    pipeline.ask("工作满十年的员工可以休假几天？", top_k=2)  # another top_k is another answer
    assert reader.calls == 2


def test_pipeline_cache_follows_index_and_reader_changes(passages) -> None:
    pipeline, _, reader = _pipeline(passages, cache_size=16)
    pipeline.ask("图书馆几点开门？")
    pipeline.retriever = Retriever(FakeEncoder(), passages[:3]).build()  # a reloaded index
    pipeline.ask("图书馆几点开门？")
    assert reader.calls == 2
    pipeline.retriever.dense_index = Retriever(FakeEncoder(), passages[:3]).build().dense_index
    pipeline.ask("图书馆几点开门？")
    assert reader.calls == 3
    pipeline.reader = other = CountingReader()
    pipeline.ask("图书馆几点开门？")
    assert other.calls == 1


def test_pipeline_without_a_cache_reads_every_time(passages) -> None:
    pipeline, _, reader = _pipeline(passages, cache_size=0)
    pipeline.ask("图书馆几点开门？")
    pipeline.ask("图书馆几点开门？")
    assert reader.calls == 2
