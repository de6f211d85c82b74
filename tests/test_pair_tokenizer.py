"""The reader's windows from the Rust tokenizer alone are transformers' windows, id for id."""

from __future__ import annotations

import random

import pytest
from conftest import make_passage, save_sentence_folder, save_tiny_base

from qa.readers import TransformerReader
from qa.readers.compact import WORD_EMBEDDINGS, ReaderConfig, export_compact, load_reader_model
from qa.readers.pair_tokenizer import PairTokenizer
from qa.readers.windows import make_windows

PIECES = [
    "2024年，厦门全社会研发投入强度达3.46%。",
    "《厦门市科技创新条例》规定了“十四五”期间的任务。",
    "Project A123 was approved in March, with   three  spaces.",
    "ＡＢＣ全角字母与半角abc混排；",
    "员工每年享有带薪年休假，工作满十年的员工可以休假十天。",
    "\n\t 换行与制表符 \n",
]


@pytest.fixture(params=["tiny", pytest.param("e5", marks=pytest.mark.slow)])
def reference(request: pytest.FixtureRequest):
    """transformers' fast tokenizer: the tiny one always, e5's in slow runs."""
    return request.getfixturevalue("tiny_tokenizer" if request.param == "tiny" else "e5_tokenizer")


def alone(reference) -> PairTokenizer:
    from tokenizers import Tokenizer

    return PairTokenizer(
        Tokenizer.from_str(reference.backend_tokenizer.to_str()), reference.pad_token_id
    )


def random_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(PIECES) for _ in range(n))


@pytest.mark.parametrize(("max_length", "stride"), [(40, 8), (64, 16), (256, 96)])
def test_pair_windows_match_transformers(reference, max_length: int, stride: int) -> None:
    rng = random.Random(max_length)
    pair = alone(reference)
    for _ in range(5):
        questions = [random_text(rng, rng.randint(0, 2)) + "是多少？" for _ in range(3)]
        contexts = [random_text(rng, rng.randint(0, 14)) for _ in range(3)]
        # as in the reader, the question leaves the context more room than the stride
        room = {"max_length": max_length, "stride": stride, "max_question_tokens": stride}
        expected = make_windows(reference, questions, contexts, **room)
        got = make_windows(pair, questions, contexts, **room)
        assert got == expected
        assert len(got) >= 3


def test_a_long_question_is_cut_where_transformers_cuts_it(reference) -> None:
    question = "请问" + "".join(PIECES) * 3 + "？"
    contexts = ["厦门全社会研发投入强度达3.46%。" * 8]
    pair = alone(reference)
    for limit in (5, 17, 64):
        expected = make_windows(reference, [question], contexts, max_question_tokens=limit)
        got = make_windows(pair, [question], contexts, max_question_tokens=limit)
        assert got == expected
        # the question part (before the context's first token) really is capped
        first_context = next(t for t, (s, _) in enumerate(got.offsets[0]) if s >= 0)
        assert first_context <= limit + 4


def test_a_config_without_a_known_pad_token_is_refused(tmp_path, tiny_tokenizer) -> None:
    from tokenizers import Tokenizer

    (tmp_path / "tokenizer_config.json").write_text('{"pad_token": "<nowhere>"}')
    rust = Tokenizer.from_str(tiny_tokenizer.backend_tokenizer.to_str())
    with pytest.raises(ValueError, match="pad token"):
        PairTokenizer.from_folder(tmp_path, rust)
    (tmp_path / "tokenizer_config.json").write_text('{"pad_token": {"content": "<pad>"}}')
    assert PairTokenizer.from_folder(tmp_path, rust).pad_token_id == tiny_tokenizer.pad_token_id


