"""One query → one vector, without sentence-transformers' ``encode`` and its per-call overhead.

A question is ~15 tokens, so every matrix product in the 12 layers is a 17×384 by 384×1536
sliver. There, what costs is not arithmetic: sentence-transformers' wrapper (feature dicts,
sorting, padding, attention masks for a batch of one), transformers' generic forward, and above
all oneDNN re-laying out each weight matrix on every call. :class:`LeanQueryEncoder` runs the same
model with none of that: the fast tokenizer's Rust core (its own copy, truncating as
sentence-transformers does), then the BERT layers written out as their handful of tensor ops on
the model's own modules, with every float ``Linear`` weight laid out once for oneDNN
(``mkldnn._reorder_linear_weight``, the prepacking that ``torch.compile``'s freezing uses) and
the query, key and value projections fused into one product, then mean pooling. One sequence
needs no padding and so no attention mask.

The vectors are the sentence-transformers ones (cosine ≥ 0.9999 at every precision, tested), so
an index built either way serves either way and the model id does not change. It works at every
precision of :mod:`embeddings.precision`: bf16 weights are packed as bf16 (activations cast to
them; the residual stream and LayerNorms stay fp32, as under autocast), int8's quantised
``Linear`` modules are called as they are. A model it does not know how to run exactly (not a
BERT encoder, not mean pooling, lower-casing) is reported by :func:`unsupported_reason`, and the
encoder then keeps sentence-transformers' path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

Linear = Callable[["torch.Tensor"], "torch.Tensor"]
_CHECKED: dict[tuple, bool] = {}
"""Whether oneDNN's packed product agreed with ``F.linear``, per dtype, shape, bias and GELU."""


def unsupported_reason(model: SentenceTransformer) -> str | None:
    """Why :class:`LeanQueryEncoder` cannot reproduce ``model``'s vectors, or ``None`` if it can.

    It can for a sentence-transformers pipeline of Transformer → mean Pooling (→ Normalize) over
    a transformers ``BertModel`` with absolute positions and exact GELU, and a fast tokenizer.
    """
    modules = list(model)
    names = [type(m).__name__ for m in modules]
    if names[:2] != ["Transformer", "Pooling"] or any(n != "Normalize" for n in names[2:]):
        return f"modules {names}, not Transformer → Pooling (→ Normalize)"
    transformer, pooling = modules[0], modules[1]
    # sentence-transformers ≥ 5 names one mode (``pooling_mode="mean"``); older ones set flags.
    mode = getattr(pooling, "pooling_mode", None)
    flags = [k for k, v in vars(pooling).items() if k.startswith("pooling_mode_") and v is True]
    if mode not in (None, "mean") or flags not in ([], ["pooling_mode_mean_tokens"]):
        return f"pooling {mode or flags}, not mean"
    if not getattr(pooling, "include_prompt", True):
        return "pooling leaves the prompt out"
    if getattr(transformer, "do_lower_case", False):
        return "the tokenizer lower-cases"
    bert = transformer.auto_model
    config = bert.config
    if type(bert).__name__ != "BertModel" or getattr(config, "is_decoder", False):
        return f"{type(bert).__name__} is not a BERT encoder"
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return f"position embeddings {config.position_embedding_type!r}, not absolute"
    if config.hidden_act != "gelu":
        return f"activation {config.hidden_act!r}, not gelu"
    if not hasattr(transformer.tokenizer, "backend_tokenizer"):
        return "the tokenizer is not a fast (Rust) tokenizer"
    return None


def packed_linear(module: Any, *, gelu: bool = False) -> Linear:
    """``module`` as a function of its input, with a float weight laid out once for oneDNN.

    The input is cast to the weight's dtype (bf16 weights take bf16 activations, as autocast
    would). ``gelu`` applies exact GELU to the output, inside the oneDNN kernel where packed
    (fp32: bit-identical; bf16: computed before the output is rounded, not after). Modules that
    are not plain float ``nn.Linear`` (int8's quantised ones), or a torch without oneDNN, or one
    whose packed product disagrees with ``F.linear``, are called as is.
    """
    import torch
    import torch.nn.functional as F

    weight = getattr(module, "weight", None)
    if not isinstance(module, torch.nn.Linear) or not isinstance(weight, torch.Tensor):
        if gelu:  # e.g. a dynamically quantised Linear: fbgemm packed it already
            return lambda x: F.gelu(module(x))
        return module
    bias = None if module.bias is None else module.bias.detach()
    return _packed(weight.detach(), bias, gelu=gelu)


def fused_qkv(query: Any, key: Any, value: Any) -> Linear | None:
    """The three attention projections as one packed product (one call and a wider, better-used
    matrix instead of three), or ``None`` unless all three are float ``nn.Linear`` of one dtype.

    Each output element is the same dot product as before, so the vectors do not change.
    """
    import torch

    layers = (query, key, value)
    if not all(type(m) is torch.nn.Linear and m.bias is not None for m in layers):
        return None
    if len({m.weight.dtype for m in layers}) != 1:
        return None
    weight = torch.cat([m.weight.detach() for m in layers])
    return _packed(weight, torch.cat([m.bias.detach() for m in layers]))


