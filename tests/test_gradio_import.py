"""gradio imported without regenerating its type stubs (qa.web.gradio_import)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_ui_import_makes_gradio_skip_its_stub_writing_and_the_chat_still_builds() -> None:
    out = run(
        "import ui, gradio as gr, gradio.component_meta as meta\n"
        "from qa.web import gradio_import\n"
        "print(meta.create_or_modify_pyi is gradio_import._skip_stub_writing)\n"
        "with gr.Blocks() as demo:\n"
        "    gr.Chatbot(); gr.Textbox()\n"
        "print(sorted({c['type'] for c in demo.get_config_file()['components']}))\n"
    )
    skipped, kinds = out.splitlines()
    assert skipped == "True"
    assert "chatbot" in kinds and "textbox" in kinds


def test_without_the_hook_gradio_keeps_its_own_function() -> None:
    """The hook is what changes it (so the test above can fail)."""
    out = run(
        "import gradio.component_meta as meta\n"
        "print(meta.create_or_modify_pyi.__module__, meta.create_or_modify_pyi.__name__)"
    )
    assert out == "gradio.component_meta create_or_modify_pyi"


def test_too_late_once_gradio_is_imported() -> None:
    out = run(
        "import gradio\n"
        "from qa.web.gradio_import import skip_stub_writing\n"
        "print(skip_stub_writing())"
    )
    assert out == "False"


@pytest.mark.parametrize("installs", [1, 2])
def test_the_hook_is_installed_once_and_leaves_after_use(installs: int) -> None:
    out = run(
        "import sys\n"
        "from qa.web.gradio_import import skip_stub_writing, _StubSkipper\n"
        f"results = [skip_stub_writing() for _ in range({installs})]\n"
        "hooks = sum(isinstance(f, _StubSkipper) for f in sys.meta_path)\n"
        "import gradio\n"
        "after = sum(isinstance(f, _StubSkipper) for f in sys.meta_path)\n"
        "print(results, hooks, after)"
    )
    expected = [True] + [False] * (installs - 1)
    assert out == f"{expected} 1 0"
