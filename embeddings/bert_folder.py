"""A sentence-transformers folder of a mean-pooled BERT, loaded with transformers alone.

Importing sentence-transformers costs a server's cold start ~3–4 s on two cores (scikit-learn,
its own training and evaluation modules) although the lean path (:mod:`embeddings.lean`) uses
none of it: it needs the BERT weights, the fast tokenizer, the truncation length and the
prompts. For a folder whose modules are exactly Transformer → mean Pooling (→ Normalize), those
four are read here from the folder's own files (``modules.json``, ``sentence_bert_config.json``,
``1_Pooling/config.json``, ``config_sentence_transformers.json``), as sentence-transformers
itself reads them. Any other layout, or a hub id, is left to sentence-transformers;
:func:`read_folder` says why it declines.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .construction import MODEL_CONSTRUCTION

logger = logging.getLogger(__name__)

_MODULE_TYPES = ("Transformer", "Pooling", "Normalize")
_PLAIN_TRANSFORMER_CONFIG = {
    # What sentence-transformers ≥ 6 writes for a text encoder's token embeddings; older
    # versions write none of it. Any other value is an option only it knows how to apply.
    "transformer_task": "feature-extraction",
    "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
    "module_output_name": "token_embeddings",
}


class NotPlainFolder(ValueError):
    """The folder is not a plain mean-pooled model: sentence-transformers must load it."""


@dataclass(frozen=True)
class BertFolder:
    """What the lean path needs to know about a sentence-transformers folder.

    ``transformer_dir`` holds the transformers model and tokenizer (the folder itself for the
    usual layout); ``max_seq_length`` is ``None`` where the folder leaves it to the model.
    """

    transformer_dir: Path
    max_seq_length: int | None
    prompts: dict[str, str] = field(default_factory=dict)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: not JSON, or not UTF-8
        raise NotPlainFolder(f"{path.name} is unreadable ({exc})") from exc


def read_folder(path: str | Path) -> BertFolder:
    """The folder at ``path`` described for the lean path; :class:`NotPlainFolder` says why not."""
    folder = Path(path)
    if not (folder / "modules.json").is_file():
        raise NotPlainFolder(f"{folder} is not a local sentence-transformers folder")
    modules = _json(folder / "modules.json")
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != list(_MODULE_TYPES[:2]) or any(k != "Normalize" for k in kinds[2:]):
        raise NotPlainFolder(f"modules {kinds}, not Transformer → Pooling (→ Normalize)")
    transformer_dir = folder / modules[0].get("path", "")
    pooling = _json(folder / modules[1].get("path", "") / "config.json")
    mode = pooling.get("pooling_mode")
    flags = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode_") and v is True)
    if mode not in (None, "mean") or flags not in ([], ["pooling_mode_mean_tokens"]):
        raise NotPlainFolder(f"pooling {mode or flags}, not mean")
    if not pooling.get("include_prompt", True):
        raise NotPlainFolder("pooling leaves the prompt out")
    config_file = transformer_dir / "sentence_bert_config.json"
    config = _json(config_file) if config_file.is_file() else {}
    options = sorted(
        key
        for key, value in config.items()
        if key not in ("max_seq_length", "do_lower_case")
        and _PLAIN_TRANSFORMER_CONFIG.get(key, object()) != value
    )
    if options:  # model_args, tokenizer_args, backend ...: only sentence-transformers applies them
        raise NotPlainFolder(f"{config_file.name} sets {options}")
    if config.get("do_lower_case"):
        raise NotPlainFolder("the tokenizer lower-cases")
    settings_file = folder / "config_sentence_transformers.json"
    settings = _json(settings_file) if settings_file.is_file() else {}
    prompts = settings.get("prompts") or {}
    if not isinstance(prompts, dict) or settings.get("default_prompt_name"):
        raise NotPlainFolder("the folder's prompts are not a plain name → text table")
    return BertFolder(
        transformer_dir=transformer_dir,
        max_seq_length=config.get("max_seq_length"),
        prompts={str(k): str(v) for k, v in prompts.items()},
    )


_GENERIC_TOKENIZERS = ("TokenizersBackend", "PreTrainedTokenizerFast")
"""transformers classes that run ``tokenizer.json`` as it is; a model's own class (e.g.
``XLMRobertaTokenizer``) may rebuild the backend from its vocabulary instead."""
_TOKENIZER_OPTIONS = (
    # Keys with which transformers changes the backend it loaded: a post-processor of its own,
    # a prefix space, special tokens split as text, or another file than tokenizer.json.
    "add_bos_token",
    "add_eos_token",
    "add_prefix_space",
    "post_processor",
    "split_special_tokens",
    "tokenizer_file",
    "vocab_file",
    "merges_file",
)
_SPECIAL_TOKENS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token")
_SPECIAL_TOKEN_LISTS = ("additional_special_tokens", "extra_special_tokens")


def load_tokenizer(folder: BertFolder) -> tuple[Any, int | None]:
    """``(SharedTokenizer, model_max_length)``: the folder's ``tokenizer.json`` loaded alone
    (once per process: :mod:`embeddings.shared_tokenizer`), where transformers would run
    exactly that file; :class:`NotPlainFolder` otherwise.

    ``AutoTokenizer`` parses the 17 MB file of e5 twice (the Rust tokenizer and a Python JSON
    pass, ~2 s on two cores) and the lean path then needed a private copy (~1.3 s more): the
    Rust tokenizer alone takes ~0.6 s, and the reader on the same base shares it. It gives the
    same ids only where transformers adds nothing to the file: a generic tokenizer class, none
    of the options that change the backend, a post-processor in the file, and every special
    token that ``tokenizer_config.json`` names already among the file's added tokens
    (transformers would add a missing one, which changes how its text is split).
    """
    from .shared_tokenizer import shared_tokenizer

    directory = folder.transformer_dir
    if not (directory / "tokenizer.json").is_file():
        raise NotPlainFolder("no tokenizer.json")
    config = _json(directory / "tokenizer_config.json")
    kind = config.get("tokenizer_class")
    if kind not in _GENERIC_TOKENIZERS:
        raise NotPlainFolder(f"tokenizer class {kind!r} is not a generic one")
    options = [key for key in _TOKENIZER_OPTIONS if key in config]
    if options:
        raise NotPlainFolder(f"tokenizer_config.json sets {options}")
    try:
        tokenizer = shared_tokenizer(directory / "tokenizer.json")
    except Exception as exc:  # tokenizers raises its own Exception for a malformed file
        raise NotPlainFolder(f"tokenizer.json is unreadable ({exc})") from exc
    if tokenizer.post_processor is None:
        raise NotPlainFolder("tokenizer.json has no post-processor (transformers adds one)")
    named = [_token_text(config.get(key)) for key in (*_SPECIAL_TOKENS, "mask_token")]
    for key in _SPECIAL_TOKEN_LISTS:
        named += [_token_text(token) for token in config.get(key) or []]
    named += [_token_text(token) for token in (config.get("added_tokens_decoder") or {}).values()]
    known = tokenizer.added_tokens()
    missing = sorted({token for token in named if token and token not in known})
    if missing:
        raise NotPlainFolder(f"special tokens {missing} are not in tokenizer.json")
    limit = config.get("model_max_length")
    return tokenizer, int(limit) if isinstance(limit, int | float) else None


def _token_text(token: Any) -> str | None:
    """A special token of ``tokenizer_config.json``: a string or a serialised ``AddedToken``."""
    if isinstance(token, dict):
        return token.get("content")
    return token if isinstance(token, str) else None


_PLAIN_MODEL_KWARGS = ({}, {"add_pooling_layer": False})
"""``model_kwargs`` the plain modules honour: they never build a pooler, which mean pooling
leaves unused anyway."""


def load_bert(
    folder: BertFolder, *, device: str, model_kwargs: dict | None = None, plain: bool = False
) -> tuple[Any, Any, int | None]:
    """``(model, tokenizer, model_max_length)`` as sentence-transformers' Transformer module
    would load them. The tokenizer is the shared Rust one of :func:`load_tokenizer` where the
    folder allows it, else transformers' fast tokenizer.

    ``plain``: the caller runs the model on the lean path only, so on a CPU a BERT that
    :mod:`embeddings.plain_bert` can stand for is built from torch modules, without importing
    transformers (~2 s of a cold start); anything else is still ``AutoModel``'s.
    """
    model = None
    if plain and device == "cpu" and (model_kwargs or {}) in _PLAIN_MODEL_KWARGS:
        model = _plain_bert(folder.transformer_dir)
    if model is None:
        with MODEL_CONSTRUCTION:
            from transformers import AutoModel

            model = AutoModel.from_pretrained(folder.transformer_dir, **(model_kwargs or {}))
    try:
        tokenizer, limit = load_tokenizer(folder)
    except NotPlainFolder as why:
        logger.debug("tokenizer of %s loads through transformers: %s", folder.transformer_dir, why)
        with MODEL_CONSTRUCTION:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(folder.transformer_dir)
        limit = getattr(tokenizer, "model_max_length", None)
    return model.to(device).eval(), tokenizer, limit


def _plain_bert(directory: Path) -> Any | None:
    """The folder's BERT as plain torch modules, or ``None`` (logged) where transformers must
    build it: another architecture or option, or weights not in one ``model.safetensors``."""
    from safetensors.torch import load_file

    from .plain_bert import NotPlainBert, as_float32, build, enabled, read_config

    if not enabled():
        return None
    weights = directory / "model.safetensors"
    try:
        shape = read_config(directory, "BertModel")
        if not weights.is_file():
            raise NotPlainBert("no single model.safetensors")
        state = {key: as_float32(t) for key, t in load_file(str(weights)).items()}
        model = build(shape, state, span_head=False)
    except NotPlainBert as why:
        logger.info("%s is built by transformers: %s", directory, why)
        return None
    logger.debug("%s built from plain torch modules", directory)
    return model


def truncation_length(folder: BertFolder, model: Any, model_max_length: int | None) -> int:
    """Tokens kept per text: the folder's ``max_seq_length``, else what model and tokenizer
    allow (sentence-transformers' rule when the folder does not say)."""
    positions = int(model.config.max_position_embeddings)
    if folder.max_seq_length is not None:
        return min(int(folder.max_seq_length), positions)
    return min(positions, int(model_max_length or positions))
