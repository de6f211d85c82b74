"""Incremental index updates, document records, removals, and rebuilds of bad indexes."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import FakeEncoder

from qa.corpus import Corpus, read_corpus
from qa.errors import IndexCorruptError, LudaoError
from qa.index import (
    list_documents,
    load_retriever,
    remove_document,
    restore_document,
    update_index,
)
from qa.index.store import DENSE, MANIFEST, VECTORS
from qa.retrieval import Retriever

MAX_CHARS, MIN_CHARS = 60, 10
QUERIES = ["年休假几天", "研发投入强度", "差旅费用报销", "图书馆开放时间", "会议纪要"]


class CountingEncoder(FakeEncoder):
    """The hashing fake, remembering every passage text it was asked to embed."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.texts: list[str] = []

    def encode_passages(self, texts: list[str], *, show_progress: bool | None = None) -> np.ndarray:
        self.texts.extend(texts)
        return super().encode_passages(texts, show_progress=show_progress)


DOCUMENTS = {
    "leave.txt": [
        "年休假制度",
        "员工每年享有带薪年休假。工作满一年不满十年的员工，年休假五天。",
        "工作满十年的员工可以休假十天，满二十年的员工休假十五天。",
        "年休假应当提前两周向部门负责人申请，由人力资源部备案。",
        "当年未休完的假期可以顺延至次年三月底，逾期作废。",
    ],
    "travel.txt": [
        "差旅制度",
        "报销差旅费用应在出差结束后十日内提交单据，由财务部门审核。",
        "乘坐高铁二等座和经济舱机票可以全额报销，其他舱位需要事先批准。",
        "住宿标准按城市分为三档，一线城市每晚不超过六百元。",
        "出差补助每天一百元，包含餐费和市内交通费。",
    ],
    "meeting.txt": [
        "会议制度",
        "部门例会每周一上午召开，会议纪要由办公室在两日内印发。",
        "重大事项须经党委会集体研究决定，不得个人临时决断。",
        "视频会议使用公司统一平台，外部人员参会须提前登记。",
    ],
}


