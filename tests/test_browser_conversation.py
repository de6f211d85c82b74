"""A two-turn conversation in headless chromium: the second turn ("那2020年呢？") is answered
from the first, and the chat shows how it was understood ("理解为 …")."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("gradio")
pytest.importorskip("selenium.webdriver", reason="pip install selenium")

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from test_browser import ask, driver, shoot, wait_for  # noqa: F401 - driver is a fixture
from test_conversation_web import FIRST, FOLLOWUP, REBUILT, ConversationPipeline
from test_ui import serve

import ui

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def conversation_url(tmp_path_factory) -> Iterator[str]:
    feedback = tmp_path_factory.mktemp("conversation") / "f.jsonl"
    with serve(ui.create_app(ConversationPipeline(), feedback_path=feedback)) as url:
        yield url


def test_second_turn_is_answered_from_the_first(driver, conversation_url):  # noqa: F811
    driver.get(conversation_url)
    ask(driver, FIRST)
    wait_for(driver, "#ludao-chat .ludao-reply mark")
    assert not driver.find_elements(By.CSS_SELECTOR, "#ludao-chat .ludao-interpreted")
    ask(driver, FOLLOWUP)
    WebDriverWait(driver, 30, poll_frequency=0.1).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#ludao-chat .ludao-reply")) == 2
    )
    second = driver.find_elements(By.CSS_SELECTOR, "#ludao-chat .ludao-reply")[-1]
    assert second.find_element(By.CSS_SELECTOR, "mark").text == "3.08%"
    line = second.find_element(By.CSS_SELECTOR, ".ludao-interpreted")
    assert line.is_displayed() and line.text == f"理解为 Understood as：{REBUILT}"
    shoot(driver, "chat-followup.png")
