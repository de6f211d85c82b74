"""Hybrid search: reciprocal-rank fusion, BM25 over jieba tokens, weights."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FakeEncoder, make_passage

from qa.errors import QuestionError
from qa.retrieval import Retriever, rrf_fuse
from qa.schema import Hit, Passage


def test_rrf_by_hand() -> None:
    # dense: a b c ; sparse: c a ; k = 1
    # a = 1/(1+1) + 1/(1+2) = 5/6 ; c = 1/(1+3) + 1/(1+1) = 3/4 ; b = 1/(1+2) = 1/3
    fused = rrf_fuse([([0, 1, 2], 1.0), ([2, 0], 1.0)], rrf_k=1)
    assert [doc for doc, _ in fused] == [0, 2, 1]
    assert [score for _, score in fused] == pytest.approx([5 / 6, 3 / 4, 1 / 3])


def test_rrf_weights_and_ties() -> None:
    # dense weight 2: a = 2/61 ; sparse weight 1: b = 1/61 + ... ; ties broken by best rank
    fused = dict(rrf_fuse([([0], 2.0), ([1, 0], 1.0)], rrf_k=60))
    assert fused[0] == pytest.approx(2 / 61 + 1 / 62)
    assert fused[1] == pytest.approx(1 / 61)
    tie = rrf_fuse([([5, 6], 1.0), ([6, 5], 1.0)], rrf_k=60)
    assert [doc for doc, _ in tie] == [5, 6]  # equal scores, equal best rank → smaller id


class FixedEncoder(FakeEncoder):
    """Puts the query closest to a chosen passage, to pin the dense ranking."""

    def __init__(self, passages: list[Passage], order: list[int]) -> None:
        super().__init__(dimension=len(passages))
        self.passages = passages
        self.order = order

    def encode_passages(self, texts: list[str], *, show_progress: bool | None = None) -> np.ndarray:
        return np.eye(len(texts), self.dimension, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, dtype=np.float32)
        for rank, doc in enumerate(self.order):
            vector[doc] = len(self.order) - rank
        return vector / np.linalg.norm(vector)


def test_search_fuses_both_rankings_by_hand() -> None:
    passages = [
        make_passage("a", "报销流程需要部门负责人签字"),
        make_passage("b", "年休假天数与工龄有关"),
        make_passage("c", "差旅报销应在出差结束后十日内提交"),
    ]
    encoder = FixedEncoder(passages, order=[1, 0, 2])  # dense: b, a, c
    retriever = Retriever(encoder, passages, rrf_k=10).build()
    hits = retriever.search("报销", top_k=3)
    by_doc = {h.passage.doc_id: h for h in hits}
    # sparse: only a and c contain 报销; their BM25 order decides ranks 1 and 2
    assert {by_doc["a"].sparse_rank, by_doc["c"].sparse_rank} == {1, 2}
    assert by_doc["b"].sparse_rank is None
    assert [by_doc[d].dense_rank for d in "bac"] == [1, 2, 3]
    for hit in hits:
        expected = 1 / (10 + hit.dense_rank)
        if hit.sparse_rank is not None:
            expected += 1 / (10 + hit.sparse_rank)
        assert hit.score == pytest.approx(expected)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].passage.doc_id in {"a", "c"}  # found by both sides


def test_bm25_finds_a_word_inside_a_long_chinese_run(
    fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    retriever = Retriever(fake_encoder, passages, dense_weight=0.0).build()
    hits = retriever.search("哪个部门负责转型？", top_k=3)
    assert hits[0].passage.doc_id == "it"
    assert hits[0].sparse_rank == 1 and hits[0].dense_rank is None


def test_bm25_matches_numbers_whole(fake_encoder: FakeEncoder, passages: list[Passage]) -> None:
    retriever = Retriever(fake_encoder, passages, dense_weight=0.0).build()
    assert retriever.search("增长3.46%", top_k=1)[0].passage.doc_id == "report"
    assert retriever.search("448.53亿元", top_k=1)[0].passage.doc_id == "report"


def test_sparse_ranking_leaves_out_passages_without_query_terms(
    fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    retriever = Retriever(fake_encoder, passages, dense_weight=0.0).build()
    assert retriever.search("badge", top_k=5) == retriever.search("badge", top_k=1)
    assert retriever.search("完全无关的词语", top_k=5) == []


def test_dense_weight_zero_never_encodes_the_query(
    fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    retriever = Retriever(fake_encoder, passages, dense_weight=0.0).build()
    hits = retriever.search("library opens", top_k=5)
    assert fake_encoder.query_calls == 0
    assert hits and all(h.dense_rank is None for h in hits)


def test_sparse_weight_zero_is_pure_dense(
    fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    retriever = Retriever(fake_encoder, passages, sparse_weight=0.0, rrf_k=60).build()
    hits = retriever.search("图书馆几点开门 library opens", top_k=5)
    assert len(hits) == 5
    assert all(h.sparse_rank is None for h in hits)
    assert [h.dense_rank for h in hits] == [1, 2, 3, 4, 5]
    assert [h.score for h in hits] == pytest.approx([1 / (60 + r) for r in range(1, 6)])


def test_weights_cannot_both_be_zero(fake_encoder: FakeEncoder, passages: list[Passage]) -> None:
    with pytest.raises(ValueError, match="both 0"):
        Retriever(fake_encoder, passages, dense_weight=0.0, sparse_weight=0.0)


def test_hybrid_search_returns_hits_with_ranks(
    fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    retriever = Retriever(fake_encoder, passages).build()
    hits = retriever.search("When does the library open in the morning?", top_k=2)
    assert len(hits) == 2
    assert all(isinstance(h, Hit) for h in hits)
    assert hits[0].passage.doc_id == "handbook"
    assert hits[0].dense_rank is not None and hits[0].sparse_rank is not None


def test_top_k_beyond_candidates_still_returns_top_k(
    fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    retriever = Retriever(fake_encoder, passages, candidates=1, sparse_weight=0.0).build()
    assert len(retriever.search("员工", top_k=4)) == 4


def test_search_before_build_is_an_error(
    fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    with pytest.raises(RuntimeError, match="build"):
        Retriever(fake_encoder, passages).search("员工")


def test_empty_query_is_a_question_error(
    fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    retriever = Retriever(fake_encoder, passages).build()
    with pytest.raises(QuestionError):
        retriever.search("   ")


def test_empty_corpus_searches_to_nothing(fake_encoder: FakeEncoder) -> None:
    assert Retriever(fake_encoder, []).build().search("任何问题") == []


def test_duplicate_passage_ids_are_refused(
    fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Retriever(fake_encoder, [*passages, passages[0]])


def test_build_embeds_once(fake_encoder: FakeEncoder, passages: list[Passage]) -> None:
    retriever = Retriever(fake_encoder, passages)
    retriever.build()
    retriever.build()
    assert fake_encoder.passage_calls == 1
