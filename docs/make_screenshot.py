"""Screenshot of the chat answering on the default corpus with the default models (for README).

Starts ``python ui.py`` on loopback, asks one question in headless Debian chromium and saves
``docs/chat.png``:

    .venv/bin/python docs/make_screenshot.py ["question"]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qa.web.servers import free_port, start_server  # noqa: E402

QUESTION = "2024年厦门全社会研发投入强度是多少？"


def main() -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    question = sys.argv[1] if len(sys.argv) > 1 else QUESTION
    port = free_port()
    proc = start_server(port, dict(os.environ))
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,1100"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(driver, 120, poll_frequency=0.2)
        box = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#ludao-question textarea"))
        box[0].send_keys(question, Keys.ENTER)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#ludao-chat .ludao-reply"))
        driver.save_screenshot(str(REPO / "docs" / "chat.png"))
    finally:
        driver.quit()
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
