"""FaissIndex, and saving / verifying a Retriever's index directory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FakeEncoder

from embeddings.index import FaissIndex
from qa.errors import IndexCorruptError, IndexMismatchError
from qa.retrieval import DENSE, MANIFEST, PASSAGES, VECTORS, Retriever, corpus_hash
from qa.schema import Passage


def unit_rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


# -- FaissIndex -------------------------------------------------------------------------------


def test_search_returns_nearest_rows_best_first() -> None:
    vectors = unit_rows(20, 16)
    index = FaissIndex(16)
    index.add(vectors)
    assert len(index) == 20 and index.dimension == 16 and index.kind == "flat"
    scores, ids = index.search(vectors[[3, 7]], k=4)
    assert scores.shape == ids.shape == (2, 4)
    assert ids[:, 0].tolist() == [3, 7]
    assert scores.dtype == np.float32 and ids.dtype == np.int64
    np.testing.assert_allclose(scores[:, 0], 1.0, rtol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_one_dimensional_query_and_k_beyond_size() -> None:
    index = FaissIndex(8)
    index.add(unit_rows(3, 8))
    _, ids = index.search(unit_rows(1, 8)[0], k=10)
    assert ids.shape == (1, 3)
    assert sorted(ids[0].tolist()) == [0, 1, 2]


def test_empty_index_searches_to_nothing() -> None:
    scores, ids = FaissIndex(8).search(unit_rows(2, 8), k=5)
    assert scores.shape == ids.shape == (2, 0)


def test_wrong_dimension_is_a_value_error() -> None:
    index = FaissIndex(8)
    with pytest.raises(ValueError, match=r"\(n, 8\)"):
        index.add(unit_rows(2, 9))


def test_save_load_round_trip(tmp_path: Path) -> None:
    vectors = unit_rows(10, 12)
    index = FaissIndex(12)
    index.add(vectors)
    path = index.save(tmp_path / "sub" / "dense.faiss")
    assert [p.name for p in path.parent.iterdir()] == ["dense.faiss"]  # no temp file left
    loaded = FaissIndex.load(path)
    assert len(loaded) == 10 and loaded.dimension == 12 and loaded.kind == "flat"
    for a, b in zip(index.search(vectors, 3), loaded.search(vectors, 3), strict=True):
        np.testing.assert_array_equal(a, b)


def test_save_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "dense.faiss"
    small = FaissIndex(4)
    small.add(unit_rows(1, 4))
    small.save(path)
    big = FaissIndex(4)
    big.add(unit_rows(5, 4))
    big.save(path)
    assert len(FaissIndex.load(path)) == 5


@pytest.mark.parametrize("keep", [0, 10, 0.5, -1])
def test_truncated_file_is_corrupt(tmp_path: Path, keep: float) -> None:
    index = FaissIndex(8)
    index.add(unit_rows(10, 8))
    path = index.save(tmp_path / "dense.faiss")
    data = path.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    path.write_bytes(data[:cut])
    with pytest.raises(IndexCorruptError, match="truncated or unreadable"):
        FaissIndex.load(path)


def test_missing_file_is_corrupt(tmp_path: Path) -> None:
    with pytest.raises(IndexCorruptError, match="missing"):
        FaissIndex.load(tmp_path / "nothing.faiss")


# -- Retriever directories --------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path: Path, fake_encoder: FakeEncoder, passages: list[Passage]) -> Path:
    return Retriever(fake_encoder, passages).build().save(tmp_path / "index")


def edit_manifest(directory: Path, **changes: object) -> None:
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest.update(changes)
    (directory / MANIFEST).write_text(json.dumps(manifest))


def test_directory_round_trip(
    saved: Path, fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    assert sorted(p.name for p in saved.iterdir()) == [DENSE, MANIFEST, PASSAGES, VECTORS]
    assert not [p for p in saved.parent.iterdir() if p.name.startswith(".")]
    manifest = json.loads((saved / MANIFEST).read_text())
    assert manifest["embedding_model"] == "fake-encoder"
    assert manifest["dimension"] == 64
    assert manifest["passage_count"] == len(passages)
    assert manifest["corpus_hash"] == corpus_hash(passages)
    assert "created" in manifest and "format_version" in manifest

    original = Retriever(fake_encoder, passages).build()
    loaded = Retriever.load(saved, fake_encoder, expected_corpus_hash=corpus_hash(passages))
    assert list(loaded.passages) == passages  # every field survives, Chinese included
    assert loaded.is_built
    for query in ["数字化转型", "营业收入", "When does the library open?"]:
        assert loaded.search(query, top_k=3) == original.search(query, top_k=3)


def test_load_passes_search_settings(saved: Path, fake_encoder: FakeEncoder) -> None:
    loaded = Retriever.load(saved, fake_encoder, sparse_weight=0.0, rrf_k=10)
    assert loaded.sparse_weight == 0.0 and loaded.rrf_k == 10


def test_save_over_an_existing_index_replaces_it(
    saved: Path, fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    Retriever(fake_encoder, passages[:2]).build().save(saved)
    assert len(Retriever.load(saved, fake_encoder)) == 2
    assert sorted(p.name for p in saved.parent.iterdir()) == ["index"]


def test_save_refuses_to_replace_a_directory_that_is_not_an_index(
    tmp_path: Path, fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    precious = tmp_path / "documents"
    precious.mkdir()
    (precious / "report.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        Retriever(fake_encoder, passages).build().save(precious)
    assert (precious / "report.txt").read_text() == "keep me"


def test_save_replaces_a_damaged_index_without_manifest(
    saved: Path, fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    (saved / MANIFEST).unlink()
    Retriever(fake_encoder, passages).build().save(saved)
    assert len(Retriever.load(saved, fake_encoder)) == len(passages)


def test_failed_save_leaves_the_old_index_untouched(
    saved: Path,
    fake_encoder: FakeEncoder,
    passages: list[Passage],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = (saved / MANIFEST).read_text()

    def boom(self: FaissIndex, path: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(FaissIndex, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        Retriever(fake_encoder, passages[:1]).build().save(saved)
    assert (saved / MANIFEST).read_text() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == ["index"]


def test_missing_directory_is_file_not_found(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    with pytest.raises(FileNotFoundError):
        Retriever.load(tmp_path / "nope", fake_encoder)


def test_unreadable_manifest_is_corrupt(saved: Path, fake_encoder: FakeEncoder) -> None:
    (saved / MANIFEST).write_text("{not json")
    with pytest.raises(IndexCorruptError, match="manifest"):
        Retriever.load(saved, fake_encoder)
    (saved / MANIFEST).unlink()
    with pytest.raises(IndexCorruptError, match="manifest"):
        Retriever.load(saved, fake_encoder)


def test_truncated_dense_file_is_corrupt(saved: Path, fake_encoder: FakeEncoder) -> None:
    data = (saved / DENSE).read_bytes()
    (saved / DENSE).write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorruptError):
        Retriever.load(saved, fake_encoder)


def test_other_model_is_a_mismatch(saved: Path) -> None:
    other = FakeEncoder(model_id="another-model")
    with pytest.raises(IndexMismatchError, match="another-model") as info:
        Retriever.load(saved, other)
    assert "fake-encoder" in str(info.value)
    assert "ludao index --rebuild" in str(info.value)


def test_other_dimension_is_a_mismatch(saved: Path) -> None:
    with pytest.raises(IndexMismatchError, match="64-dimensional") as info:
        Retriever.load(saved, FakeEncoder(dimension=32))
    assert "produces 32" in str(info.value)


def test_manifest_naming_another_model_is_a_mismatch(
    saved: Path, fake_encoder: FakeEncoder
) -> None:
    edit_manifest(saved, embedding_model="intfloat/multilingual-e5-small")
    with pytest.raises(IndexMismatchError, match="multilingual-e5-small"):
        Retriever.load(saved, fake_encoder)


def test_manifest_with_another_dimension_is_a_mismatch(
    saved: Path, fake_encoder: FakeEncoder
) -> None:
    edit_manifest(saved, dimension=384)
    with pytest.raises(IndexMismatchError, match="384"):
        Retriever.load(saved, fake_encoder)


def test_other_format_version_is_a_mismatch(saved: Path, fake_encoder: FakeEncoder) -> None:
    edit_manifest(saved, format_version=999)
    with pytest.raises(IndexMismatchError, match="format version"):
        Retriever.load(saved, fake_encoder)


def test_edited_passage_text_is_corrupt(saved: Path, fake_encoder: FakeEncoder) -> None:
    lines = (saved / PASSAGES).read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[0])
    record["text"] = record["text"].replace("448.53", "999.99")
    lines[0] = json.dumps(record, ensure_ascii=False)
    (saved / PASSAGES).write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="corpus hash"):
        Retriever.load(saved, fake_encoder)


def test_dropped_passage_line_is_corrupt(saved: Path, fake_encoder: FakeEncoder) -> None:
    lines = (saved / PASSAGES).read_text(encoding="utf-8").splitlines()
    (saved / PASSAGES).write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="passages"):
        Retriever.load(saved, fake_encoder)


def test_garbled_passage_line_is_corrupt(saved: Path, fake_encoder: FakeEncoder) -> None:
    with (saved / PASSAGES).open("a", encoding="utf-8") as fh:
        fh.write('{"id": "x"\n')
    with pytest.raises(IndexCorruptError, match="line 6"):
        Retriever.load(saved, fake_encoder)


def test_count_in_manifest_must_match_the_vectors(
    saved: Path, fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    small = FaissIndex(64)
    small.add(fake_encoder.encode_passages([p.text for p in passages[:2]]))
    small.save(saved / DENSE)
    with pytest.raises(IndexCorruptError, match="vectors"):
        Retriever.load(saved, fake_encoder)


def test_changed_documents_are_a_mismatch(
    saved: Path, fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    current = corpus_hash(passages[:-1])
    with pytest.raises(IndexMismatchError, match="other documents"):
        Retriever.load(saved, fake_encoder, expected_corpus_hash=current)


def test_corpus_hash_depends_on_ids_texts_and_order(passages: list[Passage]) -> None:
    assert corpus_hash(passages) == corpus_hash(list(passages))
    assert corpus_hash(passages) != corpus_hash(passages[::-1])
    assert corpus_hash(passages) != corpus_hash(passages[:-1])
    assert len(corpus_hash([])) == 64
