"""Ray Serve: the app of ``ludao serve`` in N replicas on a Ray cluster (``ludao serve --ray``).

Every replica builds the same app a plain ``ludao serve`` runs (chat, API, widget, admin page),
loading the models once and opening the configured store: on one machine the shared FAISS
folder under ``$LUDAO_HOME``; across machines, Milvus and PostgreSQL (docs/deploy.md), so all
replicas answer from the same passages and write to the same records. Ray Serve's HTTP proxy
on the head node is the one address users reach; :mod:`.affinity` keeps each browser on one
replica. Without ``--ray`` none of this is imported.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from ray import serve
from ray.serve.config import RequestRouterConfig

from .affinity import ReplicaStamp, StickyRouter
from .connect import ClusterUnavailableError, connect

logger = logging.getLogger(__name__)

APP_NAME = "ludao"
AppBuilder = Callable[[Any, Any], Any]
"""``(Settings, ServeSettings) -> ASGI app``: ``ui.build_server_app``, passed in by the CLI."""


@serve.deployment(name="ludao")
@serve.ingress()
class LudaoReplica:
    """One replica: the app built in this process, stamped with the replica's id."""

    def __init__(self, build_app: AppBuilder, settings: Any, server: Any, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.replica_id = serve.get_replica_context().replica_id.unique_id
        self.asgi = build_app(settings, server)
        logger.info("replica %s ready", self.replica_id)

    def __serve_build_asgi_app__(self) -> ReplicaStamp:
        return ReplicaStamp(self.asgi, self.replica_id)


def deploy(
    build_app: AppBuilder,
    settings: Any,
    server: Any,
    *,
    address: str | None,
    replicas: int,
    cpus_per_replica: float = 1.0,
) -> str:
    """Start (or update) the ``ludao`` Serve application and return its URL once it answers.

    Args:
        build_app: makes one replica's app from ``settings`` and ``server``.
        address: the Ray cluster (:func:`qa.cluster.connect`).
        replicas: how many copies serve at once; Ray restarts any that dies.
        cpus_per_replica: CPUs each replica reserves (and its torch threads, rounded up to 1).
    """
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")
    ray = connect(address)
    cpus = float(ray.cluster_resources().get("CPU", 0))
    if cpus < replicas * cpus_per_replica:
        raise ClusterUnavailableError(
            f"{replicas} replica(s) of {cpus_per_replica:g} CPU need "
            f"{replicas * cpus_per_replica:g}"
            f" CPUs; the Ray cluster has {cpus:g}"
        )
    # One HTTP entry point, on the head node, on the host and port ``ludao serve`` would use.
    serve.start(http_options={"host": server.host, "port": server.port, "location": "HeadOnly"})
    app = LudaoReplica.options(
        num_replicas=replicas,
        ray_actor_options={"num_cpus": cpus_per_replica},
        max_ongoing_requests=max(8, int(server.max_queue)),
        request_router_config=RequestRouterConfig(request_router_class=StickyRouter),
    ).bind(build_app, settings, server, max(1, round(cpus_per_replica)))
    try:
        serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
    except RuntimeError as exc:
        raise ClusterUnavailableError(f"Ray Serve could not start Ludao: {exc}") from exc
    url = f"http://{server.host}:{server.port}/"
    logger.info("serving Ludao at %s from %d Ray Serve replica(s)", url, replicas)
    return url


def serve_until_stopped(build_app: AppBuilder, settings: Any, server: Any, **options: Any) -> None:
    """:func:`deploy`, then wait for Ctrl-C or SIGTERM and take the application down."""
    deploy(build_app, settings, server, **options)
    stopped = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        while not stopped.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        logger.info("stopping the Ray Serve application %r", APP_NAME)
        serve.delete(APP_NAME)
