"""The chat and the intranet embedding example in headless Debian chromium, driven by Selenium.

Needs ``apt-get install chromium chromium-driver`` (and a CJK font such as ``fonts-wqy-zenhei``
for readable screenshots) and ``pip install selenium``; skipped with a reason otherwise. The app
runs on a ``FakePipeline`` in a uvicorn thread; screenshots go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("gradio")
webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")

from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from test_ui import XSS, FakePipeline, serve  # noqa: E402

import ui  # noqa: E402

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
QUESTION = "2024年厦门全社会研发投入强度是多少？"
XSS_TITLE = '<img src=x onerror="window.__xss=1">'
XSS_QUESTION = "<img src=x onerror=window.__xss=1> 研发投入强度？"


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip(
            "needs Debian chromium + chromium-driver (apt-get install chromium chromium-driver)"
        )
    return browser, driver


def headless_chromium(window: str = "1280,1000", *, performance_log: bool = False):
    """Debian's chromium under Selenium, offline; every browser test module starts it this way."""
    from selenium.webdriver.chrome.service import Service

    browser, chromedriver = _chromium()
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not download anything
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={window}", "--lang=zh-CN"):  # fmt: skip
        options.add_argument(arg)
    if performance_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    drv = webdriver.Chrome(service=Service(chromedriver), options=options)
    drv.set_page_load_timeout(60)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return drv


@pytest.fixture(scope="module")
def driver():
    drv = headless_chromium()
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def feedback_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("feedback") / "feedback.jsonl"


@pytest.fixture(scope="module")
def app_url(feedback_file) -> Iterator[str]:
    app = ui.create_app(FakePipeline(delay=1.0), feedback_path=feedback_file)
    with serve(app) as url:
        yield url


@pytest.fixture(scope="module")
def xss_url(tmp_path_factory) -> Iterator[str]:
    pipeline = FakePipeline(text=XSS, title=XSS_TITLE)
    app = ui.create_app(pipeline, feedback_path=tmp_path_factory.mktemp("xss") / "f.jsonl")
    with serve(app) as url:
        yield url


