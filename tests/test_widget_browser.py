"""The chat bubble on a host page in headless Debian chromium: open, answer, close, keep.

The app runs on ``FakePipeline`` in a uvicorn thread on ``127.0.0.1``; host pages written by the
test are served from ``localhost`` (another origin), as on an intranet. Accessibility is checked
with axe-core from npm (``npm install --prefix artifacts/axe axe-core``, as ``.ci/run`` does, or
``LUDAO_AXE_JS=/path/to/axe.min.js``); those tests skip with that reason when it is absent. The
counts by impact go to ``artifacts/axe-widget.json``; the bytes the host page loads, to
``artifacts/widget-bytes.json``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("gradio")
webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")

from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from test_browser import SCREENSHOTS, headless_chromium, wait_for  # noqa: E402
from test_conversation_web import FIRST, FOLLOWUP, REBUILT, ConversationPipeline  # noqa: E402
from test_ui import FakePipeline, serve  # noqa: E402

import ui  # noqa: E402
from qa.conversation import Turn  # noqa: E402
from qa.web.security import WebSecurity  # noqa: E402

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts"
QUESTION = "2024年厦门全社会研发投入强度是多少？"
HOST_CSS = """
  * { box-sizing: content-box; }
  body { margin: 0; font: 17px/1.3 Georgia, serif; color: #222; background: #f4f6f8; }
  button, iframe, div { border: 3px dashed #c00; border-radius: 0; }
  button { background: #fc0; color: #000; font-size: 21px; padding: 9px; }
  h1 { font-size: 30px; color: #12355b; } p { margin: 11px; } a { color: #060; }
  .card { width: 300px; padding: 13px; box-shadow: 0 0 4px #999; }
"""
HOST_BODY = """
<header><h1>示例内网门户</h1><a id="first" href="#news">新闻 News</a></header>
<main><div class="card"><p id="para">通知：本周五下午系统维护。</p>
<button id="host-button" type="button">门户按钮</button></div></main>
"""
HOST_SELECTORS = ("html", "body", "header", "h1", "#first", "main", ".card", "#para",
                  "#host-button")  # fmt: skip
"""The host page's elements whose computed styles must not change when the bubble arrives."""

STYLE_SNAPSHOT = """
return arguments[0].map(function (sel) {
  var cs = getComputedStyle(document.querySelector(sel)), out = {};
  for (var i = 0; i < cs.length; i++) out[cs[i]] = cs.getPropertyValue(cs[i]);
  return [sel, out];
});
"""


def host_page(script: str = "") -> str:
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>门户</title><style>{HOST_CSS}</style>{script}</head>"
        f"<body>{HOST_BODY}</body></html>"
    )


def bubble_tag(app_url: str, **data: str) -> str:
    attributes = "".join(f' data-{k}="{v}"' for k, v in data.items())
    return f'<script src="{app_url}widget.js"{attributes} defer></script>'


@pytest.fixture(scope="module")
def driver():
    drv = headless_chromium("1280,900", performance_log=True)
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def feedback_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("widget-feedback") / "feedback.jsonl"


def _serve_dir(directory: Path, host: str = "127.0.0.1") -> tuple[ThreadingHTTPServer, int]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), functools.partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_port


def framable_by(origin: str) -> WebSecurity:
    """The server's defences with ``origin`` allowed to frame it (``LUDAO_FRAME_ANCESTORS``)."""
    return WebSecurity(frame_ancestors=(origin,))


@pytest.fixture(scope="module")
def page_folder(tmp_path_factory) -> Iterator[tuple[Path, str]]:
    """A folder served as ``http://localhost:PORT/``: the intranet's pages, on another origin."""
    folder = tmp_path_factory.mktemp("host-pages")
    server, port = _serve_dir(folder)
    yield folder, f"http://localhost:{port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def app_url(feedback_file, page_folder) -> Iterator[str]:
    app = ui.create_app(
        FakePipeline(delay=0.3), feedback_path=feedback_file, security=framable_by(page_folder[1])
    )
    with serve(app) as url:
        yield url


@pytest.fixture(scope="module")
def pages(app_url, page_folder) -> str:
    """Base URL of the host pages: plain, with the bubble, and in English on the left."""
    folder, origin = page_folder
    (folder / "plain.html").write_text(host_page(), encoding="utf-8")
    tag = bubble_tag(app_url, title="部门问答", position="bottom-right", lang="zh")
    (folder / "bubble.html").write_text(host_page(tag), encoding="utf-8")
    english = bubble_tag(
        app_url, title="Ask HR", position="bottom-left", color="#7a1f5c", lang="en"
    )
    (folder / "english.html").write_text(host_page(english), encoding="utf-8")
    return origin + "/"


# --- helpers: the shadow DOM, the frame -------------------------------------------------------


def shadow(drv, css: str):
    """The element ``css`` inside the bubble's shadow root (waits for the bubble)."""
    WebDriverWait(drv, 20, poll_frequency=0.1).until(
        lambda d: d.execute_script("var h=document.querySelector('ludao-widget');"
                                   "return !!(h && h.shadowRoot)")
    )  # fmt: skip
    return drv.execute_script(
        "return document.querySelector('ludao-widget').shadowRoot.querySelector(arguments[0])",
        css,
    )


def panel_open(drv) -> bool:
    return not drv.execute_script(
        "return document.querySelector('ludao-widget').shadowRoot.querySelector('.p').hidden"
    )


def active_in_shadow(drv) -> str:
    """What has focus: the class of the focused element inside the bubble, or the tag outside."""
    return drv.execute_script(
        "var a=document.activeElement;"
        "if (a && a.tagName==='LUDAO-WIDGET') { var s=a.shadowRoot.activeElement;"
        "  return s ? (s.className || s.tagName.toLowerCase()) : 'host'; }"
        "return a ? a.tagName.toLowerCase() : '';"
    )


def in_frame(drv):
    frame = shadow(drv, "iframe")
    assert frame is not None, "the panel has no iframe"
    drv.switch_to.frame(frame)


def ask_in_panel(drv, question: str) -> None:
    box = wait_for(drv, "#ludao-question")[0]
    box.send_keys(question)
    box.send_keys(Keys.ENTER)


def network_log(drv) -> list[dict]:
    """Responses since the last call: url, status, encoded bytes (from chromium's CDP log)."""
    urls: dict[str, dict] = {}
    for entry in drv.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.responseReceived":
            urls[params["requestId"]] = {
                "url": params["response"]["url"], "status": params["response"]["status"],
                "bytes": 0,
            }  # fmt: skip
        elif message["method"] == "Network.loadingFinished" and params["requestId"] in urls:
            urls[params["requestId"]]["bytes"] = int(params["encodedDataLength"])
    return list(urls.values())


# --- the tests ----------------------------------------------------------------------------------


def test_bubble_opens_answers_closes_and_keeps_the_conversation(driver, pages, feedback_file):
    driver.set_window_size(1280, 900)
    driver.get(pages + "bubble.html")
    launcher = shadow(driver, ".l")
    assert launcher.get_attribute("aria-label") == "打开问答：部门问答"
    assert launcher.get_attribute("aria-expanded") == "false"
    assert shadow(driver, "iframe") is None  # nothing loaded until the first open
    driver.save_screenshot(str(SCREENSHOTS / "widget-closed.png"))

    launcher.click()
    assert panel_open(driver) and launcher.get_attribute("aria-expanded") == "true"
    assert shadow(driver, ".p").get_attribute("role") == "dialog"
    in_frame(driver)
    try:
        ask_in_panel(driver, QUESTION)
        mark = wait_for(driver, ".msg.bot .ludao-reply mark")[0]
        assert mark.text == "3.46%"
        reply = driver.find_element(By.CSS_SELECTOR, ".msg.bot").text
        assert reply.index("3.46%") < reply.index("91%") < reply.index("鹭江弄潮")
        assert driver.find_element(By.CSS_SELECTOR, ".msg.user").text == QUESTION
        driver.find_element(By.CSS_SELECTOR, ".fb button[data-rating='like']").click()
        WebDriverWait(driver, 10).until(lambda _: feedback_file.exists())
        WebDriverWait(driver, 5).until(
            lambda d: d.find_element(By.CSS_SELECTOR, ".fb button[data-rating='like']")
            .get_attribute("aria-pressed") == "true"
        )  # fmt: skip
        driver.switch_to.default_content()
        driver.save_screenshot(str(SCREENSHOTS / "widget-open.png"))
        in_frame(driver)
        ActionChains(driver).send_keys(Keys.ESCAPE).perform()
    finally:
        driver.switch_to.default_content()
    WebDriverWait(driver, 5).until(lambda d: not panel_open(d))
    assert active_in_shadow(driver) == "l"  # focus is back on the launcher
    record = json.loads(feedback_file.read_text(encoding="utf-8").splitlines()[-1])
    assert record["source"] == "widget" and record["answer"] == "3.46%"

    frame_before = shadow(driver, "iframe")
    shadow(driver, ".l").click()
    assert panel_open(driver)
    assert shadow(driver, "iframe") == frame_before  # the same frame: not reloaded
    in_frame(driver)
    try:
        assert len(driver.find_elements(By.CSS_SELECTOR, ".msg.bot")) == 1
        assert driver.find_element(By.CSS_SELECTOR, ".msg.bot mark").text == "3.46%"
    finally:
        driver.switch_to.default_content()
    shadow(driver, ".x").click()  # the close button
    assert not panel_open(driver)


def test_second_turn_in_the_panel_is_answered_from_the_first(driver, page_folder, tmp_path):
    """The panel sends its earlier turns as ``history``: "那2020年呢？" after the 2024 question
    is answered as the 2020 question, and the reply says so ("理解为 …")."""
    folder, origin = page_folder
    pipeline = ConversationPipeline()
    app = ui.create_app(pipeline, feedback_path=tmp_path / "f.jsonl", security=framable_by(origin))
    with serve(app) as url:
        (folder / "followup.html").write_text(host_page(bubble_tag(url)), encoding="utf-8")
        driver.set_window_size(1280, 900)
        driver.get(origin + "/followup.html")
        shadow(driver, ".l").click()
        in_frame(driver)
        try:
            ask_in_panel(driver, FIRST)
            assert wait_for(driver, ".msg.bot mark")[0].text == "3.46%"
            assert not driver.find_elements(By.CSS_SELECTOR, ".msg.bot .ludao-interpreted")
            ask_in_panel(driver, FOLLOWUP)
            WebDriverWait(driver, 30, poll_frequency=0.1).until(
                lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg.bot")) == 2
            )
            second = driver.find_elements(By.CSS_SELECTOR, ".msg.bot")[-1]
            assert second.find_element(By.CSS_SELECTOR, "mark").text == "3.08%"
            line = second.find_element(By.CSS_SELECTOR, ".ludao-interpreted")
            assert line.is_displayed() and line.text == f"理解为 Understood as：{REBUILT}"
            driver.save_screenshot(str(SCREENSHOTS / "widget-followup.png"))
        finally:
            driver.switch_to.default_content()
    assert pipeline.histories == [[], [Turn(FIRST, "3.46%")]]


def test_keyboard_only(driver, pages):
    driver.set_window_size(1280, 900)
    driver.get(pages + "bubble.html")
    shadow(driver, ".l")
    driver.find_element(By.TAG_NAME, "body").click()
    actions = ActionChains(driver)
    for _ in range(10):  # the page's link, its button, then the launcher
        actions.send_keys(Keys.TAB).perform()
        if active_in_shadow(driver) == "l":
            break
    assert active_in_shadow(driver) == "l", "Tab never reached the launcher"
    outline = driver.execute_script(
        "var l=document.querySelector('ludao-widget').shadowRoot.querySelector('.l');"
        "return getComputedStyle(l).outlineStyle + ' ' + getComputedStyle(l).outlineWidth"
    )
    assert outline.startswith("solid") and not outline.endswith(" 0px")  # visible focus
    actions.send_keys(Keys.ENTER).perform()
    assert panel_open(driver)
    in_frame(driver)
    try:
        WebDriverWait(driver, 10).until(
            lambda d: d.execute_script("return document.activeElement.id") == "ludao-question"
        )
        actions.send_keys(QUESTION, Keys.ENTER).perform()
        assert wait_for(driver, ".msg.bot mark")[0].text == "3.46%"
        actions.send_keys(Keys.ESCAPE).perform()
    finally:
        driver.switch_to.default_content()
    WebDriverWait(driver, 5).until(lambda d: not panel_open(d))
    assert active_in_shadow(driver) == "l"
    actions.send_keys(Keys.ENTER).perform()  # reopen: focus goes back into the box
    assert panel_open(driver)
    in_frame(driver)
    try:
        WebDriverWait(driver, 10).until(
            lambda d: d.execute_script("return document.activeElement.id") == "ludao-question"
        )
        assert len(driver.find_elements(By.CSS_SELECTOR, ".msg.bot")) == 1
    finally:
        driver.switch_to.default_content()
    # The close button is reachable too: focus it and press Enter.
    driver.execute_script(
        "document.querySelector('ludao-widget').shadowRoot.querySelector('.x').focus()"
    )
    actions.send_keys(Keys.ENTER).perform()
    assert not panel_open(driver) and active_in_shadow(driver) == "l"


def test_host_page_keeps_its_styles_and_gets_one_element(driver, pages):
    driver.set_window_size(1280, 900)
    driver.get(pages + "plain.html")
    before = driver.execute_script(STYLE_SNAPSHOT, list(HOST_SELECTORS))
    plain_sheets = driver.execute_script("return document.styleSheets.length")
    plain_head = driver.execute_script("return document.head.children.length")
    plain_body = driver.execute_script(
        "return Array.from(document.body.children).map(e => e.tagName)"
    )
    driver.get(pages + "bubble.html")
    shadow(driver, ".l").click()
    in_frame(driver)
    try:
        wait_for(driver, "#ludao-question")
    finally:
        driver.switch_to.default_content()
    after = driver.execute_script(STYLE_SNAPSHOT, list(HOST_SELECTORS))
    for (selector, old), (_, new) in zip(before, after, strict=True):
        changed = {k: (old[k], new.get(k)) for k in old if old[k] != new.get(k)}
        assert not changed, f"{selector} changed: {changed}"
    assert driver.execute_script("return document.styleSheets.length") == plain_sheets
    assert driver.execute_script("return document.adoptedStyleSheets.length") == 0
    # The bubble's <script> is the only new child of <head>; <body> gains one <ludao-widget>.
    assert driver.execute_script("return document.head.children.length") == plain_head + 1
    body = driver.execute_script("return Array.from(document.body.children).map(e => e.tagName)")
    assert body == [*plain_body, "LUDAO-WIDGET"]
    # And the host's rules do not reach into the bubble (its button is not the host's yellow).
    background = driver.execute_script(
        "var l=document.querySelector('ludao-widget').shadowRoot.querySelector('.l');"
        "return getComputedStyle(l).backgroundColor"
    )
    assert background == "rgb(11, 92, 173)"


def test_page_loads_only_the_script_until_the_panel_opens(driver, pages, app_url):
    driver.set_window_size(1280, 900)
    driver.get("about:blank")
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.clearBrowserCache", {})  # the frame's files too
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})  # a first visit
    network_log(driver)  # drop what came before
    driver.get(pages + "bubble.html")
    shadow(driver, ".l")
    time.sleep(0.5)
    before = [r for r in network_log(driver) if r["url"].startswith(app_url)]
    assert [r["url"] for r in before] == [app_url + "widget.js"]
    script_bytes = before[0]["bytes"]
    assert 0 < script_bytes < 10 * 1024
    shadow(driver, ".l").click()
    in_frame(driver)
    try:
        wait_for(driver, "#ludao-question")
        # The frame is another site, so its requests are in its own Resource Timing, not here.
        # The question box can be ready before the style sheet's entry is written: wait for
        # the panel's three files (a missing one still fails below, after the timeout).
        script = (
            "return performance.getEntries().filter(e => e.transferSize !== undefined)"
            ".map(e => [e.name, e.transferSize])"
        )
        with contextlib.suppress(TimeoutException):
            WebDriverWait(driver, 30).until(lambda d: len(d.execute_script(script)) >= 3)
        loaded = driver.execute_script(script)
    finally:
        driver.switch_to.default_content()
    opened = {url[len(app_url) :]: size for url, size in loaded}
    assert sorted(opened) == ["widget/panel.css", "widget/panel.js", "widget?lang=zh"]
    assert all(size > 0 for size in opened.values()), opened  # fetched, not from a cache
    assert [r["url"] for r in network_log(driver)] == [app_url + "widget?lang=zh"]
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": False})
    ARTIFACTS.mkdir(exist_ok=True)
    report = {
        "before_open": {r["url"][len(app_url) :]: r["bytes"] for r in before},
        "on_first_open": opened,
    }
    (ARTIFACTS / "widget-bytes.json").write_text(json.dumps(report, indent=1), encoding="utf-8")


def test_data_attributes_set_language_side_and_colour(driver, pages):
    driver.set_window_size(1280, 900)
    driver.get(pages + "english.html")
    launcher = shadow(driver, ".l")
    assert launcher.get_attribute("aria-label") == "Open chat: Ask HR"
    assert launcher.rect["x"] < 100  # bottom-left
    colour = driver.execute_script(
        "return getComputedStyle(arguments[0]).backgroundColor", launcher
    )
    assert colour == "rgb(122, 31, 92)"
    launcher.click()
    assert shadow(driver, ".x").get_attribute("aria-label") == "Close chat"
    in_frame(driver)
    try:
        assert driver.execute_script("return document.documentElement.lang") == "en"
        assert wait_for(driver, "#ludao-form button")[0].text == "Ask"
    finally:
        driver.switch_to.default_content()


def test_phone_panel_fills_the_screen(driver, pages):
    driver.set_window_size(390, 844)
    try:
        driver.get(pages + "bubble.html")
        shadow(driver, ".l").click()
        rect = shadow(driver, ".p").rect
        width, height = driver.execute_script("return [innerWidth, innerHeight]")
        assert (rect["x"], rect["y"]) == (0, 0)
        assert (rect["width"], rect["height"]) == (width, height)
        in_frame(driver)
        try:
            ask_in_panel(driver, QUESTION)
            wait_for(driver, ".msg.bot mark")
            overflow = driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1
        finally:
            driver.switch_to.default_content()
        driver.save_screenshot(str(SCREENSHOTS / "widget-phone-open.png"))
    finally:
        driver.set_window_size(1280, 900)


def test_login_and_root_path_in_the_panel(driver, tmp_path):
    """Behind a proxy on /ludao with the built-in login: the panel asks to log in, then answers.

    The host page is on another port of 127.0.0.1: a different origin but the same site, as a
    portal and Ludao under one intranet domain are, so the login cookie reaches the frame.
    """
    server, port = _serve_dir(tmp_path)
    app = ui.create_app(
        FakePipeline(), root_path="/ludao", auth=("staff", "s3cret"), feedback_path=tmp_path / "f",
        security=framable_by(f"http://127.0.0.1:{port}"),
    )  # fmt: skip
    with serve(app) as url:
        (tmp_path / "page.html").write_text(host_page(bubble_tag(url + "ludao/")), encoding="utf-8")
        try:
            driver.set_window_size(1280, 900)
            driver.get(f"http://127.0.0.1:{port}/page.html")
            shadow(driver, ".l").click()
            in_frame(driver)
            try:
                here = driver.execute_script("return location.href")
                assert here == url + "ludao/widget?lang=zh"
                wait_for(driver, "#ludao-login input[name=username]")[0].send_keys("staff")
                password = driver.find_element(By.CSS_SELECTOR, "input[name=password]")
                password.send_keys("s3cret", Keys.ENTER)
                ask_in_panel(driver, QUESTION)
                assert wait_for(driver, ".msg.bot mark")[0].text == "3.46%"
            finally:
                driver.switch_to.default_content()
        finally:
            server.shutdown()
            server.server_close()


# --- accessibility: axe-core ------------------------------------------------------------------


def _axe_source() -> str:
    candidates = [os.environ.get("LUDAO_AXE_JS", ""),
                  str(ARTIFACTS / "axe" / "node_modules" / "axe-core" / "axe.min.js")]  # fmt: skip
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_text(encoding="utf-8")
    pytest.skip("axe-core absent: npm install --prefix artifacts/axe axe-core (or LUDAO_AXE_JS)")


AXE_RUN = """
var done = arguments[arguments.length - 1];
axe.run(document, {iframes: false, resultTypes: ['violations']}).then(function (r) {
  done(r.violations.map(function (v) {
    return {id: v.id, impact: v.impact, nodes: v.nodes.length,
            targets: v.nodes.slice(0, 3).map(function (n) { return n.target.join(' '); })};
  }));
}, function (e) { done([{id: 'axe-error', impact: 'critical', nodes: 1, targets: [String(e)]}]); });
"""


def axe(drv, source: str) -> list[dict]:
    drv.set_script_timeout(60)
    drv.execute_script(source)
    return drv.execute_async_script(AXE_RUN)


def by_impact(violations: list[dict]) -> dict[str, int]:
    counts = {"critical": 0, "serious": 0, "moderate": 0, "minor": 0}
    for v in violations:
        counts[v["impact"] or "minor"] += v["nodes"]
    return counts


def test_axe_full_chat_widget_panel_and_host_page(driver, pages, app_url):
    source = _axe_source()
    driver.set_window_size(1280, 900)
    results: dict[str, list[dict]] = {}

    driver.get(app_url)
    box = wait_for(driver, "#ludao-question textarea")[0]
    box.send_keys(QUESTION, Keys.ENTER)
    wait_for(driver, "#ludao-chat .ludao-reply mark")
    results["full chat (/)"] = axe(driver, source)

    driver.get(pages + "bubble.html")
    shadow(driver, ".l").click()
    results["host page, bubble open"] = axe(driver, source)
    in_frame(driver)
    try:
        ask_in_panel(driver, QUESTION)
        wait_for(driver, ".msg.bot mark")
        results["widget panel (/widget), with an answer"] = axe(driver, source)
    finally:
        driver.switch_to.default_content()

    report = {page: {"by_impact": by_impact(v), "violations": v} for page, v in results.items()}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "axe-widget.json").write_text(
        json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8"
    )
    for page, found in results.items():
        bad = [v for v in found if v["impact"] in ("serious", "critical")]
        assert not bad, f"{page}: {bad}"


