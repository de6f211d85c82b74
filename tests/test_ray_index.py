"""``ludao index --ray``: passages embedded on a 2-node Ray cluster started by the test (#16).

The cluster (head + worker, ``qa.cluster.local_cluster``: own temp dir, stopped by process
group) embeds the default corpus plus 300 CMRC 2018 trial paragraphs (a training file) through
the real CLI; the index must hold the same passages with the same vectors (cosine ≥ 0.999) as a
local build, be used as is by the chat's pipeline, and give the same answers on seed_dev. A
second run after adding a file sends only that file's passages to the cluster.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from qa.config import REPO_ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None,
        reason="Ray is not installed: pip install 'ludao[ray]' (CI installs it)",
    ),
]

SHARED = REPO_ROOT.parent / "shared"
CMRC_TRIAL = SHARED / "data" / "qa" / "cmrc2018_trial.json"
SEED_DEV = SHARED / "eval" / "seed_dev.jsonl"
PARAGRAPHS = 300


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from conftest import REAL_LUDAO_HOME

    from embeddings.models import resolve_model
    from qa.cluster.local_cluster import LocalRayCluster
    from qa.web.servers import server_env

    resolve_model("multilingual-e5-small", cache_dir=REAL_LUDAO_HOME / "models")
    # The workers' own LUDAO_HOME: only its converted models are read. One CPU per node, so
    # the two encoder actors land on different nodes.
    env = server_env(tmp_path_factory.mktemp("ray-workers"), models=REAL_LUDAO_HOME / "models")
    with LocalRayCluster(nodes=2, cpus_per_node=1, env=env) as running:
        saved = {k: os.environ.get(k) for k in running.client_env()}
        os.environ.update(running.client_env())
        try:
            yield running
        finally:
            import ray

            ray.shutdown()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def write_corpus(folder: Path) -> Path:
    """The default corpus plus CMRC trial paragraphs, ten per file."""
    from qa.config import Settings

    folder.mkdir()
    for source in Settings().corpus:
        for path in Path(source).glob("*.txt"):
            (folder / path.name).write_bytes(path.read_bytes())
    data = json.loads(CMRC_TRIAL.read_text(encoding="utf-8"))["data"]
    contexts = [p["context"] for article in data for p in article["paragraphs"]][:PARAGRAPHS]
    for i in range(0, len(contexts), 10):
        text = "\n\n".join(contexts[i : i + 10])
        (folder / f"cmrc_trial_{i // 10:03d}.txt").write_text(text, encoding="utf-8")
    return folder


def index_with(home: Path, corpus: Path, *extra: str) -> dict:
    from qa.cli import cli

    result = CliRunner().invoke(
        cli, ["-q", "index", str(corpus), *extra], env={"LUDAO_HOME": str(home)}
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def saved_index(report: dict) -> tuple[list[str], np.ndarray]:
    folder = Path(report["index_dir"])
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    rows = [json.loads(line)["text"] for line in (folder / "passages.jsonl").open(encoding="utf-8")]
    assert len(rows) == manifest["passage_count"]
    return rows, np.load(folder / "vectors.npy")


def answers(home: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from qa.config import Settings
    from qa.pipeline import Pipeline

    monkeypatch.setenv("LUDAO_HOME", str(home))
    pipeline = Pipeline.from_settings(Settings.load(corpus=(str(corpus),)))
    questions = [json.loads(line)["question"] for line in SEED_DEV.open(encoding="utf-8")]
    replies = [pipeline.ask(q).to_dict() for q in questions]
    return [r["answers"][0]["text"] if r["answers"] else "" for r in replies]


@pytest.mark.skipif(not CMRC_TRIAL.is_file(), reason="../shared/data/qa is not here")
def test_ray_build_equals_local_build(
    cluster: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qa.web.servers import server_env

    corpus = write_corpus(tmp_path / "corpus")
    local_home = Path(server_env(tmp_path / "local")["LUDAO_HOME"])
    ray_home = Path(server_env(tmp_path / "ray")["LUDAO_HOME"])

    local = index_with(local_home, corpus)
    on_ray = index_with(ray_home, corpus, "--ray", cluster.address, "--ray-workers", "2")
    assert on_ray["embedded"] == local["embedded"] == local["passages"] > PARAGRAPHS
    assert on_ray["ray"]["workers"] == 2
    assert on_ray["ray"]["nodes"] == 2  # both nodes of the cluster embedded passages

    local_texts, local_vectors = saved_index(local)
    ray_texts, ray_vectors = saved_index(on_ray)
    assert ray_texts == local_texts
    cosine = np.sum(local_vectors * ray_vectors, axis=1)
    assert cosine.min() >= 0.999, f"lowest cosine {cosine.min():.5f}"

    # A local run finds the Ray-built index current: nothing to embed.
    assert index_with(ray_home, corpus)["embedded"] == 0
    assert answers(ray_home, corpus, monkeypatch) == answers(local_home, corpus, monkeypatch)

    # Incremental: a new file's passages are the only ones sent to the cluster.
    (corpus / "new.txt").write_text(
        "鹭岛图书馆新馆于二零二六年十月开放，馆藏图书三百万册，设有闽南文化专题阅览室。",
        encoding="utf-8",
    )
    again = index_with(ray_home, corpus, "--ray", cluster.address)
    assert again["embedded"] == again["passages"] - local["passages"] >= 1
    assert again["reused"] == local["passages"]
