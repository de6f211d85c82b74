"""BM25 built from token ids, in parallel, saved in the index folder and memory-mapped back."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import bm25s
import numpy as np
import pytest
from conftest import FakeEncoder, make_passage

from qa.index import load_retriever, save_retriever
from qa.index.store import MANIFEST
from qa.retrieval import Retriever
from qa.schema import Passage
from qa.search_terms import tokenize_for_search
from qa.sparse_index import SPARSE_DIR, build_bm25

WORDS = [
    "研发",
    "投入",
    "强度",
    "厦门",
    "企业",
    "科技",
    "创新",
    "人才",
    "政策",
    "资金",
    "2023",
    "2024",
    "3.46%",
    "园区",
    "港口",
    "航运",
]


def random_passages(n: int, seed: int = 0) -> list[Passage]:
    rng = random.Random(seed)
    texts = ["".join(rng.choices(WORDS, k=rng.randint(3, 12))) + "。" for _ in range(n)]
    return [make_passage(f"doc{i}", text) for i, text in enumerate(texts)]


def scores_of(bm25: bm25s.BM25, query: str) -> np.ndarray:
    ids = list(dict.fromkeys(bm25.get_tokens_ids(tokenize_for_search(query))))
    return np.asarray(bm25.get_scores_from_ids(ids))


QUERIES = ["厦门研发投入强度", "2024年科技创新政策", "港口航运资金", "3.46%"]


def test_ids_build_scores_like_bm25s_on_tokens() -> None:
    texts = [p.text for p in random_passages(200)]
    ours = build_bm25(texts, workers=1)
    reference = bm25s.BM25()
    reference.index([tokenize_for_search(t) for t in texts], show_progress=False)
    for query in QUERIES:
        np.testing.assert_allclose(scores_of(ours, query), scores_of(reference, query), rtol=1e-6)


def test_parallel_tokenising_builds_the_same_index() -> None:
    texts = [p.text for p in random_passages(300, seed=1)]
    serial, parallel = build_bm25(texts, workers=1), build_bm25(texts, workers=2)
    assert parallel.vocab_dict == serial.vocab_dict
    for query in QUERIES:
        np.testing.assert_array_equal(scores_of(parallel, query), scores_of(serial, query))


def test_no_token_anywhere_is_no_index() -> None:
    assert build_bm25(["。，！", "的了"], workers=1) is None


def saved(tmp_path: Path, passages: list[Passage]) -> tuple[Path, Retriever]:
    built = Retriever(FakeEncoder(), passages).build()
    directory = save_retriever(built, tmp_path / "index")
    return directory, built


def rankings(retriever: Retriever) -> list[list[int]]:
    return [retriever.sparse_ranking(q, k=10) for q in QUERIES]


def test_saved_bm25_is_memory_mapped_and_ranks_alike(tmp_path: Path) -> None:
    directory, built = saved(tmp_path, random_passages(120))
    manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["bm25"]["documents"] == 120
    assert (directory / SPARSE_DIR).is_dir()
    loaded = load_retriever(directory, FakeEncoder())
    assert isinstance(loaded.sparse_index.scores["data"], np.memmap)
    assert rankings(loaded) == rankings(built)
    assert any(rankings(loaded))


def edit_manifest(directory: Path, change) -> None:
    path = directory / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def damage_indices(directory: Path) -> None:
    """Point the first stored row at a passage far beyond the index, keeping the file valid."""
    path = directory / SPARSE_DIR / "indices.csc.index.npy"
    indices = np.load(path)
    indices[0] = 10**6
    np.save(path, indices)


def truncate_data(directory: Path) -> None:
    path = directory / SPARSE_DIR / "data.csc.index.npy"
    path.write_bytes(path.read_bytes()[:100])


@pytest.mark.parametrize(
    ("damage", "log"),
    [
        (lambda d: edit_manifest(d, lambda m: m.pop("bm25")), "no saved BM25"),
        (
            lambda d: edit_manifest(d, lambda m: m["bm25"].update(terms_version="rules-0")),
            "tokenised by rules-0",
        ),
        (lambda d: edit_manifest(d, lambda m: m["bm25"].update(documents=7)), "unusable"),
        (damage_indices, "points at passages"),
        (truncate_data, "unusable"),
    ],
    ids=["old-folder", "other-tokeniser", "other-count", "bad-rows", "truncated"],
)
def test_unusable_saved_bm25_is_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage, log: str
) -> None:
    directory, built = saved(tmp_path, random_passages(80, seed=2))
    damage(directory)
    with caplog.at_level(logging.INFO, logger="qa.sparse_index"):
        loaded = load_retriever(directory, FakeEncoder())
    assert log in caplog.text
    assert not isinstance(loaded.sparse_index.scores["data"], np.memmap)
    assert rankings(loaded) == rankings(built)


def test_a_retriever_refuses_bm25_of_another_corpus() -> None:
    other = build_bm25([p.text for p in random_passages(5)], workers=1)
    with pytest.raises(ValueError, match="covers 5 passages"):
        Retriever(FakeEncoder(), random_passages(6), sparse_index=other)
