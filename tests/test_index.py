"""FaissIndex, and saving / verifying a Retriever's index directory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FakeEncoder

import embeddings.index as index_module
from embeddings.index import FaissIndex, IndexFileError, IndexParams
from qa.errors import IndexCorruptError, IndexMismatchError
from qa.index import load_retriever, save_retriever
from qa.index.store import DENSE, MANIFEST, PASSAGES, VECTORS, corpus_hash
from qa.retrieval import Retriever
from qa.schema import Passage
from qa.sparse_index import SPARSE_DIR


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
    with pytest.raises(IndexFileError, match="truncated or unreadable"):
        FaissIndex.load(path)


def test_missing_file_is_corrupt(tmp_path: Path) -> None:
    with pytest.raises(IndexFileError, match="missing"):
        FaissIndex.load(tmp_path / "nothing.faiss")


# -- kinds: flat, hnsw, ivf ---------------------------------------------------------------------

SMALL_IVF = IndexParams(nlist=16, nprobe=16, train_per_cell=40)


def clustered_rows(n: int, dim: int = 32, clusters: int = 20, seed: int = 1) -> np.ndarray:
    """Unit vectors around ``clusters`` centres: the shape approximate indexes are built for."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    rows = centres[rng.integers(0, clusters, n)] + 0.3 * rng.standard_normal((n, dim))
    rows = rows.astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def build(kind: str, vectors: np.ndarray) -> FaissIndex:
    return FaissIndex.from_vectors(vectors, kind=kind, params=SMALL_IVF)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_each_kind_finds_the_right_neighbour_on_clustered_data(kind: str) -> None:
    vectors = clustered_rows(2000)
    index = build(kind, vectors)
    assert index.kind == kind and len(index) == 2000 and index.dimension == 32
    rng = np.random.default_rng(7)
    targets = rng.choice(2000, 50, replace=False)
    noisy = vectors[targets] + 0.02 * rng.standard_normal((50, 32)).astype(np.float32)
    scores, ids = index.search(noisy / np.linalg.norm(noisy, axis=1, keepdims=True), k=5)
    assert ids.shape == (50, 5)
    assert np.mean(ids[:, 0] == targets) >= 0.95
    assert np.all(np.diff(scores, axis=1) <= 1e-5)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_each_kind_round_trips_with_its_search_settings(kind: str, tmp_path: Path) -> None:
    vectors = clustered_rows(1500)
    index = build(kind, vectors)
    if kind == "hnsw":
        index.set_search_params(ef_search=23)
    elif kind == "ivf":
        index.set_search_params(nprobe=3)
    loaded = FaissIndex.load(index.save(tmp_path / f"{kind}.faiss"))
    assert loaded.kind == kind and len(loaded) == 1500 and loaded.dimension == 32
    assert loaded.search_params == index.search_params
    assert (
        loaded.search_params == {"flat": {}, "hnsw": {"ef_search": 23}, "ivf": {"nprobe": 3}}[kind]
    )
    for a, b in zip(index.search(vectors[:40], 5), loaded.search(vectors[:40], 5), strict=True):
        np.testing.assert_array_equal(a, b)
    loaded.add(clustered_rows(10, seed=5))  # a loaded index keeps growing, ids continue
    assert len(loaded) == 1510
    assert loaded.search(clustered_rows(10, seed=5)[3], k=1)[1][0, 0] == 1503


def test_hnsw_can_be_built_empty_and_grown() -> None:
    index = FaissIndex(32, kind="hnsw", params=IndexParams(hnsw_m=8, ef_search=40))
    assert len(index) == 0 and index.search_params == {"ef_search": 40}
    vectors = clustered_rows(300)
    index.add(vectors)
    assert index.search(vectors[42], k=1)[1][0, 0] == 42


def test_auto_picks_exact_below_the_limit_and_approximate_from_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(index_module, "EXACT_LIMIT", 800)
    monkeypatch.setattr(index_module, "IVF_LIMIT", 1200)
    vectors = clustered_rows(1200)
    assert FaissIndex.from_vectors(vectors[:799]).kind == "flat"
    for count, kind in [(800, "hnsw"), (1199, "hnsw"), (1200, "ivf")]:
        index = FaissIndex.from_vectors(vectors[:count], params=SMALL_IVF)
        assert (index.kind, len(index)) == (kind, count)
        assert index.search(vectors[count - 1], k=1)[1][0, 0] == count - 1


