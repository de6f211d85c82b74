"""``ludao serve --ray --replicas 2``: the app in two Ray Serve replicas (#16).

A Ray cluster of two nodes (one CPU each, so one replica per node) is started by the test in its
own temp dir and stopped by process group; the real CLI deploys the app to it. Forty questions
without cookies must be answered by both replicas (``X-Ludao-Replica``); a browser-like client
that keeps the ``ludao_replica`` cookie stays on one replica; and when one replica's process is
killed in the middle of forty more questions, only requests in flight fail, each with an HTTP
error rather than a hang, and each succeeds when sent again.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None,
        reason="Ray is not installed: pip install 'ludao[ray]' (CI installs it)",
    ),
]

CONCURRENCY = 4
QUESTIONS = [
    json.loads(line)["question"]
    for line in (Path(__file__).parents[1] / "qa/eval/data/seed_questions.jsonl").open(
        encoding="utf-8"
    )
]


def replica_pids(sessions: list[int]) -> list[int]:
    """Processes of Serve replicas of the app ``ludao`` in the given sessions (this cluster)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            session = os.getsid(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
        if cmdline.startswith(b"ray::ServeReplica:ludao") and session in sessions:
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    import httpx
    from conftest import real_server_env

    from qa.cluster.local_cluster import LocalRayCluster
    from qa.web.servers import free_port

    env = real_server_env(tmp_path_factory.mktemp("ray-serve"))
    env |= {"LUDAO_ALLOWED_HOSTS": "127.0.0.1,localhost", "LUDAO_TORCH_THREADS": "1"}
    with LocalRayCluster(nodes=2, cpus_per_node=1, env=env) as cluster:
        port = free_port()
        log = tempfile.NamedTemporaryFile(prefix="ludao-ray-serve-", suffix=".log", delete=False)  # noqa: SIM115
        ludao = str(Path(sys.executable).with_name("ludao"))
        args = [ludao, "serve", "--ray", cluster.address, "--replicas", "2"]
        proc = subprocess.Popen(
            [*args, "--host", "127.0.0.1", "--port", str(port)],
            env=env | cluster.client_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 400
            while time.monotonic() < deadline:
                assert proc.poll() is None, Path(log.name).read_text(errors="replace")[-3000:]
                try:
                    if httpx.get(f"{url}/healthz", timeout=3).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(2)
            else:
                pytest.fail("ludao serve --ray did not answer /healthz in time")
            # One replica answering is not both routed to: the proxy learns of replicas (and of a
            # replica Serve restarted after a missed health check on a busy host) a little later.
            seen = replicas_answering(url, want=2, deadline=time.monotonic() + 180)
            assert len(seen) == 2, (seen, Path(log.name).read_text(errors="replace")[-3000:])
            yield url, cluster
        finally:
            proc.send_signal(signal.SIGINT)  # takes the Serve application down
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def replicas_answering(url: str, *, want: int, deadline: float) -> set[str]:
    """Replica ids seen on cookie-less ``/healthz`` calls, polled until ``want`` or the deadline."""
    import httpx

    seen: set[str] = set()
    while len(seen) < want and time.monotonic() < deadline:
        try:
            reply = httpx.get(f"{url}/healthz", timeout=5)
        except httpx.HTTPError:
            reply = None
        if reply is not None and reply.status_code == 200:
            seen.add(reply.headers.get("x-ludao-replica", ""))
        time.sleep(0.2)
    return seen


def ask(client: object, url: str, question: str) -> tuple[int, str | None, str]:
    """Status, answering replica and body of one question; a transport error is status 0."""
    import httpx

    try:
        reply = client.post(f"{url}/api/ask", json={"question": question}, timeout=60)
    except httpx.HTTPError as exc:
        return 0, None, repr(exc)
    return reply.status_code, reply.headers.get("x-ludao-replica"), reply.text


def test_both_replicas_answer(served: tuple[str, object]) -> None:
    import httpx

    url, _ = served
    questions = (QUESTIONS * 3)[:40]
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        # httpx.post keeps no cookies: each request is routed on its own, as API clients are.
        results = list(pool.map(lambda q: ask(httpx, url, q), questions))
    assert all(status == 200 for status, _, _ in results), results
    assert all(json.loads(body)["answers"] for _, _, body in results)
    replicas = {replica for _, replica, _ in results}
    assert len(replicas) == 2, replicas
    counts = [sum(r == one for _, r, _ in results) for one in replicas]
    print(f"answers per replica: {dict(zip(replicas, counts, strict=True))}")
    assert min(counts) >= 5, counts  # both share the load, not one answering a stray request


def test_a_browser_session_stays_on_one_replica(served: tuple[str, object]) -> None:
    import httpx

    url, _ = served
    with httpx.Client() as browser:  # keeps cookies, as a browser does
        first = browser.get(f"{url}/healthz")
        assert "ludao_replica=" in first.headers.get("set-cookie", "")
        assert "HttpOnly" in first.headers["set-cookie"]
        home = first.headers["x-ludao-replica"]
        seen = {ask(browser, url, q)[1] for q in QUESTIONS[:12]}
        assert seen == {home}
        page = browser.get(f"{url}/")  # the chat page itself, from the same replica
        assert page.status_code == 200 and page.headers["x-ludao-replica"] == home


def test_killing_a_replica_loses_only_requests_in_flight(served: tuple[str, object]) -> None:
    import httpx

    url, cluster = served
    pids = replica_pids(cluster.process_groups())
    assert len(pids) == 2, pids
    questions = (QUESTIONS * 3)[40:80]
    done: list[int] = []

    def one(question: str) -> tuple[int, str | None, str]:
        result = ask(httpx, url, question)
        done.append(result[0])
        if len(done) == 10:  # a quarter of the way through: kill one replica outright
            os.kill(pids[0], signal.SIGKILL)
        return result

    started = time.monotonic()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(one, questions))
    elapsed = time.monotonic() - started
    failed = [(q, r) for q, r in zip(questions, results, strict=True) if r[0] != 200]
    print(f"killed replica pid {pids[0]}: {len(failed)} of 40 failed in {elapsed:.1f} s:")
    print("\n".join(f"  {status} {body[:120]}" for _, (status, _, body) in failed))
    assert len(failed) <= CONCURRENCY, failed  # at most the requests in flight at the kill
    for _, (status, _, body) in failed:
        assert status >= 500, body  # an HTTP error from Ray's proxy, not a dropped connection
    assert elapsed < 240  # nothing hung
    for question, _ in failed:  # sent again, each succeeds (on the surviving replica)
        assert ask(httpx, url, question)[0] == 200
    # Ray replaces the dead replica: two replicas answer again.
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if len(replica_pids(cluster.process_groups())) == 2:
            break
        time.sleep(2)
    assert pids[0] not in replica_pids(cluster.process_groups())
