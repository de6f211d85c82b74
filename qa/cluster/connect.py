"""Joining a Ray cluster (or starting one on this machine), with errors a user can act on.

``ray.init`` on an unreachable address retries for a long time and then raises a
``ConnectionError`` full of internals; a TCP probe first turns the usual mistakes (wrong host,
wrong port, head not started) into one line within seconds.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from qa.errors import LudaoError

logger = logging.getLogger(__name__)

NAMESPACE = "ludao"
"""Ray namespace of Ludao's named actors and Serve applications."""

PROBE_TIMEOUT_S = 5.0


class ClusterUnavailableError(LudaoError):
    """Ray is not installed, or the cluster cannot be reached; the message says which."""


def import_ray() -> Any:
    """The ``ray`` module, or a clear error naming the extra to install.

    Ray's usage statistics stay off unless the environment turns them on: an office's cluster
    has no business reporting to anyone, and the collector's queries of a Prometheus that is
    not there fill the log with tracebacks.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DATA_USAGE_DISABLED", "1")
    try:
        import ray
    except ImportError as exc:
        raise ClusterUnavailableError(
            "Ray is not installed; `pip install 'ludao[ray]'` adds it"
        ) from exc
    return ray


def connect(address: str | None = None, *, num_cpus: int | None = None) -> Any:
    """Connect this process to the Ray cluster at ``address`` and return the ``ray`` module.

    Args:
        address: ``host:port`` of the head's GCS (``ray start --head`` prints it), ``"auto"``
            (the cluster started on this machine), ``ray://host:10001`` (Ray Client), or
            ``None``/``""``: ``RAY_ADDRESS`` when set, else a private Ray started on this machine
            for this process only, listening on 127.0.0.1 and stopped when it exits.
        num_cpus: CPUs of that private Ray (default: all).

    Raises:
        ClusterUnavailableError: Ray missing, or nothing answering at ``address``.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address and address != "auto":
        _probe(address)
    _reload_auth_settings()
    options: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": True}
    if address is None:
        # A private local Ray: no dashboard, bound to the loopback interface.
        options |= {
            "include_dashboard": False,
            "_node_ip_address": "127.0.0.1",
            "num_cpus": num_cpus,
        }
    try:
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "this machine"
        raise ClusterUnavailableError(f"cannot join the Ray cluster at {where}: {exc}") from exc
    resources = ray.cluster_resources()
    logger.info(
        "joined Ray cluster at %s: %d node(s), %s CPU(s)",
        address or "a private local instance",
        len([n for n in ray.nodes() if n.get("Alive")]),
        resources.get("CPU", 0),
    )
    return ray


def _reload_auth_settings() -> None:
    """Make Ray read ``RAY_AUTH_MODE``/``RAY_AUTH_TOKEN`` as they are now.

    Ray reads its configuration and the cluster token once per process and caches both; a
    process that touched Ray before the token was put in its environment (a test session, a
    notebook, a server that joins later) would otherwise present no token and be refused with
    "InvalidAuthToken". The hooks are Ray internals: where they are missing, nothing is reset.
    """
    try:
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:
        return
    try:
        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    except (AttributeError, RuntimeError) as exc:
        logger.debug("could not refresh Ray's cached auth settings: %s", exc)


def _probe(address: str) -> None:
    """Fail fast when no process listens at ``address`` (``host:port``, ``ray://host:port``)."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ClusterUnavailableError(
            f"Ray address {address!r} is not host:port (e.g. 10.0.0.5:6379) or 'auto'"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ClusterUnavailableError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
            "`ray start --head` there, or check the address and the firewall"
        ) from exc
