"""Issue #13, section 3: usage records, the audit log, ``/metrics`` and the admin page.

The app runs on a real saved index of two restricted departments (``admin_helpers``) with the
users file's logins; records go to a SQLite file in the test's folder.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from admin_helpers import QUESTION, department_app

pytest.importorskip("gradio")

ADMIN_TOKEN = "test-admin-token"
SCRAPE_TOKEN = "test-scrape-token"


def basic(user: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {pair}"}


LI, ZHAO, BOSS = basic("li", "li-pass"), basic("zhao", "zhao-pass"), basic("boss", "boss-pass")


@pytest.fixture
def served(tmp_path):
    from fastapi.testclient import TestClient

    app, _, uploads = department_app(tmp_path)
    with TestClient(app, client=("127.0.0.1", 5000)) as client:
        yield client, tmp_path, uploads


def _usage(tmp: Path):
    from qa.usage import UsageLog

    return UsageLog(f"sqlite:///{tmp / 'records.sqlite'}").read()


def _audit_lines(tmp: Path) -> list[dict]:
    path = tmp / "audit.jsonl"
    return (
        [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
        if path.exists()
        else []
    )


# --- usage records --------------------------------------------------------------------------


def test_every_answer_is_a_usage_record_with_user_groups_and_citations(served) -> None:
    client, tmp, _ = served
    answers = {}
    for name, headers in (("li", LI), ("zhao", ZHAO)):
        r = client.post("/api/ask", json={"question": QUESTION}, headers=headers)
        assert r.status_code == 200
        answers[name] = r.json()
    records = _usage(tmp)
    assert [r.user for r in records] == ["li", "zhao"]
    li, zhao = records
    assert "hr" in li.groups and "finance" in zhao.groups
    assert li.question == QUESTION and li.no_answer is False and li.top_score is not None
    assert li.passage_ids == tuple(p["id"] for p in answers["li"]["passages"])
    assert li.passage_ids[0].startswith("hr-") and zhao.passage_ids[0].startswith("fin-")
    assert li.latency_ms > 0 and li.time.endswith("+00:00")


def test_a_refused_question_is_not_recorded_and_a_declined_one_is(served) -> None:
    client, tmp, _ = served
    assert client.post("/api/ask", json={"question": "  "}, headers=LI).status_code in (400, 422)
    r = client.post(
        "/api/ask", json={"question": "火星上的天气怎么样？"}, headers=basic("boss", "boss-pass")
    )
    assert r.status_code == 200
    records = _usage(tmp)
    assert len(records) == 1 and records[0].no_answer is r.json()["no_answer"]


# --- /metrics -------------------------------------------------------------------------------


def test_metrics_need_an_admin_or_the_scrape_token(served) -> None:
    client, _, _ = served
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=LI).status_code == 403
    assert client.get("/metrics", headers={"authorization": "Bearer wrong"}).status_code == 401
    for headers in (BOSS, {"authorization": f"Bearer {ADMIN_TOKEN}"},
                    {"authorization": f"Bearer {SCRAPE_TOKEN}"}):  # fmt: skip
        r = client.get("/metrics", headers=headers)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    # The scrape token reads metrics and nothing else.
    assert (
        client.post("/api/reload", headers={"authorization": f"Bearer {SCRAPE_TOKEN}"}).status_code
        == 401
    )
    assert (
        client.get(
            "/api/admin/export", headers={"authorization": f"Bearer {SCRAPE_TOKEN}"}
        ).status_code
        == 401
    )


def _series(text: str) -> dict[str, float]:
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_metrics_count_requests_stages_declines_errors_reloads_and_index(served) -> None:
    client, _, _ = served
    for _ in range(3):
        client.post("/api/ask", json={"question": QUESTION}, headers=LI)
    client.post("/api/ask", json={"question": "火星上的天气怎么样？"}, headers=LI)
    client.post("/api/reload", headers=BOSS)
    text = client.get("/metrics", headers=BOSS).text
    series = _series(text)
    assert series['ludao_http_requests_total{route="/api/ask",status="2xx"}'] == 4
    assert series["ludao_answers_total"] == 4
    assert series["ludao_answers_declined_total"] == 1  # nothing in the documents on Mars
    assert series['ludao_reloads_total{result="ok"}'] == 1
    assert series["ludao_index_documents"] == 2 and series["ludao_index_passages"] >= 2
    assert series["ludao_index_generation"] == 2
    # One histogram per stage the pipeline reports.
    for stage in ("retrieve", "read", "total"):
        assert f'ludao_stage_seconds_bucket{{stage="{stage}",le="+Inf"}}' in series
    assert series['ludao_stage_seconds_count{stage="total"}'] == 4
    buckets = [
        v for k, v in series.items() if k.startswith('ludao_stage_seconds_bucket{stage="total"')
    ]
    assert buckets == sorted(buckets)  # cumulative
    assert "# TYPE ludao_stage_seconds histogram" in text


def test_metric_text_format_and_errors() -> None:
    from qa.web.metrics import Metrics, route_label

    m = Metrics(buckets=(0.1, 1.0))
    m.observe("read", 0.05)
    m.observe("read", 0.5)
    m.observe("read", 5.0)
    m.inc("ludao_errors_total", kind='a"b\nc')
    text = m.render()
    assert 'ludao_stage_seconds_bucket{stage="read",le="0.1"} 1' in text
    assert 'ludao_stage_seconds_bucket{stage="read",le="1"} 2' in text
    assert 'ludao_stage_seconds_bucket{stage="read",le="+Inf"} 3' in text
    assert 'ludao_stage_seconds_sum{stage="read"} 5.55' in text
    assert 'ludao_errors_total{kind="a\\"b\\nc"} 1' in text  # label values escaped
    assert route_label("/api/ask") == "/api/ask" and route_label("/etc/passwd") == "other"
    assert route_label("/admin/gradio_api/upload") == "/admin"


def test_an_answer_that_raises_is_counted_as_an_error(tmp_path) -> None:
    from qa.access import User
    from qa.usage import UsageLog
    from qa.web.metrics import Metrics
    from qa.web.operations import ObservedPipeline

    class Broken:
        def ask(self, question, top_k=None, **options):
            raise RuntimeError("reader crashed")

    metrics = Metrics()
    observed = ObservedPipeline(Broken(), UsageLog(f"sqlite:///{tmp_path / 'r.sqlite'}"), metrics)
    with pytest.raises(RuntimeError):
        observed.ask_for(User("li"), "q")
    assert metrics.counter("ludao_errors_total", kind="answer") == 1
    assert not hasattr(observed, "reload")  # only offered when the wrapped pipeline has it


# --- audit log ------------------------------------------------------------------------------


def test_admin_actions_are_audited_in_the_database_and_the_jsonl_file(served) -> None:
    from qa.audit import AuditLog

    client, tmp, uploads = served
    assert client.post("/api/reload", headers=LI).status_code == 403  # not audited: refused
    assert client.post("/api/reload", headers=BOSS).status_code == 200
    text = "人事部新规：年假十五天。".encode()
    good = client.post("/api/documents", headers=BOSS, data={"group": "hr"},
                       files={"file": ("new-rule.txt", text, "text/plain")})  # fmt: skip
    assert good.status_code == 201
    junk = b"\x00\x01not a pdf" * 50
    bad = client.post("/api/documents", headers=BOSS,
                      files={"file": ("broken.pdf", junk, "application/pdf")})  # fmt: skip
    assert bad.status_code == 422 and not (uploads / "broken.pdf").exists()
    lines = _audit_lines(tmp)
    assert [(x["user"], x["action"], x["result"]) for x in lines] == [
        ("boss", "reload", "ok"),
        ("boss", "upload", "ok"),
        ("boss", "upload", "refused"),
    ]
    assert lines[1]["target"] == "new-rule.txt" and lines[1]["detail"]["group"] == "hr"
    stored = AuditLog(f"sqlite:///{tmp / 'records.sqlite'}", tmp / "audit.jsonl").read()
    assert [e.action for e in reversed(stored)] == ["reload", "upload", "upload"]


def test_audit_file_survives_a_database_failure(tmp_path) -> None:
    from qa.audit import AuditLog

    log = AuditLog(f"sqlite:///{tmp_path / 'r.sqlite'}", tmp_path / "audit.jsonl")
    log.engine.dispose()
    (tmp_path / "r.sqlite").unlink()
    (tmp_path / "r.sqlite").mkdir()  # the database is gone and cannot be re-created
    log.action("boss", "reload")
    assert json.loads((tmp_path / "audit.jsonl").read_text())["action"] == "reload"


# --- the admin page -------------------------------------------------------------------------


def test_the_admin_page_needs_an_admin_login(served) -> None:
    client, _, _ = served
    assert client.get("/admin/config").status_code == 401
    assert (
        client.post("/admin/login", data={"username": "li", "password": "li-pass"}).status_code
        == 400
    )
    assert client.get("/admin/config").status_code == 401  # a staff login does not open it
    token_login = {"username": "admin-token", "password": "wrong"}
    assert client.post("/admin/login", data=token_login).status_code == 400
    assert (
        client.post("/admin/login", data={"username": "boss", "password": "boss-pass"}).status_code
        == 200
    )
    assert client.get("/admin/config").status_code == 200


def test_the_admin_token_opens_the_page(served) -> None:
    client, _, _ = served
    login = {"username": "admin-token", "password": ADMIN_TOKEN}
    assert client.post("/admin/login", data=login).status_code == 200
    assert client.get("/admin/config").status_code == 200


def test_admin_page_actions_refuse_a_non_admin_caller(served) -> None:
    import gradio as gr

    from qa.web.admin_actions import AdminPage

    client, _, _ = served

    class Req:
        username = "li"
        headers = None

    page = _page(client)
    with pytest.raises(gr.Error):
        page.admin(Req())
    Req.username = "boss"
    assert page.admin(Req()).name == "boss"
    assert isinstance(page, AdminPage)


def _page(client):
    """The mounted page's object (found through the app's routes)."""
    from qa.web.admin_actions import AdminPage

    for route in client.app.routes:
        export = getattr(route, "endpoint", None)
        if getattr(route, "path", "") == "/api/admin/export":
            for cell in export.__closure__ or ():
                if isinstance(cell.cell_contents, AdminPage):
                    return cell.cell_contents
    raise AssertionError("no admin page mounted")


def test_documents_upload_remove_restore_reindex_from_the_admin_page(served) -> None:
    from qa.access import User

    client, tmp, uploads = served
    page = _page(client)
    boss = User("boss", admin=True)
    listing, removed, *_ = page.documents()
    assert "hr-rules.txt" in listing and "fin-rules.txt" in listing
    assert "finance" in listing and ">hr<" in listing
    good = tmp / "incoming" / "年假.txt"
    good.parent.mkdir()
    good.write_text("人事部新规：年假十五天。", encoding="utf-8")
    bad = tmp / "incoming" / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 garbage" * 20)
    report = page.upload([str(good), str(bad)], "hr", boss)
    assert "✓</span> <strong>年假.txt" in report and "✗</span> <strong>broken.pdf" in report
    assert (uploads / "年假.txt").exists() and not (uploads / "broken.pdf").exists()
    assert next(r for r in _rows(page) if r["name"] == "年假.txt")["groups"] == "hr"
    doc_id = next(r for r in _rows(page) if r["name"] == "hr-rules.txt")["id"]
    assert "✓" in page.change("remove", doc_id, boss)
    listing, removed, *_ = page.documents()
    assert "hr-rules.txt" not in listing and "hr-rules.txt" in removed
    assert client.post("/api/ask", json={"question": QUESTION}, headers=LI).json()["no_answer"]
    assert "✓" in page.change("restore", doc_id, boss)
    listing, removed, *_ = page.documents()
    assert "hr-rules.txt" in listing and "hr-rules.txt" not in removed
    assert "✓" in page.change("reindex", None, boss)
    actions = [(x["action"], x["result"]) for x in _audit_lines(tmp)]
    assert actions == [("upload", "ok"), ("upload", "refused"), ("remove", "ok"),
                       ("restore", "ok"), ("reindex", "ok")]  # fmt: skip


def _rows(page):
    from qa.web.admin_data import document_table

    return document_table(page.index_dir()).rows


# --- feedback and usage figures, the flagged table, the export ------------------------------


def _records():
    from qa.feedback import FeedbackRecord
    from qa.usage import UsageRecord

    usage = [
        UsageRecord(time="2025-03-01T09:00:00+00:00", question="年假几天？", no_answer=False,
                    top_score=0.9, user="li"),
        UsageRecord(time="2025-03-01T10:00:00+00:00", question="年假几天", no_answer=False,
                    top_score=0.3, user="zhao"),
        UsageRecord(time="2025-03-02T10:00:00+00:00", question="<script>alert(1)</script>",
                    no_answer=True, passage_ids=("p<1>",), user="li"),
    ]  # fmt: skip
    feedback = [
        FeedbackRecord(time="2025-03-01T09:01:00+00:00", rating="like", question="年假几天？"),
        FeedbackRecord(time="2025-03-01T10:01:00+00:00", rating="dislike", question="年假几天",
                       answer="<b>三天</b>", passages=({"id": "hr:1", "title": "规定",
                       "text": "<img src=x onerror=alert(1)>"},)),
    ]  # fmt: skip
    return usage, feedback


def test_usage_figures() -> None:
    from qa.web.admin_data import usage_figures

    usage, feedback = _records()
    figures = usage_figures(usage, feedback, threshold=0.5)
    per_day = figures["per_day"]
    assert list(per_day["day"]) == ["2025-03-01", "2025-03-02"]
    assert list(per_day["questions"]) == [2, 1]
    assert list(per_day["declined_rate"]) == [0.0, 1.0]
    assert list(per_day["low_confidence_share"]) == [0.5, 0.0]
    assert dict(zip(figures["ratings"]["rating"], figures["ratings"]["count"], strict=True)) == {
        "like": 1, "dislike": 1}  # fmt: skip
    top = figures["top_questions"]
    assert top.iloc[0]["count"] == 2  # "年假几天？" and "年假几天" are one question
    summary = figures["summary"]
    assert summary["like_ratio"] == 0.5 and summary["declined_rate"] == round(1 / 3, 4)
    assert summary["low_confidence_share"] == 0.5  # of the two answered
    assert usage_figures(usage, feedback, threshold=0.95)["summary"]["low_confidence_share"] == 1.0


def test_flagged_table_is_escaped() -> None:
    from qa.web.admin_data import flagged_html, flagged_questions

    usage, feedback = _records()
    items = flagged_questions(usage, feedback)
    assert [(i.reason, i.question) for i in items] == [
        ("declined", "<script>alert(1)</script>"),
        ("disliked", "年假几天"),
    ]
    html = flagged_html(items)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in html and "<b>三天" not in html and "&lt;b&gt;三天" in html
    assert "p&lt;1&gt;" in html and "hr:1" in html


def test_export_scores_with_ludao_eval(tmp_path, monkeypatch) -> None:
    """The exported file is read by the real ``ludao eval`` command."""
    from admin_helpers import department_pipeline
    from click.testing import CliRunner

    from qa.cli import cli
    from qa.pipeline import Pipeline
    from qa.web.admin_data import export_lines, flagged_questions

    usage, feedback = _records()
    lines = export_lines(flagged_questions(usage, feedback))
    exported = tmp_path / "regression.jsonl"
    exported.write_text("\n".join(lines) + "\n", encoding="utf-8")
    first = json.loads(lines[0])
    assert first["answers"] == [] and "Fill in" in first["note"] and first["reason"] == "declined"
    # Someone fills in the right answer for the disliked question.
    edited = [json.loads(x) for x in lines]
    edited[1]["answers"] = ["八十元"]
    edited[1]["question"] = QUESTION
    exported.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in edited), "utf-8")
    pipeline, _ = department_pipeline(tmp_path)
    monkeypatch.setattr(
        Pipeline, "from_settings", classmethod(lambda cls, s, **k: pipeline.current)
    )
    result = CliRunner().invoke(cli, ["eval", str(exported), "--json", "--as-groups", "hr"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["n"] == 2
    assert report["exact_match"] > 0  # the filled-in answer is found for a user of hr


def test_export_route_is_admin_only_and_audited(served) -> None:
    client, tmp, _ = served
    client.post("/api/ask", json={"question": "火星上的天气怎么样？"}, headers=LI)
    assert client.get("/api/admin/export").status_code == 401
    assert client.get("/api/admin/export", headers=LI).status_code == 403
    r = client.get("/api/admin/export", headers=BOSS)
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert all(set(x) >= {"id", "question", "answers"} for x in lines)
    assert int(r.headers["x-ludao-questions"]) == len(lines)
    assert _audit_lines(tmp)[-1]["action"] == "export"


def test_the_admin_pages_file_input_needs_the_admin_login(served) -> None:
    """Gradio's upload route stays closed on the chat; on /admin only an admin may use it."""
    client, _, _ = served
    files = {"files": ("a.txt", b"x" * 1000, "text/plain")}
    assert client.post("/gradio_api/upload", files=files).status_code == 403
    assert client.post("/admin/gradio_api/upload", files=files).status_code == 401
    client.post("/admin/login", data={"username": "li", "password": "li-pass"})
    assert client.post("/admin/gradio_api/upload", files=files).status_code == 401
    client.post("/admin/login", data={"username": "boss", "password": "boss-pass"})
    assert client.post("/admin/gradio_api/upload", files=files).status_code == 200
    big = {
        "content-length": str(60 * 1024 * 1024),
        "content-type": "multipart/form-data; boundary=x",
    }
    assert client.post("/admin/gradio_api/upload", headers=big, content=b"").status_code == 413