@pytest.fixture(scope="module")
def page_server() -> Iterator[int]:
    """Serves examples/ from another origin (``localhost`` vs the app's ``127.0.0.1``)."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(REPO / "examples"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()


def wait_for(drv, css: str, *, root=None, timeout: float = 30):
    scope = root or drv
    try:
        return WebDriverWait(drv, timeout, poll_frequency=0.1).until(
            lambda _: scope.find_elements(By.CSS_SELECTOR, css)
        )
    except TimeoutException:
        drv.save_screenshot(str(SCREENSHOTS / "timeout.png"))
        raise


def ask(drv, question: str, *, scope: str = "") -> None:
    box = wait_for(drv, f"{scope} #ludao-question textarea".strip())[0]
    box.click()
    box.send_keys(question)
    box.send_keys(Keys.ENTER)


def shoot(drv, name: str) -> None:
    drv.save_screenshot(str(SCREENSHOTS / name))


def test_chat_answers_with_highlight_progress_and_feedback(driver, app_url, feedback_file):
    driver.get(app_url)
    info = wait_for(driver, "#ludao-info")[0].text
    assert "multilingual-e5-small" in info and "reader-zh" in info
    ask(driver, QUESTION)
    # While the (1 s) fake pipeline works, the chat shows progress.
    status = wait_for(driver, "#ludao-chat .progress-text, #ludao-chat .progress-level", timeout=10)
    assert status
    shoot(driver, "chat-progress.png")
    mark = wait_for(driver, "#ludao-chat .ludao-reply mark")[0]
    assert mark.text == "3.46%"
    reply = driver.find_element(By.CSS_SELECTOR, "#ludao-chat .ludao-reply").text
    assert reply.index("3.46%") < reply.index("91%") < reply.index("鹭江弄潮")
    user = driver.find_element(By.CSS_SELECTOR, "#ludao-chat .ludao-question").text
    assert user == QUESTION
    shoot(driver, "chat-answer.png")

    driver.find_element(By.CSS_SELECTOR, "#ludao-chat button[aria-label='Like']").click()
    # The file can exist a moment before its line is written: wait for a whole line.
    WebDriverWait(driver, 10).until(
        lambda _: (
            feedback_file.exists() and feedback_file.read_text(encoding="utf-8").endswith("\n")
        )
    )
    record = json.loads(feedback_file.read_text(encoding="utf-8").splitlines()[-1])
    assert record["rating"] == "like"
    assert record["question"] == QUESTION and record["answer"] == "3.46%"
    assert record["embedding_model"] == "multilingual-e5-small"


def test_phone_width_has_no_horizontal_scroll(driver, app_url):
    driver.set_window_size(390, 844)
    try:
        driver.get(app_url)
        ask(driver, QUESTION)
        wait_for(driver, "#ludao-chat .ludao-reply mark")
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        shoot(driver, "chat-phone.png")
        assert overflow <= 1
    finally:
        driver.set_window_size(1280, 1000)


def test_document_payloads_display_as_text_and_never_run(driver, xss_url):
    driver.get(xss_url)
    ask(driver, XSS_QUESTION)
    reply = wait_for(driver, "#ludao-chat .ludao-reply mark")[0]
    time.sleep(0.5)  # give any injected handler the chance to fire
    assert driver.execute_script("return typeof window.__xss") == "undefined"
    chat = driver.find_element(By.CSS_SELECTOR, "#ludao-chat")
    text = chat.text
    assert '<img src=x onerror="window.__xss=1">' in text
    assert "<script>window.__xss=1</script>" in text
    assert "[link](javascript:alert(1))" in text
    assert XSS_QUESTION in text
    assert reply.text == "3.46%"
    assert not chat.find_elements(By.CSS_SELECTOR, ".message-content img, .message-content script")
    assert not chat.find_elements(By.CSS_SELECTOR, ".message-content a")
    shoot(driver, "chat-xss.png")


@contextlib.contextmanager
def _app_for_page(kind: str, page_port: int, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Yields (page URL, app URL) for one way of embedding."""
    cors = [f"http://localhost:{page_port}"] if kind == "explicit-cors" else None
    app = ui.create_app(FakePipeline(), cors_origins=cors, feedback_path=tmp_path / "f.jsonl")
    with serve(app) as url:
        if kind == "same-origin":
            yield f"{url}examples/intranet.html", url
        else:
            yield f"http://localhost:{page_port}/intranet.html?src={url}", url


# No "cross-origin without an allow-list" case: since issue #13 that is refused by default.
@pytest.mark.parametrize("kind", ["explicit-cors", "same-origin"])
def test_intranet_example_embeds_the_chat(driver, page_server, tmp_path, kind):
    with _app_for_page(kind, page_server, tmp_path) as (page, app_url):
        driver.get(page)
        assert driver.find_element(By.ID, "ludao-src").text == app_url
        # 1. the <gradio-app> web component
        ask(driver, QUESTION, scope="gradio-app")
        mark = wait_for(driver, "gradio-app .ludao-reply mark")[0]
        assert mark.text == "3.46%"
        driver.execute_script("arguments[0].scrollIntoView()", mark)
        shoot(driver, f"intranet-{kind}-web-component.png")
        # 2. the iframe
        frame = driver.find_element(By.ID, "ludao-iframe")
        driver.execute_script("arguments[0].scrollIntoView()", frame)
        driver.switch_to.frame(frame)
        try:
            ask(driver, QUESTION)
            assert wait_for(driver, "#ludao-chat .ludao-reply mark")[0].text == "3.46%"
        finally:
            driver.switch_to.default_content()
        shoot(driver, f"intranet-{kind}-iframe.png")


def test_example_page_on_ludao_ignores_a_foreign_src(driver, tmp_path):
    """Issue #13: ``?src=http://attacker/`` must not load the attacker's script on Ludao."""
    app = ui.create_app(FakePipeline(), feedback_path=tmp_path / "f.jsonl")
    with serve(app) as url:
        driver.get(f"{url}examples/intranet.html?src=http://127.0.0.1:9/")
        assert driver.find_element(By.ID, "ludao-src").text == url
        sources = driver.execute_script("return Array.from(document.scripts).map(s => s.src)")
        assert sources and not any(s.startswith("http://127.0.0.1:9/") for s in sources)
        ask(driver, QUESTION, scope="gradio-app")
        assert wait_for(driver, "gradio-app .ludao-reply mark")[0].text == "3.46%"
