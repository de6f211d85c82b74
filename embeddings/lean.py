"""Vectors without sentence-transformers' ``encode``: its per-call overhead and its padding.

A question is ~15 tokens, so every matrix product in the 12 layers is a 17×384 by 384×1536
sliver. There, what costs is not arithmetic: sentence-transformers' wrapper (feature dicts,
sorting, padding, attention masks for a batch of one), transformers' generic forward, and above
all oneDNN re-laying out each weight matrix on every call. :class:`LeanEncoder` runs the same
model with none of that: the fast tokenizer's Rust core (its own copy, truncating as
sentence-transformers does), then the BERT layers written out as their handful of tensor ops on
the model's own modules, with every float ``Linear`` weight laid out once for oneDNN
(``mkldnn._reorder_linear_weight``, the prepacking that ``torch.compile``'s freezing uses) and
the query, key and value projections fused into one product, then mean pooling.

An index build is the other extreme: thousands of passages, where the products are big and the
waste is padding (sentence-transformers pads every batch to its longest passage, sorted by
characters) and batches too large for the cache. :meth:`LeanEncoder.encode_all` sorts by tokens,
cuts batches by a token budget, and runs every layer but attention on the real tokens only.

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


_BERT_ENCODERS = ("BertModel", "PlainBert")
"""transformers' class, and its module tree built without transformers (:mod:`.plain_bert`)."""