def _packed(weight: torch.Tensor, bias: torch.Tensor | None, *, gelu: bool = False) -> Linear:
    import torch
    import torch.nn.functional as F

    dtype = weight.dtype
    attr, algorithm = ("gelu", "none") if gelu else ("none", "")  # "none": erf, not tanh

    def plain(x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x.to(dtype), weight, bias)
        return F.gelu(out) if gelu else out

    if weight.device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return plain
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, 32)

        def run(x: torch.Tensor) -> torch.Tensor:
            return torch.ops.mkldnn._linear_pointwise(
                x.to(dtype), packed, bias, attr, [], algorithm
            )

        kind = (dtype, tuple(weight.shape), bias is None, gelu)
        if kind not in _CHECKED:  # once per kind of layer, not for each of the model's 48
            probe = torch.randn(3, weight.shape[1]).to(dtype)
            with torch.inference_mode():
                got, expected = run(probe).float(), plain(probe).float()
            _CHECKED[kind] = torch.allclose(got, expected, rtol=1e-2, atol=1e-2)
        same = _CHECKED[kind]
    except (RuntimeError, AttributeError, TypeError) as error:  # no such op in this torch/CPU
        logger.info("oneDNN weight packing unavailable (%s); plain linear layers", error)
        return plain
    if not same:
        logger.warning("oneDNN packed linear disagrees with F.linear; plain linear layers")
        return plain
    return run


class LeanQueryEncoder:
    """The query vector of a sentence-transformers BERT model, computed lean (see module doc).

    Build it once per loaded model (it packs the weights: ~2 s and a copy of the Linear weights,
    ~85 MB at fp32 or ~43 MB at bf16 for e5-small); calls are thread-safe, as the packed weights
    are only read. Check :func:`unsupported_reason` first.

    Args:
        model: the loaded sentence-transformers model, already prepared for its precision.
        prompt: text put before each query (e5's ``"query: "``), as sentence-transformers does.
    """

    def __init__(self, model: SentenceTransformer, *, prompt: str = "") -> None:
        from tokenizers import Tokenizer

        reason = unsupported_reason(model)
        if reason is not None:
            raise ValueError(f"the lean query path cannot run this model: {reason}")
        transformer = model[0]
        bert = transformer.auto_model
        self.prompt = prompt
        # A private copy: truncation set here must not change the shared tokenizer's state.
        self._tokenizer = Tokenizer.from_str(transformer.tokenizer.backend_tokenizer.to_str())
        limit = min(int(transformer.max_seq_length or 512), bert.config.max_position_embeddings)
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=limit)
        self._embeddings = bert.embeddings
        self._device = bert.embeddings.word_embeddings.weight.device
        self._heads = bert.config.num_attention_heads
        self._head_size = bert.config.hidden_size // self._heads
        self._layers = [
            (
                self._projections(layer.attention.self),
                packed_linear(layer.attention.output.dense),
                layer.attention.output.LayerNorm,
                packed_linear(layer.intermediate.dense, gelu=True),
                packed_linear(layer.output.dense),
                layer.output.LayerNorm,
            )
            for layer in bert.encoder.layer
        ]

    def _projections(self, attention: Any) -> Callable[[torch.Tensor], tuple]:
        """``x`` → ``(q, k, v)``, each ``(b, heads, n, head_size)`` as transformers shapes them."""
        heads = self._heads
        fused = fused_qkv(attention.query, attention.key, attention.value)
        if fused is not None:

            def project(x: torch.Tensor) -> tuple:
                b, n = x.shape[:2]
                return fused(x).view(b, n, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)

            return project
        query, key, value = (packed_linear(m) for m in (attention.query, attention.key,
                                                         attention.value))  # fmt: skip

        def separate(x: torch.Tensor) -> tuple:
            b, n = x.shape[:2]
            return tuple(f(x).view(b, n, heads, -1).transpose(1, 2) for f in (query, key, value))

        return separate

    def token_ids(self, text: str) -> list[int]:
        """The ids sentence-transformers would feed the model for ``text`` (prompt, specials)."""
        return self._tokenizer.encode(self.prompt + text).ids

    def encode(self, text: str) -> np.ndarray:
        """``(hidden,)`` float32, L2-normalised in fp32 (as ``SentenceEncoder`` normalises)."""
        return self.encode_many([text])[0]

    def encode_many(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), hidden)`` float32 rows, each as :meth:`encode` gives it.

        Several questions asked at once (the server's micro-batches) run as one padded batch:
        the same arithmetic in wider products, and the per-call costs paid once. Padding is
        masked out of attention and pooling, so a row does not depend on its batch-mates
        beyond the last bits of the matrix products.
        """
        import torch
        import torch.nn.functional as F

        if not texts:
            return np.zeros((0, self._heads * self._head_size), dtype=np.float32)
        rows = [self.token_ids(text) for text in texts]
        n = max(len(r) for r in rows)
        b = len(rows)
        ids = torch.zeros((b, n), dtype=torch.long)
        valid = torch.zeros((b, n), dtype=torch.bool)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            valid[i, : len(r)] = True
        ids, valid = ids.to(self._device), valid.to(self._device)
        # One sequence needs no mask: the unmasked attention kernel, as before batching.
        mask = None if b == 1 else valid[:, None, None, :]
        emb = self._embeddings
        # Shapes, layouts and the attention scale as transformers' BertModel has them: int8's
        # per-call activation scales amplify even a last-bit difference into a visible one.
        scale = self._head_size**-0.5
        with torch.inference_mode():
            x = emb.word_embeddings(ids) + emb.token_type_embeddings.weight[0]
            x = emb.LayerNorm(x + emb.position_embeddings.weight[:n])
            for project, out, norm1, up, down, norm2 in self._layers:
                q, k, v = project(x)
                attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
                attended = attended.transpose(1, 2).reshape(b, n, -1).contiguous()
                x = norm1(out(attended) + x)  # the fp32 residual stream promotes a bf16 output
                x = norm2(down(up(x)) + x)  # up: the intermediate layer with its GELU
            weights = valid.unsqueeze(-1).float()
            pooled = (x.float() * weights).sum(dim=1) / weights.sum(dim=1)
            vectors = pooled.cpu().numpy()
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)