def test_default_nlist_grows_with_the_corpus_and_stays_bounded() -> None:
    assert index_module.default_nlist(1) == 1
    assert index_module.default_nlist(10_000) == 256
    assert index_module.default_nlist(1_000_000) == 2048
    assert index_module.default_nlist(10**9) == 4096


def test_ivf_with_fewer_vectors_than_cells_still_works() -> None:
    vectors = clustered_rows(10)
    index = FaissIndex.from_vectors(vectors, kind="ivf", params=IndexParams(nlist=64, nprobe=64))
    assert index.search(vectors[4], k=1)[1][0, 0] == 4


def test_missing_neighbours_are_minus_one_with_minus_infinity() -> None:
    index = FaissIndex.from_vectors(
        clustered_rows(600), kind="ivf", params=IndexParams(nlist=32, nprobe=1)
    )
    scores, ids = index.search(clustered_rows(3, seed=9), k=600)  # one cell cannot hold 600
    assert ids.shape == (3, 600) and np.any(ids < 0)
    assert np.all(np.isneginf(scores[ids < 0])) and np.all(np.isfinite(scores[ids >= 0]))


@pytest.mark.parametrize("kind", ["bogus", "IVF", ""])
def test_unknown_kind_is_a_value_error(kind: str) -> None:
    with pytest.raises(ValueError, match="unknown index kind"):
        FaissIndex(8, kind=kind)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown index kind"):
        FaissIndex.from_vectors(unit_rows(5, 8), kind=kind)