def unsupported_reason(model: SentenceTransformer) -> str | None:
    """Why :class:`LeanEncoder` cannot reproduce ``model``'s vectors, or ``None`` if it can.

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
    return bert_unsupported_reason(transformer.auto_model, transformer.tokenizer)


def bert_unsupported_reason(bert: Any, tokenizer: Any) -> str | None:
    """Why the lean layers cannot run the transformers model ``bert`` exactly, or ``None``."""
    from tokenizers import Tokenizer

    from .shared_tokenizer import SharedTokenizer

    config = bert.config
    if type(bert).__name__ not in _BERT_ENCODERS or getattr(config, "is_decoder", False):
        return f"{type(bert).__name__} is not a BERT encoder"
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return f"position embeddings {config.position_embedding_type!r}, not absolute"
    if config.hidden_act != "gelu":
        return f"activation {config.hidden_act!r}, not gelu"
    if not (
        hasattr(tokenizer, "backend_tokenizer")
        or isinstance(tokenizer, Tokenizer | SharedTokenizer)
    ):
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


TOKEN_BUDGET = 4096
"""Tokens per forward pass when embedding many passages. Measured on 2 cores
(``benchmarks.build_engines``): batches of ~4k tokens beat both 1k (per-call costs) and 8k
(activations of ~50 MB per FFN product fall out of cache)."""


def token_budget_batches(lengths: list[int], budget: int = TOKEN_BUDGET) -> list[list[int]]:
    """Indices of ``lengths`` grouped into batches of about ``budget`` tokens, shortest first.

    Sorting by token count (not characters, as sentence-transformers sorts) makes the sequences
    of a batch nearly equal in length, so padding, which only attention still needs, costs
    almost nothing; a batch holds at least one sequence however long it is.
    """
    if budget < 1:
        raise ValueError(f"budget must be at least 1 token, got {budget}")
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if current and total + lengths[i] > budget:
            batches.append(current)
            current, total = [], 0
        current.append(i)
        total += lengths[i]
    if current:
        batches.append(current)
    return batches


FFN_ROWS = 1024


def _feed_forward(x: torch.Tensor, up: Linear, down: Linear, norm: Any) -> torch.Tensor:
    """``norm(down(up(x)) + x)``, ``FFN_ROWS`` tokens at a time so that the 4×-wide intermediate
    stays in cache (at 4k tokens it is 25 MB of fp32)."""
    import torch

    if x.shape[0] <= FFN_ROWS:
        return norm(down(up(x)) + x)  # up: the intermediate layer with its GELU
    return torch.cat([norm(down(up(part)) + part) for part in x.split(FFN_ROWS)])


class LeanBert:
    """The layers of a transformers ``BertModel``, run on packed tokens (see module doc).

    :class:`LeanEncoder` mean-pools what :meth:`hidden` returns; the reader
    (:mod:`qa.readers.lean`) scores answer spans on it. The packed weights are only read, so
    one instance serves many threads. Check :func:`bert_unsupported_reason` first.
    """

    def __init__(self, bert: Any) -> None:
        self._embeddings = bert.embeddings
        self.device = bert.embeddings.word_embeddings.weight.device
        self._heads = bert.config.num_attention_heads
        self._head_size = bert.config.hidden_size // self._heads
        self._layers = [
            (
                _projections(layer.attention.self),
                packed_linear(layer.attention.output.dense),
                layer.attention.output.LayerNorm,
                packed_linear(layer.intermediate.dense, gelu=True),
                packed_linear(layer.output.dense),
                layer.output.LayerNorm,
            )
            for layer in bert.encoder.layer
        ]

    @property
    def hidden_size(self) -> int:
        return self._heads * self._head_size

    def hidden(self, rows: list[list[int]]) -> torch.Tensor:
        """Last hidden states of token id ``rows``: ``(sum of lengths, hidden)``, row after row.

        Every Linear, LayerNorm and residual runs on the tokens alone, packed one after the
        other: no padding token is ever multiplied. Only attention needs the ``(batch, n)``
        grid; there the tokens are scattered into it and padding is masked out, unless all rows
        are equally long (one question is), which needs neither a mask nor a scatter. Call it
        under ``torch.inference_mode()``.
        """
        import torch
        import torch.nn.functional as F

        lengths = [len(r) for r in rows]
        b, n = len(rows), max(lengths)
        device = self.device
        ids = torch.tensor([t for r in rows for t in r], dtype=torch.long, device=device)
        positions = torch.cat([torch.arange(k, device=device) for k in lengths])
        ragged = min(lengths) != n
        if ragged:
            sizes = torch.tensor(lengths, device=device)
            valid = torch.arange(n, device=device)[None, :] < sizes[:, None]
            slots = valid.reshape(-1).nonzero().squeeze(1)  # where each token sits in the grid
            mask = valid[:, None, None, :]
        emb = self._embeddings
        heads = self._heads
        # The attention scale as transformers' BertModel has it: int8's per-call activation
        # scales amplify even a last-bit difference into a visible one.
        scale = self._head_size**-0.5
        grid = None
        x = emb.word_embeddings(ids) + emb.token_type_embeddings.weight[0]
        x = emb.LayerNorm(x + emb.position_embeddings.weight[positions])
        for project, out, norm1, up, down, norm2 in self._layers:
            qkv = project(x)
            if ragged:
                # Zeroed once: padding slots are never written, and must stay finite (a
                # masked key's weight is 0, and 0 × NaN would still spoil the sum).
                if grid is None:
                    grid = qkv.new_zeros((b * n, qkv.shape[1]))
                grid[slots] = qkv
                qkv = grid
            q, k, v = qkv.view(b, n, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
            attended = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask if ragged else None, scale=scale
            )
            attended = attended.transpose(1, 2).reshape(b * n, -1)
            attended = attended[slots] if ragged else attended.contiguous()
            x = norm1(out(attended) + x)  # the fp32 residual stream promotes a bf16 output
            x = _feed_forward(x, up, down, norm2)
        return x


def _projections(attention: Any) -> Linear:
    """``(tokens, hidden)`` → ``(tokens, 3 · hidden)``: query, key and value side by side."""
    import torch

    fused = fused_qkv(attention.query, attention.key, attention.value)
    if fused is not None:
        return fused
    separate = [packed_linear(m) for m in (attention.query, attention.key, attention.value)]
    return lambda x: torch.cat([f(x) for f in separate], dim=-1)


class LeanEncoder:
    """Vectors of a sentence-transformers BERT model, computed lean (see module doc).

    Build it once per loaded model (it packs the weights: ~2 s and a copy of the Linear weights,
    ~85 MB at fp32 or ~43 MB at bf16 for e5-small); calls are thread-safe, as the packed weights
    are only read. Check :func:`unsupported_reason` first. The prompt (e5's ``"query: "`` or
    ``"passage: "``) is an argument of each call, so queries and passages share one copy.

    Args:
        model: the loaded sentence-transformers model, already prepared for its precision.
    """

    def __init__(self, model: SentenceTransformer) -> None:
        reason = unsupported_reason(model)
        if reason is not None:
            raise ValueError(f"the lean path cannot run this model: {reason}")
        transformer = model[0]
        bert = transformer.auto_model
        limit = min(int(transformer.max_seq_length or 512), bert.config.max_position_embeddings)
        self._setup(bert, transformer.tokenizer, limit)

    @classmethod
    def from_bert(cls, bert: Any, tokenizer: Any, max_seq_length: int) -> LeanEncoder:
        """The lean path over a transformers ``BertModel`` and its fast tokenizer, loaded
        without sentence-transformers (:mod:`embeddings.bert_folder`); texts are cut at
        ``max_seq_length`` tokens, as the folder's sentence-transformers model would cut them.
        ``tokenizer`` is a :class:`~embeddings.shared_tokenizer.SharedTokenizer` (used under its
        lock), a ``tokenizers.Tokenizer`` nobody else uses, or a transformers fast tokenizer."""
        reason = bert_unsupported_reason(bert, tokenizer)
        if reason is not None:
            raise ValueError(f"the lean path cannot run this model: {reason}")
        lean = cls.__new__(cls)
        lean._setup(bert, tokenizer, min(max_seq_length, bert.config.max_position_embeddings))
        return lean

    def _setup(self, bert: Any, tokenizer: Any, limit: int) -> None:
        from tokenizers import Tokenizer

        from .shared_tokenizer import SharedTokenizer

        if isinstance(tokenizer, SharedTokenizer):  # bert_folder's, shared with the reader
            self._tokenizer = tokenizer
        elif isinstance(tokenizer, Tokenizer):
            self._tokenizer = SharedTokenizer(tokenizer)
        else:  # a private copy: the state set on it must not change the wrapper's
            self._tokenizer = SharedTokenizer(
                Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
            )
        self._limit = limit
        self._bert = LeanBert(bert)

    @property
    def dimension(self) -> int:
        return self._bert.hidden_size

    def token_ids(self, text: str, prompt: str = "") -> list[int]:
        """The ids sentence-transformers would feed the model for ``text`` (prompt, specials)."""
        with self._tokenizer.configured(self._limit) as tokenizer:
            return tokenizer.encode(prompt + text).ids

    def encode(self, text: str, prompt: str = "") -> np.ndarray:
        """``(hidden,)`` float32, L2-normalised in fp32 (as ``SentenceEncoder`` normalises)."""
        return self.encode_many([text], prompt)[0]

    def encode_many(self, texts: list[str], prompt: str = "") -> np.ndarray:
        """``(len(texts), hidden)`` float32 rows, each as :meth:`encode` gives it, in one pass.

        Several questions asked at once (the server's micro-batches) run together: the same
        arithmetic in wider products, and the per-call costs paid once. A row does not depend on
        its batch-mates beyond the last bits of the matrix products.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._forward([self.token_ids(text, prompt) for text in texts])

    def encode_all(
        self,
        texts: list[str],
        prompt: str = "",
        *,
        token_budget: int = TOKEN_BUDGET,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Many texts (an index build): tokenised at once, run in length-sorted batches of about
        ``token_budget`` tokens, returned in the order given."""
        from tqdm.auto import tqdm

        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return vectors
        with self._tokenizer.configured(self._limit) as tokenizer:
            rows = [e.ids for e in tokenizer.encode_batch([prompt + t for t in texts])]
        batches = token_budget_batches([len(r) for r in rows], token_budget)
        with tqdm(total=len(texts), desc="embed", unit="passage", disable=not show_progress) as bar:
            for batch in batches:
                vectors[batch] = self._forward([rows[i] for i in batch])
                bar.update(len(batch))
        return vectors

    def _forward(self, rows: list[list[int]]) -> np.ndarray:
        """Normalised mean-pooled vectors of token id ``rows``."""
        import torch

        device = self._bert.device
        with torch.inference_mode():
            x = self._bert.hidden(rows)
            sizes = torch.tensor([len(r) for r in rows], device=device)
            segment = torch.repeat_interleave(torch.arange(len(rows), device=device), sizes)
            sums = torch.zeros((len(rows), x.shape[1]), device=device)
            pooled = sums.index_add_(0, segment, x.float()) / sizes[:, None].float()
            vectors = pooled.cpu().numpy()
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)