def write_documents(tmp_path: Path) -> Path:
    """The small corpus of these tests, one file per document, in ``tmp_path/corpus``."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, paras in DOCUMENTS.items():
        (corpus / name).write_text("\n\n".join(paras), encoding="utf-8")
    return corpus


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_documents(tmp_path)


def read(folder: Path) -> Corpus:
    return read_corpus([folder], max_chars=MAX_CHARS, min_chars=MIN_CHARS)


def manifest(index_dir: Path) -> dict:
    return json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))


def top_ids(retriever: Retriever) -> list[list[str]]:
    return [[h.passage.id for h in retriever.search(q, top_k=3)] for q in QUERIES]


def test_first_run_embeds_everything_and_records_each_document(
    folder: Path, tmp_path: Path
) -> None:
    encoder = CountingEncoder()
    corpus = read(folder)
    update = update_index(corpus, encoder, tmp_path / "index")
    assert update.mode == "built" and update.reason == "no saved index"
    assert (update.reused, update.embedded, update.removed) == (0, len(corpus.passages), 0)
    assert sorted(encoder.texts) == sorted(p.text for p in corpus.passages)

    saved = manifest(tmp_path / "index")
    records = {r["id"]: r for r in saved["documents"]}
    assert set(records) == {"leave", "travel", "meeting"}
    leave = records["leave"]
    data = (folder / "leave.txt").read_bytes()
    assert leave["sha256"] == hashlib.sha256(data).hexdigest()
    assert leave["size"] == len(data)
    assert leave["source"] == str((folder / "leave.txt").resolve())
    assert leave["passages"] == sum(p.doc_id == "leave" for p in corpus.passages) >= 2
    assert leave["pages"] is None and leave["mtime"] and leave["indexed"]
    assert sum(r["passages"] for r in records.values()) == saved["passage_count"]
    assert saved["excluded"] == []


def test_unchanged_corpus_embeds_nothing(folder: Path, tmp_path: Path) -> None:
    update_index(read(folder), CountingEncoder(), tmp_path / "index")
    encoder = CountingEncoder()
    update = update_index(read(folder), encoder, tmp_path / "index")
    assert update.mode == "unchanged" and encoder.texts == []
    assert update.counts() == {"reused": len(update.retriever), "embedded": 0, "removed": 0}


def test_change_one_add_one_delete_one_embeds_only_what_changed(
    folder: Path, tmp_path: Path
) -> None:
    index_dir = tmp_path / "index"
    before = read(folder)
    update_index(before, CountingEncoder(), index_dir)
    first_indexed = {r["id"]: r["indexed"] for r in manifest(index_dir)["documents"]}

    travel = folder / "travel.txt"
    travel.write_text(
        travel.read_text(encoding="utf-8").replace("每晚不超过六百元", "每晚不超过八百元"),
        encoding="utf-8",
    )
    (folder / "library.txt").write_text(
        "图书馆\n\n图书馆每天早上九点开放，晚上六点关闭，节假日另行通知。", encoding="utf-8"
    )
    (folder / "meeting.txt").unlink()
    after = read(folder)

    old_texts = {p.text for p in before.passages}
    new_texts = {p.text for p in after.passages}
    assert 0 < len(new_texts - old_texts) < len(new_texts)  # the test really changes something

    encoder = CountingEncoder()
    update = update_index(after, encoder, index_dir)
    assert update.mode == "updated"
    assert sorted(encoder.texts) == sorted(new_texts - old_texts)
    assert update.embedded == len(new_texts - old_texts)
    assert update.reused == len(after.passages) - update.embedded
    assert update.removed == len(old_texts - new_texts) > 0
    assert {p.doc_id for p in update.retriever.passages} == {"leave", "travel", "library"}

    scratch = Retriever(FakeEncoder(), after.passages).build()
    assert top_ids(update.retriever) == top_ids(scratch)
    np.testing.assert_allclose(update.retriever.vectors, scratch.vectors, rtol=0, atol=1e-6)
    loaded = load_retriever(index_dir, FakeEncoder())
    assert top_ids(loaded) == top_ids(scratch)

    records = {r["id"]: r for r in manifest(index_dir)["documents"]}
    assert set(records) == {"leave", "travel", "library"}
    assert records["leave"]["indexed"] == first_indexed["leave"]  # same bytes, same date
    assert records["travel"]["sha256"] == hashlib.sha256(travel.read_bytes()).hexdigest()


def test_touched_file_refreshes_its_record_without_embedding(folder: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    update_index(read(folder), CountingEncoder(), index_dir)
    os.utime(folder / "leave.txt", (1_000_000_000, 1_000_000_000))
    encoder = CountingEncoder()
    assert update_index(read(folder), encoder, index_dir).mode == "unchanged"
    assert encoder.texts == []
    leave = next(r for r in manifest(index_dir)["documents"] if r["id"] == "leave")
    assert leave["mtime"].startswith("2001-09-09")


def test_open_index_returns_the_retriever(folder: Path, tmp_path: Path) -> None:
    retriever = update_index(
        read(folder), FakeEncoder(), tmp_path / "index", sparse_weight=0.0
    ).retriever
    assert isinstance(retriever, Retriever) and retriever.sparse_weight == 0.0


def test_rebuild_embeds_everything_again(folder: Path, tmp_path: Path) -> None:
    update_index(read(folder), FakeEncoder(), tmp_path / "index")
    encoder = CountingEncoder()
    update = update_index(read(folder), encoder, tmp_path / "index", rebuild=True)
    assert update.mode == "built" and len(encoder.texts) == len(update.retriever)


# -- bad saved indexes: rebuilt in full, never answered from ----------------------------------


def built_then_changed(folder: Path, index_dir: Path) -> Corpus:
    """Index the folder, then edit one file, so the next update wants to reuse vectors."""
    update_index(read(folder), FakeEncoder(), index_dir)
    leave = folder / "leave.txt"
    leave.write_text(
        leave.read_text(encoding="utf-8") + "\n\n病假需要提供二级以上医院的诊断证明。",
        encoding="utf-8",
    )
    return read(folder)


def assert_full_rebuild(corpus: Corpus, index_dir: Path, match: str, caplog) -> None:
    encoder = CountingEncoder()
    with caplog.at_level(logging.INFO, logger="qa.index"):
        update = update_index(corpus, encoder, index_dir)
    assert update.mode == "built" and match in (update.reason or "")
    assert sorted(encoder.texts) == sorted(p.text for p in corpus.passages)
    assert "rebuilding" in caplog.text and match in caplog.text
    scratch = Retriever(FakeEncoder(), corpus.passages).build()
    assert top_ids(load_retriever(index_dir, FakeEncoder())) == top_ids(scratch)


@pytest.mark.parametrize("changed", [False, True])
def test_truncated_vectors_file_leads_to_a_full_rebuild(
    folder: Path, tmp_path: Path, caplog, changed: bool
) -> None:
    index_dir = tmp_path / "index"
    corpus = built_then_changed(folder, index_dir) if changed else read(folder)
    if not changed:
        update_index(corpus, FakeEncoder(), index_dir)
    data = (index_dir / VECTORS).read_bytes()
    (index_dir / VECTORS).write_bytes(data[: len(data) // 2])
    assert_full_rebuild(corpus, index_dir, "vectors.npy", caplog)


def test_vectors_file_of_another_shape(folder: Path, tmp_path: Path, caplog) -> None:
    index_dir = tmp_path / "index"
    corpus = built_then_changed(folder, index_dir)
    count = manifest(index_dir)["passage_count"]
    np.save(index_dir / VECTORS, np.zeros((count, 32), dtype=np.float32))
    with pytest.raises(IndexCorruptError, match=r"shape \(\d+, 32\)"):
        load_retriever(index_dir, FakeEncoder())
    assert_full_rebuild(corpus, index_dir, "shape", caplog)


def test_altered_vectors_are_not_reused(folder: Path, tmp_path: Path, caplog) -> None:
    index_dir = tmp_path / "index"
    corpus = built_then_changed(folder, index_dir)
    vectors = np.load(index_dir / VECTORS)
    np.save(index_dir / VECTORS, vectors[::-1].copy())  # same shape, rows swapped
    assert_full_rebuild(corpus, index_dir, "checksum", caplog)


def test_truncated_dense_file_leads_to_a_full_rebuild(folder: Path, tmp_path: Path, caplog) -> None:
    index_dir = tmp_path / "index"
    corpus = read(folder)
    update_index(corpus, FakeEncoder(), index_dir)
    data = (index_dir / DENSE).read_bytes()
    (index_dir / DENSE).write_bytes(data[:100])
    assert_full_rebuild(corpus, index_dir, "truncated", caplog)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ({"embedding_model": "another-model"}, "another-model"),
        ({"dimension": 384}, "384"),
        ({"format_version": 1}, "format version 1"),
    ],
)
def test_manifest_of_another_model_dimension_or_layout_is_rebuilt(
    folder: Path, tmp_path: Path, caplog, edit: dict, match: str
) -> None:
    index_dir = tmp_path / "index"
    corpus = built_then_changed(folder, index_dir)
    (index_dir / MANIFEST).write_text(json.dumps(manifest(index_dir) | edit))
    assert_full_rebuild(corpus, index_dir, match, caplog)


def test_index_of_another_dimension_is_rebuilt_for_the_new_model(
    folder: Path, tmp_path: Path
) -> None:
    index_dir = tmp_path / "index"
    update_index(read(folder), FakeEncoder(dimension=64), index_dir)
    encoder = CountingEncoder(dimension=32)
    update = update_index(read(folder), encoder, index_dir)
    assert update.mode == "built" and len(encoder.texts) == len(update.retriever)
    assert manifest(index_dir)["dimension"] == 32


def test_an_index_moved_aside_by_a_killed_save_is_put_back(folder: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    corpus = read(folder)
    update_index(corpus, FakeEncoder(), index_dir)
    aside = tmp_path / ".index.old-abc123"
    aside.mkdir()
    os.replace(index_dir, aside / "index")  # the moment between save's two renames
    (tmp_path / ".index.tmp-xyz789").mkdir()  # and a half-written new index
    (tmp_path / ".index.tmp-xyz789" / "passages.jsonl").write_text("{")
    encoder = CountingEncoder()
    update = update_index(corpus, encoder, index_dir)
    assert update.mode == "unchanged" and encoder.texts == []
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".index.")) == [
        ".index.lock"
    ]


# -- removing and restoring documents ---------------------------------------------------------


def test_remove_document_drops_its_passages_without_embedding(folder: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    update_index(read(folder), FakeEncoder(), index_dir)
    before = load_retriever(index_dir, FakeEncoder())
    encoder = CountingEncoder()
    removed = remove_document(index_dir, "meeting")
    assert removed.id == "meeting" and encoder.texts == []

    after = load_retriever(index_dir, encoder)
    assert encoder.texts == []
    kept = [p for p in before.passages if p.doc_id != "meeting"]
    assert list(after.passages) == kept
    assert all(h.passage.doc_id != "meeting" for h in after.search("会议纪要", top_k=5))
    scratch = Retriever(FakeEncoder(), kept).build()
    assert top_ids(after) == top_ids(scratch)

    listing = list_documents(index_dir)
    assert [d.id for d in listing.documents] == ["leave", "travel"]
    assert [e.id for e in listing.excluded] == ["meeting"]


def test_a_removed_document_stays_out_until_restored(folder: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    update_index(read(folder), FakeEncoder(), index_dir)
    remove_document(index_dir, str(folder / "meeting.txt"))  # by path this time

    encoder = CountingEncoder()
    update = update_index(read(folder), encoder, index_dir)
    assert update.mode == "unchanged" and update.excluded == ["meeting"]
    assert encoder.texts == []
    assert "meeting" not in {p.doc_id for p in update.retriever.passages}

    restore_document(index_dir, "meeting")
    update = update_index(read(folder), encoder, index_dir)
    assert update.mode == "updated" and update.excluded == []
    meeting = [p.text for p in update.retriever.passages if p.doc_id == "meeting"]
    assert meeting and sorted(encoder.texts) == sorted(meeting)


def test_unknown_or_already_removed_documents_are_clear_errors(
    folder: Path, tmp_path: Path
) -> None:
    index_dir = tmp_path / "index"
    update_index(read(folder), FakeEncoder(), index_dir)
    with pytest.raises(LudaoError, match=r"no document 'nope'.*ludao docs list"):
        remove_document(index_dir, "nope")
    remove_document(index_dir, "meeting")
    with pytest.raises(LudaoError, match="already removed"):
        remove_document(index_dir, "meeting")
    with pytest.raises(LudaoError, match="no removed document 'leave'"):
        restore_document(index_dir, "leave")
    with pytest.raises(LudaoError, match="no index"):
        list_documents(tmp_path / "missing")


def test_a_reused_index_without_usable_bm25_keeps_the_rebuilt_one(
    folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A folder from before saved BM25 is rebuilt once, then mapped on every later start."""
    import shutil

    from qa.sparse_index import SPARSE_DIR

    index_dir = tmp_path / "index"
    first = update_index(read(folder), CountingEncoder(), index_dir)
    expected = top_ids(first.retriever)
    shutil.rmtree(index_dir / SPARSE_DIR)  # as an index saved before BM25 was saved
    old = manifest(index_dir)
    old.pop("bm25")
    (index_dir / MANIFEST).write_text(json.dumps(old), encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="qa"):
        second = update_index(read(folder), CountingEncoder(), index_dir)
    assert second.mode == "unchanged" and "saved the rebuilt BM25" in caplog.text
    assert manifest(index_dir)["bm25"]["documents"] == len(second.retriever)
    assert manifest(index_dir)["documents"] == old["documents"]  # nothing else rewritten
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="qa"):
        third = update_index(read(folder), CountingEncoder(), index_dir)
    assert "no saved BM25" not in caplog.text and "saved the rebuilt" not in caplog.text
    assert not third.retriever.sparse_index_built_here
    assert top_ids(third.retriever) == top_ids(second.retriever) == expected
    assert not [p for p in index_dir.iterdir() if p.name.startswith(".bm25.")]


def test_a_read_only_index_folder_still_serves_with_a_rebuilt_bm25(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qa.index.update as update_module

    index_dir = tmp_path / "index"
    update_index(read(folder), CountingEncoder(), index_dir)
    old = manifest(index_dir)
    old.pop("bm25")
    (index_dir / MANIFEST).write_text(json.dumps(old), encoding="utf-8")

    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(update_module, "save_bm25", refuse)
    update = update_index(read(folder), CountingEncoder(), index_dir)
    assert update.mode == "unchanged" and update.retriever.sparse_index is not None
    assert "bm25" not in manifest(index_dir)
    assert not [p for p in index_dir.iterdir() if p.name.startswith(".bm25.")]