def test_bad_settings_are_value_errors() -> None:
    with pytest.raises(ValueError, match="from_vectors"):
        FaissIndex(8, kind="ivf")
    with pytest.raises(ValueError, match="nprobe"):
        IndexParams(nprobe=0)
    with pytest.raises(ValueError, match="encoding"):
        IndexParams(ivf_encoding="pq4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="divide"):
        FaissIndex.from_vectors(
            unit_rows(300, 30), kind="ivf", params=IndexParams(ivf_encoding="pq", pq_m=8)
        )
    with pytest.raises(ValueError, match="zero vectors"):
        FaissIndex.from_vectors(np.zeros((0, 8), np.float32), kind="ivf")
    flat = FaissIndex(8)
    with pytest.raises(ValueError, match="'hnsw'"):
        flat.set_search_params(ef_search=10)
    with pytest.raises(ValueError, match="positive"):
        build("hnsw", clustered_rows(50)).set_search_params(ef_search=0)
    with pytest.raises(ValueError, match="'ivf'"):
        build("hnsw", clustered_rows(50)).set_search_params(nprobe=4)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
@pytest.mark.parametrize(
    "damage", ["cut-early", "cut-half", "cut-last-byte", "garbled-header", "wrong-count"]
)
def test_damaged_file_of_each_kind_is_corrupt(kind: str, damage: str, tmp_path: Path) -> None:
    path = build(kind, clustered_rows(700)).save(tmp_path / "dense.faiss")
    data = bytearray(path.read_bytes())
    if damage == "garbled-header":
        data[:4] = b"XXXX"  # FAISS files open with a four-letter structure code
    elif damage == "wrong-count":  # then the dimension (int32) and the vector count (int64)
        count = int.from_bytes(data[8:16], "little")
        assert count == 700
        data[8:16] = (count + 1).to_bytes(8, "little")
    else:
        data = data[: {"cut-early": 9, "cut-half": len(data) // 2, "cut-last-byte": -1}[damage]]
    path.write_bytes(bytes(data))
    with pytest.raises(IndexFileError, match=r"truncated or unreadable|not match"):
        FaissIndex.load(path)


def test_not_inner_product_or_unsupported_structure_is_corrupt(tmp_path: Path) -> None:
    import faiss

    faiss.write_index(faiss.IndexFlatL2(8), str(tmp_path / "l2.faiss"))
    with pytest.raises(IndexFileError, match="not an inner-product"):
        FaissIndex.load(tmp_path / "l2.faiss")
    lsh = faiss.IndexLSH(8, 16)
    lsh.metric_type = faiss.METRIC_INNER_PRODUCT
    faiss.write_index(lsh, str(tmp_path / "lsh.faiss"))
    with pytest.raises(IndexFileError, match="unsupported"):
        FaissIndex.load(tmp_path / "lsh.faiss")


# -- Retriever directories --------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path: Path, fake_encoder: FakeEncoder, passages: list[Passage]) -> Path:
    return save_retriever(Retriever(fake_encoder, passages).build(), tmp_path / "index")


def edit_manifest(directory: Path, **changes: object) -> None:
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest.update(changes)
    (directory / MANIFEST).write_text(json.dumps(manifest))


def test_directory_round_trip(
    saved: Path, fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    assert sorted(p.name for p in saved.iterdir()) == [
        SPARSE_DIR,
        DENSE,
        MANIFEST,
        PASSAGES,
        VECTORS,
    ]
    assert not [p for p in saved.parent.iterdir() if p.name.startswith(".")]
    manifest = json.loads((saved / MANIFEST).read_text())
    assert manifest["embedding_model"] == "fake-encoder"
    assert manifest["dimension"] == 64
    assert manifest["passage_count"] == len(passages)
    assert manifest["corpus_hash"] == corpus_hash(passages)
    assert "created" in manifest and "format_version" in manifest

    original = Retriever(fake_encoder, passages).build()
    loaded = load_retriever(saved, fake_encoder, expected_corpus_hash=corpus_hash(passages))
    assert list(loaded.passages) == passages  # every field survives, Chinese included
    assert loaded.is_built
    for query in ["数字化转型", "营业收入", "When does the library open?"]:
        assert loaded.search(query, top_k=3) == original.search(query, top_k=3)


def test_load_passes_search_settings(saved: Path, fake_encoder: FakeEncoder) -> None:
    loaded = load_retriever(saved, fake_encoder, sparse_weight=0.0, rrf_k=10)
    assert loaded.sparse_weight == 0.0 and loaded.rrf_k == 10


def test_save_over_an_existing_index_replaces_it(
    saved: Path, fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    save_retriever(Retriever(fake_encoder, passages[:2]).build(), saved)
    assert len(load_retriever(saved, fake_encoder)) == 2
    assert sorted(p.name for p in saved.parent.iterdir()) == ["index"]


def test_save_refuses_to_replace_a_directory_that_is_not_an_index(
    tmp_path: Path, fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    precious = tmp_path / "documents"
    precious.mkdir()
    (precious / "report.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        save_retriever(Retriever(fake_encoder, passages).build(), precious)
    assert (precious / "report.txt").read_text() == "keep me"


def test_save_replaces_a_damaged_index_without_manifest(
    saved: Path, fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    (saved / MANIFEST).unlink()
    save_retriever(Retriever(fake_encoder, passages).build(), saved)
    assert len(load_retriever(saved, fake_encoder)) == len(passages)


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
        save_retriever(Retriever(fake_encoder, passages[:1]).build(), saved)
    assert (saved / MANIFEST).read_text() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == ["index"]


def test_missing_directory_is_file_not_found(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    with pytest.raises(FileNotFoundError):
        load_retriever(tmp_path / "nope", fake_encoder)


def test_unreadable_manifest_is_corrupt(saved: Path, fake_encoder: FakeEncoder) -> None:
    (saved / MANIFEST).write_text("{not json")
    with pytest.raises(IndexCorruptError, match="manifest"):
        load_retriever(saved, fake_encoder)
    (saved / MANIFEST).unlink()
    with pytest.raises(IndexCorruptError, match="manifest"):
        load_retriever(saved, fake_encoder)


def test_truncated_dense_file_is_corrupt(saved: Path, fake_encoder: FakeEncoder) -> None:
    data = (saved / DENSE).read_bytes()
    (saved / DENSE).write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorruptError):
        load_retriever(saved, fake_encoder)


def test_other_model_is_a_mismatch(saved: Path) -> None:
    other = FakeEncoder(model_id="another-model")
    with pytest.raises(IndexMismatchError, match="another-model") as info:
        load_retriever(saved, other)
    assert "fake-encoder" in str(info.value)
    assert "ludao index --rebuild" in str(info.value)


def test_other_dimension_is_a_mismatch(saved: Path) -> None:
    with pytest.raises(IndexMismatchError, match="64-dimensional") as info:
        load_retriever(saved, FakeEncoder(dimension=32))
    assert "produces 32" in str(info.value)


def test_manifest_naming_another_model_is_a_mismatch(
    saved: Path, fake_encoder: FakeEncoder
) -> None:
    edit_manifest(saved, embedding_model="intfloat/multilingual-e5-small")
    with pytest.raises(IndexMismatchError, match="multilingual-e5-small"):
        load_retriever(saved, fake_encoder)


def test_manifest_with_another_dimension_is_a_mismatch(
    saved: Path, fake_encoder: FakeEncoder
) -> None:
    edit_manifest(saved, dimension=384)
    with pytest.raises(IndexMismatchError, match="384"):
        load_retriever(saved, fake_encoder)


def test_other_format_version_is_a_mismatch(saved: Path, fake_encoder: FakeEncoder) -> None:
    edit_manifest(saved, format_version=999)
    with pytest.raises(IndexMismatchError, match="format version"):
        load_retriever(saved, fake_encoder)


def test_edited_passage_text_is_corrupt(saved: Path, fake_encoder: FakeEncoder) -> None:
    lines = (saved / PASSAGES).read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[0])
    record["text"] = record["text"].replace("448.53", "999.99")
    lines[0] = json.dumps(record, ensure_ascii=False)
    (saved / PASSAGES).write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="corpus hash"):
        load_retriever(saved, fake_encoder)


def test_dropped_passage_line_is_corrupt(saved: Path, fake_encoder: FakeEncoder) -> None:
    lines = (saved / PASSAGES).read_text(encoding="utf-8").splitlines()
    (saved / PASSAGES).write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="passages"):
        load_retriever(saved, fake_encoder)


def test_garbled_passage_line_is_corrupt(saved: Path, fake_encoder: FakeEncoder) -> None:
    with (saved / PASSAGES).open("a", encoding="utf-8") as fh:
        fh.write('{"id": "x"\n')
    with pytest.raises(IndexCorruptError, match="line 6"):
        load_retriever(saved, fake_encoder)


def test_count_in_manifest_must_match_the_vectors(
    saved: Path, fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    small = FaissIndex(64)
    small.add(fake_encoder.encode_passages([p.text for p in passages[:2]]))
    small.save(saved / DENSE)
    with pytest.raises(IndexCorruptError, match="vectors"):
        load_retriever(saved, fake_encoder)


def test_changed_documents_are_a_mismatch(
    saved: Path, fake_encoder: FakeEncoder, passages: list[Passage]
) -> None:
    current = corpus_hash(passages[:-1])
    with pytest.raises(IndexMismatchError, match="other documents"):
        load_retriever(saved, fake_encoder, expected_corpus_hash=current)


def test_corpus_hash_depends_on_ids_texts_and_order(passages: list[Passage]) -> None:
    assert corpus_hash(passages) == corpus_hash(list(passages))
    assert corpus_hash(passages) != corpus_hash(passages[::-1])
    assert corpus_hash(passages) != corpus_hash(passages[:-1])
    assert len(corpus_hash([])) == 64


def test_scale_benchmark_runs_end_to_end_on_a_tiny_corpus(tmp_path: Path) -> None:
    from benchmarks.index_scale import main, synthetic_vectors

    base, queries = synthetic_vectors(500, 20, dimension=48, seed=3)
    assert base.shape == (500, 48) and queries.shape == (20, 48)
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, rtol=1e-5)
    out = tmp_path / "scale.json"
    args = ["--sizes", "1000", "--queries", "10", "--configs", "flat", "hnsw", "--out", str(out)]
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert [r["config"] for r in report["results"]] == ["flat", "hnsw"]
    assert report["results"][0]["search"][0]["recall_at_10"] == 1.0  # flat is the truth
    assert all(0 <= row["recall_at_10"] <= 1 for row in report["results"][1]["search"])
    assert "| 1,000 | hnsw |" in out.with_suffix(".md").read_text()
