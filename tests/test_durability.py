"""An index update killed with SIGKILL never costs the previous index, nor breaks the next run.

Each test starts this file as a child process (``python tests/test_durability.py child ...``)
that updates an index with the hashing fake encoder, made slow or paused at a chosen step so the
parent can kill it exactly there: while embedding, while writing the new files, or between the
two renames that swap the directories. A last test kills at random moments in a loop.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
QUESTION = "鹭岛图书馆每天几点开放"
FILES = 30
PARAGRAPHS = 4


def write_corpus(folder: Path, hour: str, *, extra: bool, seed: int = 7) -> Path:
    """``FILES`` files of random Chinese sentences plus one that says when the library opens."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(FILES):
        paras = []
        for _ in range(PARAGRAPHS):
            sentences = [
                "".join(chr(rng.randint(0x4E00, 0x62FF)) for _ in range(rng.randint(20, 40))) + "。"
                for _ in range(2)
            ]
            paras.append("".join(sentences))
        (folder / f"doc{i:02d}.txt").write_text("\n\n".join(paras), encoding="utf-8")
    (folder / "library.txt").write_text(
        f"图书馆\n\n鹭岛图书馆每天早上{hour}开放，晚上六点关闭。", encoding="utf-8"
    )
    if extra:
        (folder / "extra.txt").write_text("新增文件\n\n食堂每天中午十一点半供应午餐。")
    return folder


@pytest.fixture
def corpora(tmp_path: Path) -> tuple[Path, Path]:
    """Two versions of one corpus: B changes the library's hours and adds a file."""
    return (
        write_corpus(tmp_path / "a", "九点", extra=False),
        write_corpus(tmp_path / "b", "十点", extra=True),
    )


def answer_hour(retriever) -> str:
    text = retriever.search(QUESTION, top_k=1)[0].passage.text
    assert "鹭岛图书馆" in text
    return "九点" if "九点" in text else "十点" if "十点" in text else text


