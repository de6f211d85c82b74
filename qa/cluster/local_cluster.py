"""A throwaway Ray cluster of several nodes on this machine, for tests, benchmarks and trials.

Each node is a ``ray start --block`` process in its own session, under one temp dir; stopping
signals those process groups, so only this cluster's processes end (``ray stop`` would end every
Ray process on the machine). Every port is chosen free, nodes listen on 127.0.0.1 where Ray lets
them, and the cluster requires a token (``RAY_AUTH_MODE=token``, generated here): a local user
cannot join it or submit work without the token.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from qa.web.servers import free_port

logger = logging.getLogger(__name__)


@dataclass
class LocalRayCluster:
    """``with LocalRayCluster(nodes=2, cpus_per_node=2) as cluster: ... cluster.address``."""

    nodes: int = 2
    cpus_per_node: int = 2
    env: dict[str, str] | None = None
    """Environment of the nodes (and so of every worker); default: this process's."""
    start_timeout: float = 120.0
    address: str = ""
    temp_dir: Path = field(default_factory=Path)
    processes: list[subprocess.Popen] = field(default_factory=list)
    token: str = field(default_factory=lambda: secrets.token_hex(32))

    def client_env(self) -> dict[str, str]:
        """What a driver (``ludao index --ray``) needs in its environment to join."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token, "RAY_ADDRESS": self.address}

    def __enter__(self) -> LocalRayCluster:
        # Short: Ray's Unix socket paths live under it and must stay under 108 bytes.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="lray", dir="/tmp"))
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        try:
            self._start_node(head=True, port=port)
            for _ in range(self.nodes - 1):
                self._start_node(head=False, port=port)
            self._wait_for_nodes()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _node_env(self) -> dict[str, str]:
        base = dict(self.env if self.env is not None else os.environ)
        base.pop("RAY_ADDRESS", None)
        return base | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}

    def _start_node(self, *, head: bool, port: int) -> None:
        ray = str(Path(sys.executable).with_name("ray"))
        common = [
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={self.cpus_per_node}",
            "--num-gpus=0",
            "--disable-usage-stats",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
        ]
        if head:
            args = [
                ray, "start", "--head", f"--port={port}", f"--temp-dir={self.temp_dir}",
                "--include-dashboard=false", f"--ray-client-server-port={free_port()}", *common,
            ]  # fmt: skip
        else:
            args = [ray, "start", f"--address={self.address}", *common]
        log = (self.temp_dir / f"node-{len(self.processes)}.log").open("wb")
        self.processes.append(
            subprocess.Popen(
                args,
                env=self._node_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def _wait_for_nodes(self) -> None:
        """Until ``nodes`` nodes are alive (asked with ``ray status``, which joins nothing)."""
        ray = str(Path(sys.executable).with_name("ray"))
        env = self._node_env()
        deadline = time.monotonic() + self.start_timeout
        last = ""
        while time.monotonic() < deadline:
            for proc in self.processes:
                if proc.poll() is not None:
                    raise RuntimeError(f"a Ray node exited during start-up:\n{self.logs()}")
            status = subprocess.run(
                [ray, "status", f"--address={self.address}"],
                env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            last = status.stdout + status.stderr
            if status.returncode == 0 and last.count(" node_") >= self.nodes:
                logger.info("local Ray cluster of %d nodes at %s", self.nodes, self.address)
                return
            time.sleep(1)
        raise RuntimeError(f"the Ray cluster did not come up:\n{last[-2000:]}\n{self.logs()}")

    def process_groups(self) -> list[int]:
        """The session (= process group) ids of the nodes: every process of the cluster."""
        return [p.pid for p in self.processes]

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-1500:] for p in sorted(self.temp_dir.glob("node-*.log"))
        )

    def stop(self) -> None:
        """SIGTERM every node's process group, SIGKILL what is left after 5 s; remove the dir."""
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            for proc in self.processes:
                _signal_group(proc.pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and any(_group_alive(p.pid) for p in self.processes):
                time.sleep(0.2)
        for proc in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self.processes = []
        if self.temp_dir and self.temp_dir != Path() and self.temp_dir.exists():
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
