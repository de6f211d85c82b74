"""The public import surface of ``qa``: a fixed list of names, and no heavy imports."""

from __future__ import annotations

import importlib
import subprocess
import sys

import qa

PUBLIC = {
    "Answer": "qa.schema",
    "Document": "qa.schema",
    "Hit": "qa.schema",
    "Passage": "qa.schema",
    "Pipeline": "qa.pipeline",
    "Response": "qa.schema",
    "Retriever": "qa.retrieval",
    "Settings": "qa.config",
    "Span": "qa.schema",
}
"""Each public name and the module that defines it."""


def test_all_is_the_public_api() -> None:
    assert qa.__all__ == sorted(qa.__all__)
    assert qa.__all__ == sorted(PUBLIC)


def test_every_exported_name_is_the_real_object() -> None:
    for name, module in PUBLIC.items():
        assert getattr(qa, name) is getattr(importlib.import_module(module), name), name


def test_importing_qa_loads_no_model_library() -> None:
    heavy = ["torch", "transformers", "sentence_transformers", "faiss", "opencc", "gradio"]
    code = f"import sys, qa; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
