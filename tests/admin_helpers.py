"""A small real index with two restricted departments, for the admin page and its browser tests.

Two folders, ``hr/`` (group ``hr``) and ``fin/`` (group ``finance``), each saying something
different about the same subject, plus an upload folder; indexed with ``FakeEncoder`` into a
real saved index (manifest, document records, groups), served by a ``ReloadablePipeline`` whose
reload re-runs the index update as ``ludao serve`` does.
"""

from __future__ import annotations

from pathlib import Path

from conftest import FakeEncoder

HR = "人事部规定：员工出差每天的餐费补贴标准是八十元。出差需提前三天在系统中申请。"
FIN = "财务部规定：员工出差每天的餐费补贴标准是一百二十元。报销须在返回后十日内提交。"
QUESTION = "员工出差每天的餐费补贴标准是多少？"
USERS = """
[users.li]
password = "li-pass"
groups = ["hr"]

[users.zhao]
password = "zhao-pass"
groups = ["finance"]

[users.boss]
password = "boss-pass"
groups = ["admin"]
"""


def department_corpus(tmp: Path) -> tuple[Path, Path]:
    """``(corpus folder, upload folder)`` with the two departments' rules."""
    corpus = tmp / "corpus"
    for folder, name, text in (("hr", "hr-rules.txt", HR), ("fin", "fin-rules.txt", FIN)):
        (corpus / folder).mkdir(parents=True, exist_ok=True)
        (corpus / folder / name).write_text(text, encoding="utf-8")
    uploads = tmp / "uploads"  # joins the corpus, as ``ludao serve --upload-dir`` does
    uploads.mkdir(exist_ok=True)
    return corpus, uploads


def department_pipeline(tmp: Path):
    """A reloadable pipeline over :func:`department_corpus`; returns ``(pipeline, uploads)``."""
    from qa.config import Settings
    from qa.corpus import corpus_from_settings
    from qa.index import update_index
    from qa.index.labels import document_access
    from qa.pipeline import Pipeline
    from qa.readers import SentenceReader
    from qa.reloading import ReloadablePipeline

    corpus, uploads = department_corpus(tmp)
    folders = (str(corpus), str(uploads))
    settings = Settings(corpus=folders, access_rules=("hr/*=hr", "fin/*=finance"))
    index_dir = tmp / "index"
    encoder = FakeEncoder()

    def build() -> Pipeline:
        retriever = update_index(corpus_from_settings(settings), encoder, index_dir).retriever
        passages = retriever.passages
        return Pipeline(
            retriever=retriever,
            reader=SentenceReader(),
            access=document_access(settings, index_dir, passages),
            description={
                "corpus": list(folders),
                "documents": len({p.doc_id for p in passages}),
                "passages": len(passages),
                "embedding_model": encoder.model_id,
                "index_dir": str(index_dir),
            },
        )

    return ReloadablePipeline(build, corpus=folders), uploads


def users_file(tmp: Path) -> Path:
    path = tmp / "users.toml"
    path.write_text(USERS, encoding="utf-8")
    path.chmod(0o600)
    return path


def department_app(tmp: Path, *, feedback_path: Path | None = None, **kwargs):
    """``ui.create_app`` over the departments with the users file's logins and groups."""
    import ui
    from qa.web.identity import Identity, Logins

    pipeline, uploads = department_pipeline(tmp)
    identity = Identity(
        logins=Logins.from_settings(None, str(users_file(tmp))),
        admin_token="test-admin-token",
        metrics_token=kwargs.pop("metrics_token", "test-scrape-token"),
    )
    app = ui.create_app(
        pipeline,
        feedback_path=feedback_path or tmp / "feedback.jsonl",
        upload_dir=uploads,
        identity=identity,
        examples=[],
        **kwargs,
    )
    return app, pipeline, uploads
