"""Two ``ludao serve`` processes sharing one Milvus store and one PostgreSQL (issue #15).

Started by the test, each in its temp dir, and stopped by PID: a ``milvus-lite server`` on a free
port, a throwaway PostgreSQL (``tests/pg_server.py``) and two real servers (``python ui.py``
with the default models), each with its own ``LUDAO_HOME`` and upload folder. What one server
takes in must be visible to the other: a document uploaded through A is answered by B after B
reloads, and feedback sent to both at concurrency 8 all lands in the one database.
"""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import real_server_env

from tests.pg_server import missing_reason, postgres_server
from tests.test_store_outage import start_milvus, stop

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(
        not all(importlib.util.find_spec(m) for m in ("pymilvus", "milvus_lite")),
        reason="pymilvus/milvus-lite not installed: pip install 'ludao[milvus]'",
    ),
    pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason())),
]

TOKEN = "shared-store-test-token"
HANDBOOK = (
    "员工手册：公司实行标准工时制度，每周工作五天，每天工作八小时。员工每年享有带薪年休假，"
    "工作满一年不满十年的，年休假五天；满十年不满二十年的，年休假十天。\n\n"
    "报销制度：员工因公出差发生的交通费、住宿费凭发票报销，报销单须在出差结束后十五日内提交。"
)
UPLOADED = (
    "搬迁通知：公司新办公楼位于海沧区翁角路一百八十八号，二零二五年三月起启用，"
    "各部门按照行政部安排的顺序分批搬入新办公楼。"
)
QUESTION = "公司新办公楼位于哪里？"


def server_env(tmp: Path, name: str, corpus: Path, milvus: str, database: str) -> dict[str, str]:
    env = real_server_env(tmp / name)
    uploads = tmp / name / "uploads"
    uploads.mkdir(parents=True)
    return {
        **env,
        "LUDAO_CORPUS": str(corpus),
        "LUDAO_VECTOR_STORE": "milvus",
        "LUDAO_MILVUS_URI": milvus,
        "LUDAO_MILVUS_COLLECTION": "shared_test",
        "LUDAO_DATABASE_URL": database,
        "LUDAO_UPLOAD_DIR": str(uploads),
        "LUDAO_ADMIN_TOKEN": TOKEN,
        "LUDAO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    }


def test_two_servers_share_one_store_and_one_database(tmp_path: Path) -> None:
    import httpx

    from qa.records import SqlFeedbackStore
    from qa.web.servers import free_port, start_server

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "handbook.txt").write_text(HANDBOOK, encoding="utf-8")
    milvus_port = free_port()
    milvus = start_milvus(tmp_path / "milvus", milvus_port)
    servers = []
    try:
        with postgres_server() as database:
            uri = f"http://127.0.0.1:{milvus_port}"
            urls = []
            for name in ("a", "b"):  # one after the other: one writer at a time fills the store
                port = free_port()
                env = server_env(tmp_path, name, corpus, uri, database)
                servers.append(start_server(port, env))
                urls.append(f"http://127.0.0.1:{port}")
            a, b = urls
            admin = {"authorization": f"Bearer {TOKEN}"}
            before = httpx.get(f"{b}/healthz", headers=admin, timeout=30).json()

            # A document uploaded through A ...
            upload = httpx.post(
                f"{a}/api/documents",
                headers=admin,
                files={"file": ("relocation.txt", UPLOADED.encode(), "text/plain")},
                timeout=300,
            )
            assert upload.status_code == 201, upload.text
            assert upload.json()["reload"]["reloaded"], upload.text
            # ... is answered by B after B reloads (B's own corpus does not hold the file).
            reload = httpx.post(f"{b}/api/reload", headers=admin, timeout=300)
            assert reload.status_code == 200, reload.text
            after = httpx.get(f"{b}/healthz", headers=admin, timeout=30).json()
            assert after["documents"] == before["documents"] + 1
            assert after["passages"] > before["passages"]
            answer = httpx.post(f"{b}/api/ask", json={"question": QUESTION}, timeout=120).json()
            assert not answer["no_answer"], answer
            assert "翁角路" in answer["answers"][0]["text"], answer["answers"][0]
            assert not (Path(tmp_path / "b" / "uploads") / "relocation.txt").exists()

            # Feedback to both servers, 8 at a time: every record is in the one database.
            def send(i: int) -> int:
                body = {"question": f"并发反馈 {i}", "rating": "like" if i % 2 else "dislike"}
                return httpx.post(f"{urls[i % 2]}/api/feedback", json=body, timeout=60).status_code

            with ThreadPoolExecutor(max_workers=8) as pool:
                codes = list(pool.map(send, range(80)))
            assert codes == [201] * 80
            records = SqlFeedbackStore(database, migrate=False).read()
            sent = sorted(r.question for r in records if r.question.startswith("并发反馈"))
            assert sent == sorted(f"并发反馈 {i}" for i in range(80))  # 0 lost, none twice
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(timeout=30)
        stop(milvus)
