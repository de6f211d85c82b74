"""The ``--ray`` options without a cluster: what happens when Ray is missing or unreachable.

These run in the plain set-up too (no Ray needed, except the affinity tests, which skip without
it): importing Ludao never imports Ray, a missing extra is named, a wrong address fails within
seconds with a message instead of Ray's retries.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa.cli import cli
from qa.config import REPO_ROOT

HAS_RAY = importlib.util.find_spec("ray") is not None


def test_importing_ludao_imports_no_ray() -> None:
    code = (
        "import sys, qa, qa.cli, qa.cluster, qa.cluster.embedding, qa.pipeline, ui;"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json;" + code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out) == []


def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("鹭岛是厦门的别称，因白鹭栖息而得名。", encoding="utf-8")
    return folder


def test_index_names_the_extra_when_ray_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    result = CliRunner().invoke(cli, ["index", str(corpus(tmp_path)), "--ray"])
    assert result.exit_code == 1
    assert "pip install 'ludao[ray]'" in result.output


def test_serve_names_the_extra_when_ray_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    result = CliRunner().invoke(cli, ["serve", "--ray", "--replicas", "2"])
    assert result.exit_code == 1
    assert "pip install 'ludao[ray]'" in result.output


@pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed: pip install 'ludao[ray]'")
def test_unreachable_cluster_fails_fast_with_a_message(tmp_path: Path) -> None:
    from qa.web.servers import free_port

    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["index", str(corpus(tmp_path)), "--ray", address])
    assert result.exit_code == 1
    assert f"no Ray cluster answers at {address}" in result.output
    assert time.monotonic() - started < 30
    assert not (tmp_path / "ludao-home" / "indexes").exists()  # nothing half-written


@pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed: pip install 'ludao[ray]'")
def test_an_address_that_is_not_host_port_is_refused(tmp_path: Path) -> None:
    # `ludao index --ray PATH` reads PATH as the address: say so instead of trying it.
    result = CliRunner().invoke(cli, ["index", "--ray", str(corpus(tmp_path))])
    assert result.exit_code != 0
    assert "is not host:port" in result.output


# -- the sticky routing, piece by piece --------------------------------------------------------


def scope(*headers: tuple[str, str], scheme: str = "http") -> dict:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    return {"type": "http", "scheme": scheme, "headers": raw, "path": "/"}


@pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed: pip install 'ludao[ray]'")
@pytest.mark.parametrize(
    ("headers", "wanted"),
    [
        ((), None),
        ((("cookie", "ludao_replica=abc123"),), "abc123"),
        ((("cookie", "theme=dark; ludao_replica=r9; lang=zh"),), "r9"),
        ((("cookie", "other_ludao_replica=x"),), None),
        ((("cookie", "ludao_replica="),), None),
        ((("Cookie", 'ludao_replica="unterminated'),), None),
        ((("X-Ludao-Replica", "hdr1"), ("cookie", "ludao_replica=c1")), "hdr1"),
    ],
)
def test_wanted_replica(headers: tuple, wanted: str | None) -> None:
    from qa.cluster.affinity import wanted_replica

    assert wanted_replica(scope(*headers)) == wanted


@pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed: pip install 'ludao[ray]'")
@pytest.mark.parametrize(
    ("request_scope", "sets_cookie", "secure"),
    [
        (scope(), True, False),
        (scope(scheme="https"), True, True),
        (scope(("cookie", "ludao_replica=me")), False, False),
        (scope(("cookie", "ludao_replica=gone")), True, False),
    ],
)
def test_replica_stamp(request_scope: dict, sets_cookie: bool, secure: bool) -> None:
    import asyncio

    from qa.cluster.affinity import ReplicaStamp

    sent: list[dict] = []

    async def app(scope: dict, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(ReplicaStamp(app, "me")(request_scope, None, send))
    headers = dict(sent[0]["headers"])
    assert headers[b"a"] == b"b" and headers[b"x-ludao-replica"] == b"me"
    cookie = headers.get(b"set-cookie", b"").decode()
    assert bool(cookie) == sets_cookie
    if sets_cookie:
        assert cookie.startswith("ludao_replica=me;") and "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie and ("Secure" in cookie) == secure
    assert sent[1]["body"] == b"ok"


@pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed: pip install 'ludao[ray]'")
def test_router_prefers_the_stamped_replica_and_spreads_the_rest() -> None:
    import asyncio
    import pickle
    from types import SimpleNamespace

    from qa.cluster.affinity import StickyRouter

    replicas = [SimpleNamespace(replica_id=SimpleNamespace(unique_id=f"r{i}")) for i in range(4)]

    def pending(*headers: tuple[str, str]) -> SimpleNamespace:
        request = SimpleNamespace(asgi_scope=scope(*headers))
        return SimpleNamespace(args=[pickle.dumps(request)])

    router = StickyRouter.__new__(StickyRouter)  # choose_replicas needs no router state
    choose = router.choose_replicas
    stuck = asyncio.run(choose(replicas, pending(("cookie", "ludao_replica=r2"))))
    assert [[r.replica_id.unique_id for r in rank] for rank in stuck] == [["r2"]]
    picks = set()
    for _ in range(40):
        (rank,) = asyncio.run(choose(replicas, pending(("cookie", "ludao_replica=dead"))))
        assert len(rank) == 2
        picks.update(r.replica_id.unique_id for r in rank)
    assert picks == {"r0", "r1", "r2", "r3"}
    garbage = SimpleNamespace(args=[b"not a pickle"])
    assert len(asyncio.run(choose(replicas, garbage))[0]) == 2
