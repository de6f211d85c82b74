"""BERT as plain ``torch.nn`` modules for the lean paths: transformers' parameter names, none of
its code.

The lean layers (:class:`embeddings.lean.LeanBert`) use nothing of a transformers ``BertModel``
but its module tree: the three embedding tables, the Linear and LayerNorm modules of each layer
and four config values. Importing transformers to build that tree cost a cold start ~2.2 s on
two cores (its lazy top-level module, ``modeling_bert``, ``AutoModel``'s registry: issue #14),
more than reading the weights. Here the same tree is built from ``config.json`` on the meta
device and the safetensors tensors are assigned to it, so nothing is initialised at random
either. The modules have no ``forward``: only the lean path runs them, and a model it cannot run
exactly (:func:`read_config` says why) is built by transformers as before. Import this module
where a model is loaded, not at the top of another: it imports torch.

``LUDAO_PLAIN_BERT=0`` builds transformers' classes even where these would do (to compare).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

ENV_SWITCH = "LUDAO_PLAIN_BERT"
_IGNORED_KEYS = ("embeddings.position_ids", "pooler.")
"""Keys a checkpoint may hold that the lean path never reads: a buffer of positions 0..n-1 and
the pooler, which mean pooling and the span head leave unused."""


class NotPlainBert(ValueError):
    """transformers must build this model: the plain modules cannot stand for it exactly."""


def enabled() -> bool:
    """Whether the plain modules may replace transformers' (``LUDAO_PLAIN_BERT``, default on)."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


@dataclass(frozen=True)
class BertShape:
    """The values of a BERT ``config.json`` the plain modules and the lean path read, under
    transformers' names (so ``model.config.hidden_size`` reads the same on either model)."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float
    hidden_act: str = "gelu"
    position_embedding_type: str = "absolute"
    is_decoder: bool = False


def read_config(folder: str | Path, architecture: str) -> BertShape:
    """The shape of the BERT in ``folder`` whose ``config.json`` names ``architecture``
    (``BertModel`` or ``BertForQuestionAnswering``); :class:`NotPlainBert` says why not."""
    path = Path(folder) / "config.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NotPlainBert(f"{path} is unreadable ({exc})") from exc
    if raw.get("model_type") != "bert":
        raise NotPlainBert(f"model type {raw.get('model_type')!r}, not bert")
    if raw.get("architectures", [architecture]) != [architecture]:
        raise NotPlainBert(f"architectures {raw.get('architectures')}, not [{architecture!r}]")
    different = {
        key: raw[key]
        for key, plain in (
            ("hidden_act", "gelu"),
            ("position_embedding_type", "absolute"),
            ("is_decoder", False),
            ("add_cross_attention", False),
            ("chunk_size_feed_forward", 0),
        )
        if raw.get(key, plain) != plain
    }
    if different:
        raise NotPlainBert(f"config sets {different}")
    try:
        return BertShape(
            **{
                name: kind(raw[name])
                for name, kind in (
                    ("hidden_size", int),
                    ("num_hidden_layers", int),
                    ("num_attention_heads", int),
                    ("intermediate_size", int),
                    ("vocab_size", int),
                    ("max_position_embeddings", int),
                    ("type_vocab_size", int),
                    ("layer_norm_eps", float),
                )
            }
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise NotPlainBert(f"config.json lacks a usable {exc}") from exc


_NO_STORAGE = "meta"
"""Where the modules are built: shapes without memory, until the loaded tensors are assigned.
Passed to each constructor: ``with torch.device("meta")`` would do the same but first imports
torch's reference ops (~2 s on two cores)."""


def _linear(n_in: int, n_out: int) -> nn.Linear:
    return nn.Linear(n_in, n_out, device=_NO_STORAGE)


def _embedding(rows: int, width: int) -> nn.Embedding:
    # from_pretrained: an Embedding built on meta otherwise draws its normal initialisation
    # through torch's reference ops, whose first use imports ~800 modules (~1.8 s).
    return nn.Embedding.from_pretrained(torch.empty(rows, width, device=_NO_STORAGE))


def _holder(**children: nn.Module) -> nn.Module:
    """A bare module holding ``children`` under transformers' names ("self" among them)."""
    module = nn.Module()
    for name, child in children.items():
        setattr(module, name, child)
    return module


class PlainBert(nn.Module):
    """transformers' ``BertModel`` module tree (embeddings, encoder.layer[i]) without its code."""

    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.config = shape
        h = shape.hidden_size

        def norm() -> nn.LayerNorm:
            return nn.LayerNorm(h, eps=shape.layer_norm_eps, device=_NO_STORAGE)

        self.embeddings = _holder(
            word_embeddings=_embedding(shape.vocab_size, h),
            position_embeddings=_embedding(shape.max_position_embeddings, h),
            token_type_embeddings=_embedding(shape.type_vocab_size, h),
            LayerNorm=norm(),
        )
        layers = [
            _holder(
                attention=_holder(
                    self=_holder(query=_linear(h, h), key=_linear(h, h), value=_linear(h, h)),
                    output=_holder(dense=_linear(h, h), LayerNorm=norm()),
                ),
                intermediate=_holder(dense=_linear(h, shape.intermediate_size)),
                output=_holder(dense=_linear(shape.intermediate_size, h), LayerNorm=norm()),
            )
            for _ in range(shape.num_hidden_layers)
        ]
        self.encoder = _holder(layer=nn.ModuleList(layers))


class PlainBertForQuestionAnswering(nn.Module):
    """transformers' ``BertForQuestionAnswering`` tree: ``bert`` and the start/end layer."""

    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.config = shape
        self.bert = PlainBert(shape)
        self.qa_outputs = _linear(shape.hidden_size, 2)


def as_float32(tensor: torch.Tensor) -> torch.Tensor:
    """Floating tensors in fp32, as the lean path takes them (it casts for bf16 itself)."""
    return tensor.float() if tensor.is_floating_point() else tensor


def build(
    shape: BertShape, state: dict[str, torch.Tensor], *, span_head: bool
) -> PlainBert | PlainBertForQuestionAnswering:
    """The plain model of ``shape`` holding the tensors of ``state`` (by transformers' names).

    Built on the meta device and filled by assignment: no random initialisation, no copy. Every
    parameter must be in ``state`` and every tensor of ``state`` must have a place (but the
    keys the lean path ignores), else :class:`NotPlainBert`.
    """
    prefix = "bert." if span_head else ""
    model = PlainBertForQuestionAnswering(shape) if span_head else PlainBert(shape)
    wanted = {
        key: tensor
        for key, tensor in state.items()
        if not key.removeprefix(prefix).startswith(_IGNORED_KEYS)
    }
    expected = {name for name, _ in model.named_parameters()}
    missing, unexpected = sorted(expected - wanted.keys()), sorted(wanted.keys() - expected)
    if missing or unexpected:
        raise NotPlainBert(f"weights do not fit: missing={missing[:5]} unexpected={unexpected[:5]}")
    for name, parameter in model.named_parameters():
        if tuple(wanted[name].shape) != tuple(parameter.shape):
            raise NotPlainBert(f"{name} is {tuple(wanted[name].shape)}, not {parameter.shape}")
    model.load_state_dict(wanted, strict=True, assign=True)
    return model.eval().requires_grad_(False)
