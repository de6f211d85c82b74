"""Cold start of ``ludao serve`` (issue #14): seconds from launch until it answers, and why.

Run ``python -m benchmarks.cold_start --rounds 3 --out benchmarks/results/cold_start.json``.
Each round starts a fresh ``ludao serve`` on a free port (models already converted, the index
already built: a restart, not a first install), polls ``GET /healthz`` every 50 ms until it
answers 200, asks one question through ``POST /api/ask`` to check that the server is warm, and
stops the process by its PID. Each heavy import is also timed alone in a fresh interpreter.
The stages come from the server's own log lines (their
timestamps): imports before the first log line, the index, the embedding model, the lean path,
the reader, the warm-up question, the web app.

``--variant NAME:KEY=VALUE,...`` runs the server with extra environment variables as a further
variant in the same rounds (``--variant serial:LUDAO_PARALLEL_LOAD=0``), so the ratio to the
default comes from one run on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks.checkouts import commit_of, parse_checkouts, parse_variants
from benchmarks.query_engines import LoadMeter, cpu_info

STAGES = {
    # stage name: (regex of the log line that ends it)
    "index": r"qa\.index\.update: (reusing index|loaded index)",
    "embedding_model": r"embedding model runs at",
    "lean_path": r"lean path ready",
    "reader": r"reader .* loaded, runs at",
    "warm_up": r"warmed up in",
    "listening": r"Uvicorn running on|Application startup complete",
}
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stamp(line: str) -> float | None:
    match = _STAMP.match(line)
    if not match:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def stage_times(log: str, launched: float) -> dict:
    """Seconds after launch at which each stage's log line appeared (first occurrence)."""
    out: dict = {}
    first = None
    for line in log.splitlines():
        stamp = _stamp(line)
        if stamp is None:
            continue
        first = first if first is not None else stamp
        for name, pattern in STAGES.items():
            if name not in out and re.search(pattern, line):
                out[name] = round(stamp - launched, 2)
    if first is not None:
        out["first_log_line"] = round(first - launched, 2)
    return out


def one_start(env: dict[str, str], timeout: float = 180.0, cwd: Path | None = None) -> dict:
    port = _free_port()
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as log:
        launched = time.time()
        process = subprocess.Popen(
            [sys.executable, "-m", "qa", "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            cwd=cwd,
        )
        ready = answered = None
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                while time.time() - launched < timeout and process.poll() is None:
                    try:
                        if client.get("/healthz").status_code == 200:
                            ready = time.time() - launched
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.05)
                if ready is not None:
                    t0 = time.perf_counter()
                    reply = client.post("/api/ask", json={"question": "厦门的研发投入强度是多少？"})
                    answered = {
                        "status": reply.status_code,
                        "ms": round((time.perf_counter() - t0) * 1000, 1),
                    }
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.seek(0)
        text = log.read()
    if ready is None:
        raise RuntimeError(f"server did not become ready; its log ends:\n{text[-3000:]}")
    return {"ready_s": round(ready, 2), "first_answer": answered, **stage_times(text, launched)}


HEAVY_IMPORTS = ("torch", "transformers", "sentence_transformers", "gradio", "faiss", "jieba")


def import_seconds(modules: tuple[str, ...] = HEAVY_IMPORTS) -> dict[str, float]:
    """Seconds to import each module alone in a fresh interpreter (startup subtracted)."""

    def run(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - t0

    bare = min(run("pass") for _ in range(2))
    return {m: round(min(run(f"import {m}") for _ in range(2)) - bare, 2) for m in modules}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", action="append", default=[], help="NAME:KEY=VALUE,...")
    parser.add_argument("--checkout", action="append", default=[], help="NAME:PATH of a tree")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    variants: dict[str, dict[str, str]] = {"default": {}, **parse_variants(args.variant)}
    trees = parse_checkouts(args.checkout)
    variants.update((name, {}) for name in trees)
    one_start({})  # page cache: every measured round starts with the files in memory
    meter = LoadMeter()
    meter.start()
    rounds: dict[str, list[dict]] = {name: [] for name in variants}
    for number in range(args.rounds):
        order = list(variants)[number % len(variants) :] + list(variants)[: number % len(variants)]
        for name in order:
            rounds[name].append(one_start(variants[name], cwd=trees.get(name)))
            print(name, rounds[name][-1], flush=True)
    imports = import_seconds()
    print("imports", imports, flush=True)
    summary = {}
    for name, runs in rounds.items():
        keys = [k for k in runs[0] if isinstance(runs[0][k], (int, float))]
        summary[name] = {k: round(statistics.median(r[k] for r in runs if k in r), 2) for k in keys}
    result = {
        "command": "python -m benchmarks.cold_start " + " ".join(given),
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {**cpu_info(), **meter.stop()},
        "variants": variants,
        "checkouts": {name: commit_of(tree) for name, tree in trees.items()},
        "median": summary,
        "import_seconds_alone": imports,
        "rounds": rounds,
    }
    print(json.dumps(result["median"], indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", "utf-8")


if __name__ == "__main__":
    main()
