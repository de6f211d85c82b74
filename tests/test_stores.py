"""One retrieval suite, run against every vector store (qa.stores): FAISS and Milvus Lite.

The Milvus cases use a Milvus Lite ``.db`` file in the test's temp dir; they are skipped, with
the reason, where ``pymilvus``/``milvus-lite`` (``pip install 'ludao[milvus]'``) is missing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from qa.corpus import Corpus
from qa.errors import LudaoError
from qa.retrieval import Retriever
from qa.stores import StoreUnavailableError, VectorStore
from qa.stores.base import group_filter, stored_groups
from tests.conftest import FakeEncoder
from tests.test_indexing import DOCUMENTS, QUERIES, CountingEncoder, read, write_documents

HAVE_MILVUS = all(importlib.util.find_spec(m) for m in ("pymilvus", "milvus_lite"))
STORES = [
    "faiss",
    pytest.param(
        "milvus",
        marks=pytest.mark.skipif(
            not HAVE_MILVUS,
            reason="pymilvus/milvus-lite not installed: pip install 'ludao[milvus]'",
        ),
    ),
]


def make_store(kind: str, where: Path) -> VectorStore:
    if kind == "faiss":
        from qa.stores.faiss_store import FaissStore

        return FaissStore(where / "index")
    from qa.stores.milvus_store import MilvusStore

    return MilvusStore(str(where / "store.db"), "test_passages")


def sync(store: VectorStore, corpus: Corpus, encoder: FakeEncoder, root: Path, **kw):
    options = {"roots": [root]} if store.name == "milvus" else {}
    return store.sync(corpus, encoder, **options, **kw)


@pytest.fixture(params=STORES)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_documents(tmp_path)


def ranked(searcher, queries=QUERIES, k: int = 3) -> list[list[str]]:
    return [[h.passage.id for h in searcher.search(q, top_k=k)] for q in queries]


def reference(corpus: Corpus) -> list[list[str]]:
    """What an in-memory Retriever over the same passages answers: the FAISS behaviour."""
    return ranked(Retriever(FakeEncoder(), corpus.passages).build())


def test_first_build_answers_like_the_in_memory_retriever(kind, folder, tmp_path) -> None:
    corpus = read(folder)
    update = sync(make_store(kind, tmp_path), corpus, CountingEncoder(), folder)
    assert update.mode == "built"
    assert update.passages == len(corpus.passages) and update.documents == len(DOCUMENTS)
    assert ranked(update.searcher) == reference(corpus)
    hit = update.searcher.search("年休假几天", top_k=1)[0]
    assert hit.passage in corpus.passages  # every citation field comes back as it went in


def test_unchanged_corpus_embeds_nothing(kind, folder, tmp_path) -> None:
    store = make_store(kind, tmp_path)
    sync(store, read(folder), FakeEncoder(), folder)
    encoder = CountingEncoder()
    update = sync(store, read(folder), encoder, folder)
    assert update.mode == "unchanged" and encoder.texts == []
    assert update.passages == len(read(folder).passages)


def test_changed_added_deleted_documents_update_incrementally(kind, folder, tmp_path) -> None:
    store = make_store(kind, tmp_path)
    sync(store, read(folder), FakeEncoder(), folder)
    (folder / "meeting.txt").unlink()
    travel = folder / "travel.txt"
    travel.write_text(travel.read_text(encoding="utf-8") + "\n\n出差期间的保险费用由公司统一购买。")
    (folder / "it.txt").write_text("数字化转型工作由信息中心负责推进，各部门按季度报送进展。")
    encoder = CountingEncoder()
    after = read(folder)
    update = sync(store, after, encoder, folder)
    assert update.mode == "updated"
    assert "数字化转型工作由信息中心负责推进，各部门按季度报送进展。" in encoder.texts
    assert not any("年休假" in t for t in encoder.texts)  # the unchanged document is reused
    assert update.passages == len(after.passages)
    assert ranked(update.searcher) == reference(after)  # BM25 statistics follow the change
    assert not any(
        h.passage.doc_id == "meeting" for h in update.searcher.search("会议纪要", top_k=10)
    )


def test_remove_and_restore_a_document(kind, folder, tmp_path) -> None:
    store = make_store(kind, tmp_path)
    sync(store, read(folder), FakeEncoder(), folder)
    ids = [d.id for d in store.list_documents().documents]
    assert sorted(ids) == sorted(Path(n).stem for n in DOCUMENTS)
    target = store.remove_document("travel")
    assert target.id == "travel"
    with pytest.raises(LudaoError):
        store.remove_document("no-such-document")
    listing = store.list_documents()
    assert [e.id for e in listing.excluded] == ["travel"]
    update = sync(store, read(folder), FakeEncoder(), folder)  # the file is still there
    assert update.excluded == ["travel"]
    without = Corpus(
        documents=[], passages=[p for p in read(folder).passages if p.doc_id != "travel"]
    )
    assert ranked(update.searcher) == reference(without)
    store.restore_document("travel")
    update = sync(store, read(folder), FakeEncoder(), folder)
    assert {h.passage.doc_id for h in update.searcher.search("差旅费用报销", top_k=3)} >= {"travel"}


def test_rebuild_embeds_everything(kind, folder, tmp_path) -> None:
    store = make_store(kind, tmp_path)
    sync(store, read(folder), FakeEncoder(), folder)
    encoder = CountingEncoder()
    update = sync(store, read(folder), encoder, folder, rebuild=True)
    assert update.mode == "built" and len(encoder.texts) == update.passages


# -- Milvus only: what the FAISS folder has no equivalent for ----------------------------------


def test_group_filters_are_whole_names() -> None:
    def like(name: str) -> str:
        return f'groups == "" or groups like "%,{name.encode().hex()},%"'

    assert stored_groups(["hr", "finance", ""]) == f",{b'finance'.hex()},{b'hr'.hex()},"
    assert stored_groups([]) == "" and stored_groups(["hr", "everyone"]) == ""
    assert group_filter(None) is None
    assert group_filter(["hr", "everyone"]) == like("hr")
    # "_" is a like wildcard and '"' would end the literal: neither reaches the expression.
    assert group_filter(["hr_a"]) == like("hr_a") and "_" not in like("hr_a")[20:]
    assert group_filter(['hr" or 1==1']).count('"') == 4


# -- access groups through the pipeline: the same cases for every store -------------------------

HR = "人事部规定：员工出差每天的餐费补贴标准是八十元，凭票据报销。"
FIN = "财务部规定：员工出差每天的餐费补贴标准是一百二十元，按月结算。"
PUBLIC = "图书馆每天早上九点开门，晚上六点关门，周末照常开放。"
ASK = "员工出差每天的餐费补贴标准是多少？"


@pytest.fixture
def departments(tmp_path: Path) -> Path:
    root = tmp_path / "handbooks"
    for sub, name, text in [("hr", "meals", HR), ("fin", "meals", FIN), ("pub", "library", PUBLIC)]:
        (root / sub).mkdir(parents=True)
        (root / sub / f"{name}.txt").write_text(text, encoding="utf-8")
    return root


def store_pipeline(kind: str, root: Path, tmp_path: Path, encoder, rules: tuple[str, ...]):
    """``Pipeline.from_settings`` as ``ludao serve`` builds it, over ``kind``, fake encoder."""
    from qa.config import Settings
    from qa.pipeline import Pipeline

    settings = Settings(
        corpus=(str(root),),
        reader="sentence",
        home=str(tmp_path / "home"),
        min_chars=10,
        access_rules=rules,
        vector_store=kind,
        milvus_uri=str(tmp_path / "shared.db"),
        answer_cache_size=16,
    )
    return Pipeline.from_settings(settings)


def docs_of(response) -> set[str]:
    return {h.passage.doc_id for h in response.hits} | {a.passage.doc_id for a in response.answers}


def test_access_groups_filter_every_store_alike(kind, departments, tmp_path, monkeypatch) -> None:
    encoder = CountingEncoder()
    monkeypatch.setattr("qa.index.location.encoder_from_settings", lambda settings: encoder)
    rules = ("hr/*=hr", "fin/*=finance")
    pipeline = store_pipeline(kind, departments, tmp_path, encoder, rules)
    by_doc = {p.text: p.doc_id for p in read(departments).passages}
    hr_doc, fin_doc, pub_doc = by_doc[HR], by_doc[FIN], by_doc[PUBLIC]

    hr = pipeline.ask(ASK, groups=frozenset({"hr", "everyone"}))
    fin = pipeline.ask(ASK, groups=frozenset({"finance", "everyone"}))
    anonymous = pipeline.ask(ASK, groups=frozenset({"everyone"}))
    assert "八十元" in hr.answers[0].text and docs_of(hr) <= {hr_doc, pub_doc}
    assert "一百二十元" in fin.answers[0].text and docs_of(fin) <= {fin_doc, pub_doc}
    assert docs_of(anonymous) <= {pub_doc}  # cached answers are not shared across groups
    assert docs_of(pipeline.ask(ASK, groups=None)) >= {hr_doc, fin_doc}  # the operator's CLI
    assert pipeline.visible_counts(frozenset({"everyone"})) == {"documents": 1, "passages": 1}
    assert pipeline.visible_counts(frozenset({"hr", "everyone"}))["documents"] == 2
    assert pipeline.visible_counts(None) == {"documents": 3, "passages": 3}

    # Opening the HR handbook to everyone re-labels it without embedding anything again.
    encoder.texts.clear()
    reopened = store_pipeline(kind, departments, tmp_path, encoder, ("fin/*=finance",))
    assert encoder.texts == []
    assert docs_of(reopened.ask(ASK, groups=frozenset({"everyone"}))) >= {hr_doc}
    assert fin_doc not in docs_of(reopened.ask(ASK, groups=frozenset({"everyone"})))
    assert reopened.visible_counts(frozenset({"everyone"}))["documents"] == 2


@pytest.mark.skipif(not HAVE_MILVUS, reason="pymilvus/milvus-lite not installed")
def test_unreachable_milvus_is_a_clear_error(tmp_path) -> None:
    from qa.stores.milvus_store import MilvusStore

    with pytest.raises(StoreUnavailableError, match="unavailable"):
        MilvusStore("http://127.0.0.1:9", "nothing_here").list_documents()


def bm25s_scores(texts: list[str], query: str) -> list[float]:
    """The FAISS store's BM25 (``bm25s`` over ``qa.search_terms``), as plain scores."""
    import bm25s

    from qa.search_terms import tokenize_for_search

    bm25 = bm25s.BM25()
    bm25.index([tokenize_for_search(t) for t in texts], show_progress=False)
    ids = list(dict.fromkeys(bm25.get_tokens_ids(tokenize_for_search(query))))
    return [float(s) for s in bm25.get_scores_from_ids(ids)] if ids else [0.0] * len(texts)


