"""The public import surface of ``qa``: a fixed list of names, and no heavy imports."""

from __future__ import annotations

import subprocess
import sys

import qa

PUBLIC = [
    "Answer",
    "Document",
    "Hit",
    "Passage",
    "Pipeline",
    "Response",
    "Retriever",
    "Settings",
    "Span",
]


def test_all_is_the_public_api() -> None:
    assert qa.__all__ == sorted(qa.__all__)
    assert qa.__all__ == PUBLIC


def test_every_exported_name_is_the_real_object() -> None:
    from qa.config import Settings
    from qa.pipeline import Pipeline
    from qa.retrieval import Retriever
    from qa.schema import Answer, Document, Hit, Passage, Response, Span

    real = [Answer, Document, Hit, Passage, Pipeline, Response, Retriever, Settings, Span]
    assert [getattr(qa, name) for name in PUBLIC] == real


def test_importing_qa_loads_no_model_library() -> None:
    heavy = ["torch", "transformers", "sentence_transformers", "faiss", "opencc", "gradio"]
    code = f"import sys, qa; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