def start_child(phase: str, folder: Path, index_dir: Path) -> subprocess.Popen[str]:
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    return subprocess.Popen(
        [sys.executable, __file__, "child", phase, str(folder), str(index_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def kill_at(
    child: subprocess.Popen[str], marker: str, *, delay: float = 0.0, timeout: float = 120
) -> None:
    """Read the child's output until ``marker``, wait ``delay`` s, then SIGKILL it.

    Fails if the child ends before the kill (unless ``delay`` allowed it to finish).
    """
    watchdog = threading.Timer(timeout, child.kill)
    watchdog.start()
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.strip() == marker:
                time.sleep(delay)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
                break
        child.wait()
    finally:
        watchdog.cancel()
    if delay and child.returncode == 0:
        return  # it finished first: the index must then be the new one, checked by the caller
    assert child.returncode == -signal.SIGKILL, (
        f"child ended with {child.returncode} before {marker!r}: {child.stderr.read()}"  # type: ignore[union-attr]
    )


def index_in_process(folder: Path, index_dir: Path):
    from conftest import FakeEncoder

    from qa.corpus import read_corpus
    from qa.index import update_index

    class Counting(FakeEncoder):
        texts: list[str]

        def encode_passages(self, texts, *, show_progress=None):  # type: ignore[no-untyped-def]
            self.texts = [*getattr(self, "texts", []), *texts]
            return super().encode_passages(texts, show_progress=show_progress)

    encoder = Counting()
    update = update_index(read_corpus([folder], max_chars=300, min_chars=80), encoder, index_dir)
    return update, getattr(encoder, "texts", [])


def strays(index_dir: Path) -> list[str]:
    return sorted(
        p.name
        for p in index_dir.parent.iterdir()
        if p.name.startswith(f".{index_dir.name}.") and not p.name.endswith(".lock")
    )


@pytest.mark.parametrize("phase", ["embedding", "writing", "aside"])
def test_killed_update_keeps_the_previous_index(
    phase: str, corpora: tuple[Path, Path], tmp_path: Path
) -> None:
    from conftest import FakeEncoder

    from qa.index import load_retriever

    a, b = corpora
    index_dir = tmp_path / "indexes" / "kb"
    first, _ = index_in_process(a, index_dir)
    assert first.mode == "built" and len(first.retriever) > FILES * 2

    kill_at(start_child(phase, b, index_dir), f"PHASE {phase}")
    if phase == "aside":  # killed between the renames: nothing at index_dir until recovery
        assert not index_dir.exists()
    else:  # the previous index is untouched and loads without any recovery
        assert answer_hour(load_retriever(index_dir, FakeEncoder())) == "九点"
        assert strays(index_dir) or phase == "embedding"

    again, embedded = index_in_process(a, index_dir)  # recovers, and finds nothing to do
    assert again.mode == "unchanged" and embedded == []
    assert answer_hour(again.retriever) == "九点"
    assert strays(index_dir) == []

    updated, embedded = index_in_process(b, index_dir)
    assert updated.mode == "updated" and 0 < len(embedded) <= 3
    assert answer_hour(load_retriever(index_dir, FakeEncoder())) == "十点"


def test_kills_at_random_moments_never_leave_a_wrong_or_broken_index(
    corpora: tuple[Path, Path], tmp_path: Path
) -> None:
    from conftest import FakeEncoder

    from qa.corpus import read_corpus
    from qa.index import load_retriever
    from qa.index.lock import recover_interrupted_save, writer_lock
    from qa.index.store import corpus_hash

    a, b = corpora
    hours = {
        corpus_hash(read_corpus([folder], max_chars=300, min_chars=80).passages): hour
        for folder, hour in ((a, "九点"), (b, "十点"))
    }
    index_dir = tmp_path / "indexes" / "kb"
    index_in_process(a, index_dir)
    rng = random.Random(5)
    outcomes = []
    current = "九点"
    for run in range(5):
        child = start_child("random", b if current == "九点" else a, index_dir)
        delay = rng.uniform(0.9 * run, 0.9 * (run + 1))  # spread over the ~4 s a run takes
        kill_at(child, "PHASE start", delay=delay)
        with writer_lock(index_dir):  # what every writer does first after a crash
            recover_interrupted_save(index_dir)
        loaded = load_retriever(index_dir, FakeEncoder())
        loaded_hash = corpus_hash(loaded.passages)
        assert loaded_hash in hours, "the index holds neither version of the corpus"
        assert answer_hour(loaded) == hours[loaded_hash]
        assert strays(index_dir) == []
        current = hours[loaded_hash]
        outcomes.append((round(delay, 2), child.returncode, current))
    print("delay s, child exit, index afterwards:", outcomes)
    assert any(code == -signal.SIGKILL for _, code, _ in outcomes)
    final, _ = index_in_process(a, index_dir)  # and the next ordinary run just works
    assert answer_hour(final.retriever) == "九点"


# -- the child process ------------------------------------------------------------------------


def child_main(phase: str, folder: str, index_dir: str) -> None:
    """Update the index at ``index_dir`` from ``folder``, pausing where ``phase`` says."""
    from conftest import FakeEncoder

    import qa.index.store
    from embeddings.index import FaissIndex
    from qa.corpus import read_corpus
    from qa.index import update_index

    def mark(name: str, pause: float) -> None:
        print(f"PHASE {name}", flush=True)
        time.sleep(pause)

    class SlowEncoder(FakeEncoder):
        def encode_passages(self, texts, *, show_progress=None):  # type: ignore[no-untyped-def]
            if phase == "embedding":
                mark("embedding", 600)
            time.sleep(0.002 * len(texts))
            return super().encode_passages(texts, show_progress=show_progress)

    original_save = FaissIndex.save
    original_replace = os.replace

    def slow_save(self, path):  # type: ignore[no-untyped-def]
        # passages.jsonl and vectors.npy are written by now; dense.faiss and the manifest not
        if phase == "writing":
            mark("writing", 600)
        time.sleep(0.2 if phase == "random" else 0)
        return original_save(self, path)

    def slow_replace(src, dst):  # type: ignore[no-untyped-def]
        original_replace(src, dst)
        if phase == "aside" and Path(dst).parent.name.startswith(f".{Path(index_dir).name}.old-"):
            mark("aside", 600)
        time.sleep(0.2 if phase == "random" else 0)

    FaissIndex.save = slow_save  # type: ignore[method-assign]
    qa.index.store.os.replace = slow_replace  # type: ignore[assignment]
    corpus = read_corpus([folder], max_chars=300, min_chars=80)
    if phase == "random":
        mark("start", 0)
    update_index(corpus, SlowEncoder(), Path(index_dir))
    print("PHASE done", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "child":
        child_main(*sys.argv[2:])