def test_sparse_weights_reproduce_bm25s_scores(folder) -> None:
    from qa.stores.bm25_weights import PassageTerms, TermStats, query_vector

    texts = [p.text for p in read(folder).passages]
    terms = [PassageTerms.of(t) for t in texts]
    stats = TermStats()
    stats.add(terms)
    for query in [*QUERIES, "员工休假天数", "费用"]:
        vector = query_vector(query, stats.df, stats.passages)
        ours = [
            sum(w * vector.get(t, 0.0) for t, w in x.weights(stats.avglen).items()) for x in terms
        ]
        assert ours == pytest.approx(bm25s_scores(texts, query), rel=1e-4, abs=1e-6)


@pytest.mark.skipif(not HAVE_MILVUS, reason="pymilvus/milvus-lite not installed")
def test_milvus_bm25_stays_exact_as_documents_come_and_go(folder, tmp_path) -> None:
    """Sparse-only Milvus scores equal bm25s over the current corpus after each change.

    Within 2%: IDF is exact (computed per query), but stored weights keep the average passage
    length they were written with until it drifts past ``AVGLEN_TOLERANCE`` (1%).
    """
    store = make_store("milvus", tmp_path)
    sync(store, read(folder), FakeEncoder(), folder)
    (folder / "meeting.txt").unlink()
    (folder / "extra.txt").write_text("年休假申请表由人力资源部统一印发，费用由部门承担。")
    searcher = sync(store, read(folder), FakeEncoder(), folder, dense_weight=0.0).searcher
    store.remove_document("travel")
    searcher = sync(store, read(folder), FakeEncoder(), folder, dense_weight=0.0).searcher
    texts = [p.text for p in read(folder).passages if p.doc_id != "travel"]
    by_text = {p.text: p for p in read(folder).passages}
    for query in ["年休假几天", "费用", "员工休假天数"]:
        expected = dict(zip(texts, bm25s_scores(texts, query), strict=True))
        hits = searcher.search(query, top_k=20)
        assert hits and all(by_text[h.passage.text] == h.passage for h in hits)
        assert {h.passage.text: h.score for h in hits} == pytest.approx(
            {t: s for t, s in expected.items() if s > 0}, rel=0.02
        )
