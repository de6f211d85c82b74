"""Screenshots of the chat bubble on a plain intranet page, closed and open with an answer.

Starts ``python ui.py`` (default corpus, default models) on loopback, allowed to be framed by a
portal page that this script serves from another origin, and saves, from headless Debian
chromium, ``docs/widget-{desktop,phone}-{closed,open}.png`` (desktop 1280×860, phone 390×844):

    .venv/bin/python docs/make_widget_screenshots.py ["question"]
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qa.web.servers import free_port, start_server  # noqa: E402

QUESTION = "2024年厦门全社会研发投入强度是多少？"
PORTAL = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>内网门户</title>
<style>
 body {{ margin: 0; font-family: system-ui, "PingFang SC", "Microsoft YaHei", sans-serif;
        background: #f4f6f8; color: #1f2933; }}
 header {{ background: #12355b; color: #fff; padding: 14px 20px; font-size: 1.2rem; }}
 main {{ max-width: 860px; margin: 0 auto; padding: 12px 16px; }}
 article {{ background: #fff; border-radius: 8px; padding: 12px 16px; margin: 12px 0; }}
 h2 {{ font-size: 1.05rem; margin: 0 0 6px; }} p {{ margin: 0; line-height: 1.6; }}
</style>
<script src="{server}widget.js" data-title="鹭岛问答 · 政策咨询" data-lang="zh" defer></script>
</head><body><header>示例内网门户 · Example intranet portal</header><main>
<article><h2>通知：办公系统周五维护</h2>
<p>周五 18:00–20:00 办公系统维护，期间暂停审批。</p></article>
<article><h2>科技创新政策汇编</h2><p>全市科技创新政策已汇编成册，有问题可点右下角的问答按钮，
答案均摘自文件原文并附出处。</p></article>
<article><h2>食堂本周菜单</h2><p>周一至周五午餐供应时间 11:30–13:00。</p></article>
</main></body></html>"""


def main() -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    question = sys.argv[1] if len(sys.argv) > 1 else QUESTION
    folder = Path(tempfile.mkdtemp(prefix="ludao-portal-"))
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    portal = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=portal.serve_forever, daemon=True).start()
    portal_origin = f"http://localhost:{portal.server_port}"
    port = free_port()
    server = f"http://127.0.0.1:{port}/"
    (folder / "index.html").write_text(PORTAL.format(server=server), encoding="utf-8")
    proc = start_server(port, {**os.environ, "LUDAO_FRAME_ANCESTORS": portal_origin})
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--lang=zh-CN"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    wait = WebDriverWait(driver, 120, poll_frequency=0.2)

    def launcher():
        return driver.execute_script(
            "var h=document.querySelector('ludao-widget');"
            "return h && h.shadowRoot && h.shadowRoot.querySelector('.l')"
        )

    try:
        for name, size in (("desktop", (1280, 860)), ("phone", (390, 844))):
            driver.set_window_size(*size)
            driver.get(f"{portal_origin}/index.html")
            wait.until(lambda _: launcher())
            driver.save_screenshot(str(REPO / "docs" / f"widget-{name}-closed.png"))
            launcher().click()
            frame = driver.execute_script(
                "return document.querySelector('ludao-widget').shadowRoot.querySelector('iframe')"
            )
            driver.switch_to.frame(frame)
            box = wait.until(lambda d: d.find_elements(By.ID, "ludao-question"))[0]
            box.send_keys(question, Keys.ENTER)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.bot .ludao-reply"))
            driver.switch_to.default_content()
            driver.save_screenshot(str(REPO / "docs" / f"widget-{name}-open.png"))
    finally:
        driver.quit()
        proc.terminate()
        proc.wait(timeout=30)
        portal.shutdown()


if __name__ == "__main__":
    main()
