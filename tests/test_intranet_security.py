"""The holes a security review of the running server found (issue #13, section 4).

Each test reproduces one hole as an attacker on the intranet (or on the server's own machine,
or as a web page in a user's browser) would try it; it failed before the fix.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import zipfile
from pathlib import Path

import pytest
from conftest import FakeEncoder

from qa.loaders import DocumentError

pytest.importorskip("fastapi")


# --- DOCX decompression bomb ------------------------------------------------------------------


def _docx_bomb(path: Path, paragraphs: int) -> Path:
    import docx

    docx.Document().save(str(path))
    body = "<w:p><w:r><w:t>" + "啊" * 20 + "</w:t></w:r></w:p>"
    with zipfile.ZipFile(path) as src:
        items = {i.filename: src.read(i.filename) for i in src.infolist()}
    xml = items["word/document.xml"].decode()
    head, _, tail = xml.partition("<w:body>")
    items["word/document.xml"] = (head + "<w:body>" + body * paragraphs + tail).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in items.items():
            out.writestr(name, data)
    return path


def test_docx_bomb_is_refused_before_parsing(tmp_path: Path) -> None:
    from qa.documents import load_document

    bomb = _docx_bomb(tmp_path / "bomb.docx", 40_000)  # ~3 MB of XML in a few KB
    assert bomb.stat().st_size < 100_000
    with pytest.raises(DocumentError) as info:
        load_document(bomb)
    assert "uncompressed" in str(info.value)


def test_ordinary_docx_still_loads(tmp_path: Path) -> None:
    from qa.documents import load_document

    doc = load_document(_docx_bomb(tmp_path / "fine.docx", 50))
    assert "啊" * 20 in doc.text


# --- the HTTP server --------------------------------------------------------------------------

HR = "人事部规定：员工出差每天的餐费补贴标准是八十元。"
FIN = "财务部规定：员工出差每天的餐费补贴标准是一百二十元。"
QUESTION = "员工出差每天的餐费补贴标准是多少？"


@pytest.fixture
def pipeline():
    from conftest import make_passage

    from qa.access import DocumentAccess
    from qa.pipeline import Pipeline
    from qa.readers import SentenceReader
    from qa.retrieval import Retriever

    passages = [make_passage("hr", HR), make_passage("fin", FIN)]
    retriever = Retriever(FakeEncoder(), passages).build()
    access = DocumentAccess(passages, {"hr": {"hr"}, "fin": {"finance"}})
    return Pipeline(
        retriever=retriever,
        reader=SentenceReader(),
        **({"access": access} if "access" in Pipeline.__dataclass_fields__ else {}),
        description={"corpus": ["/srv/secret/corpus"], "index_dir": "/srv/secret/index"},
    )


def _app(pipeline, tmp_path: Path, **kwargs):
    import ui

    kwargs.setdefault("feedback_path", tmp_path / "f.jsonl")
    return ui.create_app(pipeline, **kwargs)


def _client(app, host: str = "127.0.0.1", base_url: str = "http://testserver"):
    from fastapi.testclient import TestClient

    return TestClient(app, client=(host, 50000), base_url=base_url)


def _token(ludao_home: Path) -> str:
    """The generated admin token (what an operator reads from the file)."""
    from qa.web.identity import admin_token_from_home

    return admin_token_from_home(ludao_home)


def test_example_page_has_a_strict_policy_and_no_inline_script(pipeline, tmp_path) -> None:
    with _client(_app(pipeline, tmp_path)) as c:
        page = c.get("/examples/intranet.html?src=http://attacker.example/")
        script = c.get("/examples/intranet.js")
    assert page.status_code == 200 and script.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'self'" in csp
    assert "<script>\n" not in page.text  # inline script would need 'unsafe-inline'
    assert "url.origin !== window.location.origin" in script.text


def test_upload_is_refused_before_its_body_is_read(pipeline, tmp_path, ludao_home) -> None:
    import asyncio

    app = _app(pipeline, tmp_path, upload_dir=tmp_path / "up")
    gib = 1024**3

    def call(headers: dict[str, str], chunks: int) -> tuple[int, int]:
        pulled = 0
        status = 0

        async def receive() -> dict:
            nonlocal pulled
            pulled += 1
            more = pulled < chunks
            head = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n'
            body = (head if pulled == 1 else b"") + b"x" * (1 << 20)
            return {"type": "http.request", "body": body, "more_body": more}

        async def send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        scope = {
            "type": "http", "method": "POST", "path": "/api/documents",
            "raw_path": b"/api/documents",
            "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
            "server": ("testserver", 80), "client": ("127.0.0.1", 5000),
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        }  # fmt: skip
        asyncio.run(app(scope, receive, send))
        return status, pulled

    multipart = {"content-type": "multipart/form-data; boundary=x", "host": "testserver"}
    # No token, from this very machine, 1 GiB declared: refused without reading the body.
    assert call({**multipart, "content-length": str(gib)}, 1024) == (401, 0)
    token = {"authorization": "Bearer " + _token(ludao_home)}
    # With the token, a declared 1 GiB is refused from the header alone.
    assert call({**multipart, **token, "content-length": str(gib)}, 1024) == (413, 0)
    # Chunked (no length): streamed, and stopped at the cap (50 MiB), not read to the end.
    status, pulled = call({**multipart, **token}, 1024)
    assert status == 413 and pulled <= 52
    assert not any((tmp_path / "up").glob("*")) if (tmp_path / "up").exists() else True


def test_gradio_upload_route_is_closed(pipeline, tmp_path) -> None:
    with _client(_app(pipeline, tmp_path)) as c:
        r = c.post("/gradio_api/upload", files={"files": ("a.txt", b"x" * 1000, "text/plain")})
    assert r.status_code == 403


def test_loopback_is_not_admin_and_a_token_is_generated(tmp_path, ludao_home) -> None:
    from test_reloading import Factory

    from qa.reloading import ReloadablePipeline

    app = _app(ReloadablePipeline(Factory(), corpus=[tmp_path]), tmp_path)
    path = ludao_home / "admin-token"
    forged = [{}, {"x-forwarded-for": "127.0.0.1"}, {"forwarded": "for=127.0.0.1"}]
    with _client(app, "127.0.0.1") as c:
        for headers in forged:
            assert c.post("/api/reload", headers=headers).status_code == 401
        assert c.post("/api/reload", headers={"authorization": "Bearer x"}).status_code == 401
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # made by the first admin call
        token = path.read_text().strip()
        ok = c.post("/api/reload", headers={"authorization": "Bearer " + token})
        assert ok.status_code == 200
    # The same token is used at the next start.
    before = path.read_text()
    _app(ReloadablePipeline(Factory(), corpus=[tmp_path]), tmp_path)
    assert path.read_text() == before


def test_star_is_refused_as_proxy_list_and_as_cors_origin() -> None:
    from qa.config import ServeSettings
    from qa.web.security import WebSecurity

    for bad in ({"forwarded_allow_ips": "*"}, {"cors_origins": ("*",)}):
        with pytest.raises(ValueError):
            ServeSettings(**bad)
    with pytest.raises(ValueError):
        WebSecurity(trusted_proxies=("*",))
    with pytest.raises(ValueError):
        WebSecurity(cors_origins=("*",))


def test_unknown_host_is_refused(pipeline, tmp_path) -> None:
    from qa.web.security import WebSecurity

    app = _app(pipeline, tmp_path, security=WebSecurity(allowed_hosts=("ludao.example",)))
    with _client(app, base_url="http://ludao.example") as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/healthz", headers={"host": "rebound.evil.example"}).status_code == 400


def test_cors_allows_no_other_origin_by_default(pipeline, tmp_path) -> None:
    evil = {"origin": "http://evil.example"}
    with _client(_app(pipeline, tmp_path), base_url="http://ludao.intranet") as c:
        for path in ("/config", "/healthz"):
            assert "access-control-allow-origin" not in c.get(path, headers=evil).headers
        preflight = c.options(
            "/gradio_api/queue/join",
            headers={**evil, "access-control-request-method": "POST"},
        )
        assert "access-control-allow-origin" not in preflight.headers


def test_frame_ancestors_default_to_self_and_allowed_origins(pipeline, tmp_path) -> None:
    from qa.web.security import WebSecurity

    with _client(_app(pipeline, tmp_path)) as c:
        assert "frame-ancestors 'self';" in c.get("/").headers["content-security-policy"]
    origins = WebSecurity(cors_origins=("https://portal.example",))
    with _client(_app(pipeline, tmp_path, security=origins)) as c:
        csp = c.get("/").headers["content-security-policy"]
        assert "frame-ancestors 'self' https://portal.example;" in csp
    framed = WebSecurity(frame_ancestors=("https://cms.example",))
    with _client(_app(pipeline, tmp_path, security=framed)) as c:
        assert "'self' https://cms.example;" in c.get("/").headers["content-security-policy"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/ask", b'{"question": NaN}'),
        ("/api/ask", b'{"question": "q", "top_k": 1e400}'),
        ("/api/feedback", b'{"question": "q", "rating": NaN}'),
        ("/api/feedback", b'{"question": "q", "rating": "like", "comment": "\\ud800"}'),
        ("/api/feedback", b'{"question": "q", "rating": "like", "passage_ids": ["\\udfff"]}'),
    ],
)
def test_bad_numbers_and_surrogates_are_422_not_500(pipeline, tmp_path, path, body) -> None:
    with _client(_app(pipeline, tmp_path)) as c:
        r = c.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    json.loads(r.text)


def test_a_long_chinese_upload_name_is_stored_not_a_500(pipeline, tmp_path, ludao_home) -> None:
    app = _app(pipeline, tmp_path, upload_dir=tmp_path / "up")
    token = {"authorization": "Bearer " + _token(ludao_home)}
    files = {"file": ("长" * 130 + ".txt", "会议定于周五下午三点召开。".encode(), "text/plain")}
    with _client(app) as c:
        r = c.post("/api/documents", files=files, headers=token)
    assert r.status_code == 201, r.text
    assert len(r.json()["saved"].encode()) <= 200


@pytest.mark.parametrize(
    ("name", "data"),
    [("broken.pdf", b"%PDF-1.4\n garbage"), ("random.pdf", os.urandom(4000))],
)
def test_an_unreadable_upload_is_reported_and_not_kept(
    pipeline, tmp_path, ludao_home, name, data
) -> None:
    app = _app(pipeline, tmp_path, upload_dir=tmp_path / "up")
    token = {"authorization": "Bearer " + _token(ludao_home)}
    with _client(app) as c:
        r = c.post("/api/documents", files={"file": (name, data, "application/pdf")}, headers=token)
    assert r.status_code == 422 and "cannot be read" in r.json()["detail"]
    assert not (tmp_path / "up" / name).exists()


def test_chat_ratings_are_validated_and_counted_once() -> None:
    from qa.web.intranet import chat_rating

    responses = {"1": object()}
    assert chat_rating(responses, 1, "x" * 200_000) is None
    assert chat_rating(responses, "1\nforged log line", True) is None
    assert chat_rating(responses, [1, None], True)[2] == "like"
    assert chat_rating({}, 1, False) is None  # rated already: ui drops the entry


def test_api_feedback_needs_the_chat_login(pipeline, tmp_path) -> None:
    app = _app(pipeline, tmp_path, auth=("staff", "s3cret"))
    good = "Basic " + base64.b64encode(b"staff:s3cret").decode()
    rating = {"question": "q", "rating": "like"}
    with _client(app) as c:
        assert c.post("/api/feedback", json=rating).status_code == 401
        assert (
            c.post("/api/feedback", json=rating, headers={"authorization": good}).status_code == 201
        )
    record = json.loads((tmp_path / "f.jsonl").read_text(encoding="utf-8"))
    assert record["user"] == "staff"


def test_healthz_shows_paths_only_to_admins(pipeline, tmp_path, ludao_home) -> None:
    with _client(_app(pipeline, tmp_path)) as c:
        public = c.get("/healthz")
        admin = c.get("/healthz", headers={"authorization": "Bearer " + _token(ludao_home)})
        docs = c.get("/api/docs")
    assert public.status_code == 200 and "/srv/secret" not in public.text
    assert public.json()["status"] == "ok" and public.json()["passages"] == 0  # anonymous
    assert "/srv/secret/index" in admin.text
    assert docs.status_code == 404  # Swagger came from a CDN: off


def test_gradio_chat_refuses_a_huge_question_before_any_work(pipeline, tmp_path) -> None:
    body = json.dumps({"data": ["问" * 1_000_000, [], {}], "fn_index": 0, "session_hash": "x"})
    with _client(_app(pipeline, tmp_path)) as c:
        r = c.post("/gradio_api/queue/join", content=body.encode())
    assert r.status_code == 413


def test_failed_logins_are_rate_limited(pipeline, tmp_path) -> None:
    app = _app(pipeline, tmp_path, auth=("staff", "s3cret"))
    bad = "Basic " + base64.b64encode(b"staff:guess").decode()
    with _client(app, "10.0.0.7") as c:
        codes = [
            c.post("/login", data={"username": "staff", "password": f"guess{i}"}).status_code
            for i in range(12)
        ]
        assert codes[0] == 400 and codes[-1] == 429
        # The limit covers HTTP Basic too, and the right password is refused while it holds.
        assert (
            c.post("/api/ask", json={"question": "q"}, headers={"authorization": bad}).status_code
            == 429
        )
    with _client(app, "10.0.0.8") as other:  # another address is not locked out
        good = "Basic " + base64.b64encode(b"staff:s3cret").decode()
        assert (
            other.post(
                "/api/ask", json={"question": QUESTION}, headers={"authorization": good}
            ).status_code
            == 200
        )


# --- identity ---------------------------------------------------------------------------------


def _proxied(pipeline, tmp_path):
    from qa.web.security import WebSecurity

    security = WebSecurity(
        trusted_proxies=("10.0.0.1",), user_header="Remote-User", groups_header="Remote-Groups"
    )
    return _app(pipeline, tmp_path, security=security)


def test_proxy_user_header_is_honoured_only_from_the_proxy(pipeline, tmp_path) -> None:
    app = _proxied(pipeline, tmp_path)
    as_hr = {"remote-user": "li", "remote-groups": "hr"}
    as_fin = {"remote-user": "wang", "remote-groups": "finance"}
    with _client(app, "10.0.0.1") as proxy:
        hr = proxy.post("/api/ask", json={"question": QUESTION}, headers=as_hr).json()
        fin = proxy.post("/api/ask", json={"question": QUESTION}, headers=as_fin).json()
        proxy.post("/api/feedback", json={"question": QUESTION, "rating": "like"}, headers=as_hr)
    assert "八十元" in hr["answers"][0]["text"] and {p["doc"] for p in hr["passages"]} == {"hr"}
    assert "一百二十元" in fin["answers"][0]["text"]
    assert {p["doc"] for p in fin["passages"]} == {"fin"}
    assert json.loads((tmp_path / "f.jsonl").read_text(encoding="utf-8"))["user"] == "li"
    with _client(app, "10.0.0.9") as direct:  # the same headers, not from the proxy
        assert (
            direct.post("/api/ask", json={"question": QUESTION}, headers=as_hr).status_code == 401
        )


def test_a_user_without_access_is_told_the_documents_do_not_say(pipeline, tmp_path) -> None:
    with _client(_proxied(pipeline, tmp_path), "10.0.0.1") as proxy:
        r = proxy.post("/api/ask", json={"question": QUESTION}, headers={"remote-user": "guest"})
    assert r.json()["no_answer"] is True and r.json()["passages"] == []


def test_chat_user_comes_from_the_login_or_the_proxy_header(tmp_path) -> None:
    from types import SimpleNamespace

    from qa.web.identity import Identity, Logins
    from qa.web.intranet import chat_user

    users = tmp_path / "users.toml"
    users.write_text('[users.li]\npassword = "pw"\ngroups = ["hr", "admin"]\n', encoding="utf-8")
    logins = Identity(logins=Logins.from_settings(None, str(users)))
    li = chat_user(logins, SimpleNamespace(username="li", headers={}))
    assert li.name == "li" and {"hr", "everyone"} <= li.groups and li.admin
    assert logins.logins.check("li", "pw") and not logins.logins.check("li", "PW")
    assert chat_user(logins, SimpleNamespace(username=None, headers={})).anonymous
    proxy = Identity(user_header="Remote-User", groups_header="Remote-Groups")
    headers = {"Remote-User": "wang", "Remote-Groups": "finance, board"}
    wang = chat_user(proxy, SimpleNamespace(username="wang", headers=headers))
    assert wang.name == "wang" and {"finance", "board"} <= wang.groups and not wang.admin