def test_bubble_on_a_page_with_a_strict_policy(driver, pages, app_url, page_folder):
    """A host page that forbids inline styles and foreign scripts except Ludao's."""
    folder, _ = page_folder
    policy = f"default-src 'none'; script-src {app_url}; frame-src {app_url}; style-src 'self'"
    meta = f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
    (folder / "strict.html").write_text(host_page(meta + bubble_tag(app_url)), encoding="utf-8")
    driver.set_window_size(1280, 900)
    driver.get(pages + "strict.html")
    launcher = shadow(driver, ".l")
    colour = driver.execute_script(
        "return getComputedStyle(arguments[0]).backgroundColor", launcher
    )
    assert colour == "rgb(11, 92, 173)"  # its styles apply (a constructed sheet, not <style>)
    launcher.click()
    in_frame(driver)
    try:
        ask_in_panel(driver, QUESTION)
        assert wait_for(driver, ".msg.bot mark")[0].text == "3.46%"
    finally:
        driver.switch_to.default_content()


def test_example_intranet_page_shows_the_bubble(driver, tmp_path):
    app = ui.create_app(FakePipeline(), feedback_path=tmp_path / "f.jsonl")
    with serve(app) as url:
        driver.set_window_size(1280, 900)
        driver.get(url + "examples/intranet.html")
        shadow(driver, ".l").click()
        in_frame(driver)
        try:
            ask_in_panel(driver, QUESTION)
            assert wait_for(driver, ".msg.bot mark")[0].text == "3.46%"
        finally:
            driver.switch_to.default_content()
        driver.save_screenshot(str(SCREENSHOTS / "widget-intranet-example.png"))
