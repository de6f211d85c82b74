"""Shared test fixtures: a deterministic fake encoder, a few inline passages, an isolated home."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from qa.schema import Passage

REAL_LUDAO_HOME = Path(os.environ.get("LUDAO_HOME") or Path.home() / ".cache" / "ludao")
"""The home in force before tests isolate it: slow tests reuse its converted models."""


class FakeEncoder:
    """Hashed bag of characters and character bigrams → unit vector.

    Deterministic across processes (md5, not ``hash``) and similar for texts that share
    characters, which is enough to test ranking without a model.
    """

    def __init__(self, dimension: int = 64, model_id: str = "fake-encoder") -> None:
        self.dimension = dimension
        self.model_id = model_id
        self.query_calls = 0
        self.passage_calls = 0

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, dtype=np.float32)
        text = text.lower()
        grams = list(text) + [text[i : i + 2] for i in range(len(text) - 1)]
        for gram in grams:
            if gram.strip():
                bucket = int.from_bytes(hashlib.md5(gram.encode()).digest()[:4], "little")
                vector[bucket % self.dimension] += 1.0
        norm = float(np.linalg.norm(vector))
        if norm == 0:
            vector[0] = 1.0
            return vector
        return vector / norm

    def encode_passages(self, texts: list[str], *, show_progress: bool | None = None) -> np.ndarray:
        self.passage_calls += 1
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])

    def encode_query(self, text: str) -> np.ndarray:
        self.query_calls += 1
        return self._vector(text)


def make_passage(doc_id: str, text: str, start: int = 0, title: str | None = None) -> Passage:
    return Passage(
        id=Passage.make_id(doc_id, start, text),
        doc_id=doc_id,
        title=title if title is not None else doc_id,
        text=text,
        start=start,
        end=start + len(text),
        orig_start=start,
        orig_end=start + len(text),
    )


@pytest.fixture(autouse=True)
def ludao_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own ``LUDAO_HOME``: no test reads or writes the user's cache."""
    home = tmp_path / "ludao-home"
    monkeypatch.setenv("LUDAO_HOME", str(home))
    return home


@pytest.fixture
def model_cache_dir() -> Path:
    """Where converted models live outside the test sandbox, so slow tests convert only once."""
    return REAL_LUDAO_HOME / "models"


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def passages() -> list[Passage]:
    return [
        make_passage(
            "report",
            "公司2023年实现营业收入448.53亿元，同比增长3.46%，净利润保持稳定。",
            title="年度报告",
        ),
        make_passage(
            "it",
            "我国的数字化转型工作由信息中心负责推进各部门应当按季度报送进展情况",
            title="信息化管理办法",
        ),
        make_passage(
            "hr",
            "员工每年享有带薪年休假，工作满十年的员工可以休假十天。",
            title="员工手册",
        ),
        make_passage(
            "handbook",
            "The library opens at nine in the morning and closes at six in the evening.",
            title="Handbook",
        ),
        make_passage(
            "handbook",
            "Visitors must register at the front desk and wear a badge at all times.",
            start=200,
            title="Handbook",
        ),
    ]