@pytest.fixture(scope="module")
def sentence_base_reader(tmp_path_factory, tiny_tokenizer):
    """(compact reader over a sentence-transformers base folder, the same over the plain base)."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    root = tmp_path_factory.mktemp("pair-tokenizer")
    plain = save_tiny_base(root / "base", tiny_tokenizer, seed=4)
    sentence = save_sentence_folder(root / "sentence-base", plain)
    model = AutoModelForQuestionAnswering.from_pretrained(plain)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name != WORD_EMBEDDINGS:
                param.add_(0.05 * torch.randn(param.shape, generator=generator))
    model.save_pretrained(root / "checkpoint")
    config = {"max_length": 48, "stride": 12, "max_answer_tokens": 10}
    over_sentence = export_compact(
        root / "checkpoint", root / "on-sentence", ReaderConfig(base_model=str(sentence), **config)
    )
    over_plain = export_compact(
        root / "checkpoint", root / "on-plain", ReaderConfig(base_model=str(plain), **config)
    )
    return over_sentence, over_plain


def test_a_compact_reader_over_a_sentence_folder_reads_with_the_rust_tokenizer(
    sentence_base_reader,
) -> None:
    over_sentence, over_plain = sentence_base_reader
    _, tokenizer, _ = load_reader_model(str(over_sentence))
    assert isinstance(tokenizer, PairTokenizer)
    _, fallback, _ = load_reader_model(str(over_plain))  # no modules.json: AutoTokenizer
    assert hasattr(fallback, "backend_tokenizer")
    passages = [
        make_passage("a", "公司2023年实现营业收入448.53亿元，同比增长3.46%。" * 3),
        make_passage("b", "员工每年享有带薪年休假，工作满十年的员工可以休假十天。"),
    ]
    for engine in ("lean", "torch"):
        reader = TransformerReader(str(over_sentence), engine=engine)
        fast = reader.read("收入是多少？", passages)
        assert (reader._lean is not None) == (engine == "lean")
        slow = TransformerReader(str(over_plain), engine=engine).read("收入是多少？", passages)
        assert [a.text for a in fast.answers] == [a.text for a in slow.answers]
        assert [a.score for a in fast.answers] == pytest.approx(
            [a.score for a in slow.answers], abs=1e-5
        )


def test_the_reader_and_the_embedding_model_share_one_tokenizer(sentence_base_reader) -> None:
    """One parse of the base's tokenizer.json per process, whoever loads it first."""
    from embeddings import bert_folder
    from qa.readers.compact import ReaderConfig

    over_sentence, _ = sentence_base_reader
    _, reader_tokenizer, _ = load_reader_model(str(over_sentence))
    base = bert_folder.read_folder(ReaderConfig.read(over_sentence).base_model)
    encoder_tokenizer, _ = bert_folder.load_tokenizer(base)
    assert reader_tokenizer.shared is encoder_tokenizer


def test_shared_use_with_two_truncations_gives_each_its_own_ids(tiny_tokenizer, tmp_path) -> None:
    """Threads cutting pair windows and embedding texts at once on one shared tokenizer get
    exactly the ids each gets alone: its truncation state never leaks between them."""
    from concurrent.futures import ThreadPoolExecutor

    from embeddings.shared_tokenizer import shared_tokenizer

    tiny_tokenizer.backend_tokenizer.save(str(tmp_path / "tokenizer.json"))
    shared = shared_tokenizer(tmp_path / "tokenizer.json")
    assert shared_tokenizer(tmp_path / "tokenizer.json") is shared
    pair = PairTokenizer(shared, tiny_tokenizer.pad_token_id)
    rng = random.Random(3)
    texts = [random_text(rng, 6) for _ in range(40)]

    def windows(text: str) -> list[list[int]]:
        got, _ = pair.pair_windows(["是多少？"], [text], max_length=24, stride=6)
        return [w.ids for w in got]

    def embedded(text: str) -> list[int]:
        with shared.configured(9) as rust:
            return rust.encode(text).ids

    alone_windows = [windows(t) for t in texts]
    alone_embedded = [embedded(t) for t in texts]
    assert all(len(ids) == 9 for ids in alone_embedded)
    assert any(len(w) > 1 for w in alone_windows)
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            both_windows = pool.map(windows, texts)
            both_embedded = pool.map(embedded, texts)
            assert list(both_windows) == alone_windows
            assert list(both_embedded) == alone_embedded


def test_a_tokenizer_file_changed_on_disk_loads_anew(tiny_tokenizer, tmp_path) -> None:
    import os

    from embeddings.shared_tokenizer import shared_tokenizer

    path = tmp_path / "tokenizer.json"
    tiny_tokenizer.backend_tokenizer.save(str(path))
    first = shared_tokenizer(path)
    tiny_tokenizer.backend_tokenizer.save(str(path), pretty=False)  # other size
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert shared_tokenizer(path) is not first


_LOAD_BOTH = """
import sys, threading
from embeddings.bert_folder import load_bert, read_folder
from qa.readers.compact import load_reader_model

failures = []

def reader():
    try:
        load_reader_model(sys.argv[1])
    except BaseException as exc:
        failures.append(repr(exc))

thread = threading.Thread(target=reader)
thread.start()
try:
    load_bert(read_folder(sys.argv[2]), device="cpu")
except BaseException as exc:
    failures.append(repr(exc))
thread.join()
assert not failures, failures
"""


def test_fresh_processes_load_the_reader_beside_the_embedding_model(sentence_base_reader):
    """``serve`` loads the reader in a thread while the embedding model loads: transformers'
    lazy module, imported from two threads at once in a fresh process, could fail with
    "cannot import name" (seen in CI). Several fresh processes, each racing the two loads."""
    import subprocess
    import sys
    from pathlib import Path

    from qa.readers.compact import ReaderConfig

    over_sentence, _ = sentence_base_reader
    base = ReaderConfig.read(over_sentence).base_model
    root = Path(__file__).resolve().parents[1]
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", _LOAD_BOTH, str(over_sentence), base],
            cwd=root,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    errors = [run.communicate(timeout=300)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0, 0], "\n".join(errors)[-3000:]
