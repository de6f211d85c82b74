"""Issue #13 in headless chromium: groups through the chat, and the admin page.

The app is ``ui.create_app`` over a real saved index of two restricted departments
(``admin_helpers``) with the built-in login from a users file (docs/intranet.md): ``li`` (hr),
``zhao`` (finance), ``boss`` (admin). It runs in a uvicorn thread. Screenshots go to
``artifacts/screenshots/``; with ``LUDAO_DOCS_SCREENSHOTS=1`` the admin page's two also go to
``docs/`` (``admin-documents.png``, ``admin-feedback.png``). axe-core counts by impact go to
``artifacts/axe-admin.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Iterator

import pytest

pytest.importorskip("gradio")
webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")

from admin_helpers import QUESTION, department_app  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from test_browser import REPO, SCREENSHOTS, headless_chromium, wait_for  # noqa: E402
from test_ui import serve  # noqa: E402
from test_widget_browser import _axe_source, axe, by_impact  # noqa: E402

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "artifacts"


@pytest.fixture(scope="module")
def driver():
    drv = headless_chromium()
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[str, object]]:
    tmp = tmp_path_factory.mktemp("departments")
    app, _, _ = department_app(tmp)
    _seed_records(tmp)
    with serve(app) as url:
        yield url, tmp


def _seed_records(tmp) -> None:
    """A week of earlier questions and ratings, so the plots have something to show."""
    from qa.feedback import FeedbackRecord, FeedbackStore
    from qa.usage import UsageLog, UsageRecord

    usage = UsageLog(f"sqlite:///{tmp / 'records.sqlite'}")
    questions = ["员工出差每天的餐费补贴标准是多少？", "年假有几天？", "报销要在几天内提交？",
                 "火星上的天气怎么样？"]  # fmt: skip
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for day in range(1, 8):
        for n in range(day % 4 + 2):
            q = questions[(day + n) % len(questions)]
            declined = q.startswith("火星")
            when = (today - dt.timedelta(days=8 - day, hours=-n)).isoformat()
            usage.append(UsageRecord(
                time=when, user="li", groups=("everyone", "hr"),
                question=q, no_answer=declined, top_score=None if declined else 0.3 + 0.1 * n,
                passage_ids=("hr-rules:0:abc",), latency_ms=40.0 + n,
            ))  # fmt: skip
    feedback = FeedbackStore(tmp / "feedback.jsonl")
    for day, rating in ((2, "like"), (3, "dislike"), (4, "like"), (5, "like"), (6, "dislike")):
        feedback.append(FeedbackRecord(
            time=(today - dt.timedelta(days=8 - day)).isoformat(), source="api", rating=rating,
            question="年假有几天？<script>window.__xss=1</script>", answer="<b>五天</b>",
            passage_ids=("hr-rules:0:abc",), user="li",
        ))  # fmt: skip


def login(drv, url: str, user: str, password: str) -> None:
    drv.delete_all_cookies()
    drv.get(url)
    name = wait_for(drv, "input[type=text], input:not([type])")[0]
    name.send_keys(user)
    secret = drv.find_element(By.CSS_SELECTOR, "input[type=password]")
    secret.send_keys(password, Keys.ENTER)


def _ask(drv, question: str) -> str:
    box = wait_for(drv, "#ludao-question textarea")[0]
    box.click()
    box.send_keys(question, Keys.ENTER)
    return wait_for(drv, "#ludao-chat .ludao-reply", timeout=60)[-1].text


def test_two_departments_get_different_citations_through_the_chat(driver, site) -> None:
    url, _ = site
    replies = {}
    for user, password in (("li", "li-pass"), ("zhao", "zhao-pass")):
        login(driver, url, user, password)
        replies[user] = _ask(driver, QUESTION)
        driver.save_screenshot(str(SCREENSHOTS / f"groups-{user}.png"))
    assert "八十元" in replies["li"] and "hr-rules" in replies["li"]
    assert "一百二十元" not in replies["li"] and "fin-rules" not in replies["li"]
    assert "一百二十元" in replies["zhao"] and "fin-rules" in replies["zhao"]
    assert "八十元" not in replies["zhao"] and "hr-rules" not in replies["zhao"]


def test_a_non_admin_cannot_open_the_admin_page(driver, site) -> None:
    url, _ = site
    login(driver, url, "li", "li-pass")  # logged in to the chat...
    wait_for(driver, "#ludao-question textarea")
    driver.get(url + "admin/")  # ...is not logged in to the admin page
    wait_for(driver, "input[type=password]")
    login(driver, url + "admin/", "li", "li-pass")
    WebDriverWait(driver, 15).until(
        lambda d: "incorrect" in d.find_element(By.TAG_NAME, "body").text.lower()
    )
    assert not driver.find_elements(By.CSS_SELECTOR, "#admin-documents")
    driver.save_screenshot(str(SCREENSHOTS / "admin-refused.png"))


def _open_admin(drv, url: str) -> None:
    login(drv, url + "admin/", "boss", "boss-pass")
    wait_for(drv, "#admin-documents tbody tr", timeout=60)


def _tab(drv, label: str) -> None:
    for button in drv.find_elements(By.CSS_SELECTOR, "button[role=tab]"):
        if label in button.text:
            button.click()
            return
    raise AssertionError(f"no tab {label!r}")


def _docs_copy(name: str) -> None:
    if os.environ.get("LUDAO_DOCS_SCREENSHOTS"):
        shutil.copyfile(SCREENSHOTS / name, REPO / "docs" / name)


def test_an_admin_sees_documents_and_plots(driver, site) -> None:
    url, tmp = site
    uploads = tmp / "uploads"
    driver.set_window_size(1280, 1100)
    _open_admin(driver, url)
    table = driver.find_element(By.CSS_SELECTOR, "#admin-documents").text
    assert "hr-rules.txt" in table and "fin-rules.txt" in table and "finance" in table
    assert "boss" in driver.find_element(By.CSS_SELECTOR, "#admin-who").text
    # Upload a readable file and a broken "PDF" with a group: one kept, one reported and dropped.
    incoming = tmp / "incoming"
    incoming.mkdir(exist_ok=True)
    (incoming / "差旅新规.txt").write_text("人事部新规：高铁二等座可报销。", encoding="utf-8")
    (incoming / "broken.pdf").write_bytes(b"%PDF-1.4 not really" * 30)
    group = driver.find_element(By.CSS_SELECTOR, "#admin-group textarea, #admin-group input")
    group.clear()
    group.send_keys("hr")
    chooser = driver.find_element(
        By.CSS_SELECTOR, "#admin-upload input[type=file], input[type=file]"
    )
    chooser.send_keys(f"{incoming / '差旅新规.txt'}\n{incoming / 'broken.pdf'}")
    report = wait_for(driver, "#admin-report", timeout=60)[0].text
    assert "差旅新规.txt" in report and "broken.pdf" in report and "cannot be read" in report
    WebDriverWait(driver, 30).until(
        lambda d: "差旅新规.txt" in d.find_element(By.CSS_SELECTOR, "#admin-documents").text
    )
    rows = driver.find_elements(By.CSS_SELECTOR, "#admin-documents tbody tr")
    assert "差旅新规.txt hr " in next(r.text + " " for r in rows if "差旅新规" in r.text)
    assert not (uploads / "broken.pdf").exists() and (uploads / "差旅新规.txt").exists()
    driver.save_screenshot(str(SCREENSHOTS / "admin-documents.png"))
    _docs_copy("admin-documents.png")
    _tab(driver, "Feedback")
    for plot in ("questions", "ratings", "declined", "low", "top"):
        wait_for(driver, f"#admin-plot-{plot} canvas, #admin-plot-{plot} svg", timeout=30)
    flagged = wait_for(driver, "#admin-flagged")[0].text
    assert "<script>window.__xss=1</script>" in flagged and "<b>五天</b>" in flagged
    assert driver.execute_script("return typeof window.__xss") == "undefined"
    summary = driver.find_element(By.CSS_SELECTOR, "#admin-summary").text
    assert "60.0%" in summary  # 3 likes of 5 ratings
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(SCREENSHOTS / "admin-feedback.png"))
    _docs_copy("admin-feedback.png")


def test_axe_on_the_admin_page(driver, site) -> None:
    source = _axe_source()
    url, _ = site
    driver.set_window_size(1280, 1000)
    _open_admin(driver, url)
    results = {"admin: documents": axe(driver, source)}
    _tab(driver, "Feedback")
    wait_for(driver, "#admin-plot-questions canvas, #admin-plot-questions svg", timeout=30)
    results["admin: feedback & usage"] = axe(driver, source)
    _tab(driver, "Audit")
    results["admin: audit"] = axe(driver, source)
    report = {page: {"by_impact": by_impact(v), "violations": v} for page, v in results.items()}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "axe-admin.json").write_text(
        json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8"
    )
    for page, found in results.items():
        bad = [v for v in found if v["impact"] in ("serious", "critical")]
        assert not bad, f"{page}: {bad}"
