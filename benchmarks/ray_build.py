"""Index building on Ray (issue #16): passages per second with 1 and 2 Ray workers, in one run.

``python -m benchmarks.ray_build --out benchmarks/results/ray_build.json`` chunks CMRC 2018 train
paragraphs (a training file, read from ``../shared/data/qa``) into passages as ``ludao index``
does, starts a 2-node Ray cluster on this machine (one CPU per node, ``qa.cluster.local_cluster``)
and embeds them with 1 worker and with 2, alternating, ``--rounds`` times; the local build
(``SentenceEncoder.encode_passages``, all cores, no Ray) runs in the same rounds as the baseline.
Each Ray call starts its actors (model load) anew, so a call with a handful of passages is timed
too: that is the fixed start-up, and (time − start-up) gives the steady per-worker rate from
which the 1M-passage projection is made.

On a 2-core machine two 1-thread workers use the same two cores as the local build's two
threads: the ratio here says what Ray's overhead costs, not what a second machine would add.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.query_engines import cpu_info
from qa.config import REPO_ROOT, portable_path

logger = logging.getLogger("benchmarks.ray_build")
CMRC_TRAIN = REPO_ROOT.parent / "shared" / "data" / "qa" / "cmrc2018_train.json"
TINY = 16


def passages(paragraphs: int) -> list[str]:
    """Texts of the passages ``ludao index`` makes from the first ``paragraphs`` paragraphs."""
    from qa.config import Settings
    from qa.corpus import corpus_from_settings

    data = json.loads(CMRC_TRAIN.read_text(encoding="utf-8"))["data"]
    contexts = [p["context"] for a in data for p in a["paragraphs"]][:paragraphs]
    with tempfile.TemporaryDirectory() as folder:
        for i in range(0, len(contexts), 20):
            text = "\n\n".join(contexts[i : i + 20])
            (Path(folder) / f"cmrc_{i // 20:04d}.txt").write_text(text, encoding="utf-8")
        corpus = corpus_from_settings(Settings.load(corpus=(folder,)))
        return [p.text for p in corpus.passages]


def hours(rate: float) -> float:
    """Hours to embed a million passages at ``rate`` passages per second."""
    return round(1e6 / rate / 3600, 2)


def timed(fn: object, texts: list[str]) -> float:
    started = time.perf_counter()
    fn(texts, show_progress=False)  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paragraphs", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    import torch

    from embeddings.encoder import SentenceEncoder
    from qa.cluster import connect
    from qa.cluster.embedding import RayPassageEncoder
    from qa.cluster.local_cluster import LocalRayCluster

    texts = passages(args.paragraphs)
    logger.info("%d passages from %d CMRC train paragraphs", len(texts), args.paragraphs)
    local = SentenceEncoder()
    local.encode_passages(texts[:8], show_progress=False)  # load and warm
    times: dict[str, list[float]] = {"local": [], "ray_1": [], "ray_2": []}
    startup: dict[str, list[float]] = {"ray_1": [], "ray_2": []}
    with LocalRayCluster(nodes=2, cpus_per_node=1) as cluster:
        os.environ.update(cluster.client_env())
        ray = connect(cluster.address)
        pools = {f"ray_{n}": RayPassageEncoder(local, ray, workers=n) for n in (1, 2)}
        for round_ in range(args.rounds):
            order = ["local", "ray_1", "ray_2"] if round_ % 2 == 0 else ["ray_2", "ray_1", "local"]
            for name in order:
                if name == "local":
                    torch.set_num_threads(os.cpu_count() or 1)
                    times[name].append(timed(local.encode_passages, texts))
                else:
                    startup[name].append(timed(pools[name].encode_passages, texts[:TINY]))
                    times[name].append(timed(pools[name].encode_passages, texts))
                logger.info("round %d %s: %.1f s", round_ + 1, name, times[name][-1])
        ray.shutdown()

    n = len(texts)
    rows = {}
    for name, values in times.items():
        seconds = statistics.median(values)
        row = {"seconds": [round(v, 2) for v in values], "passages_per_s": round(n / seconds, 1)}
        if name in startup:
            start = statistics.median(startup[name])
            workers = int(name.split("_")[1])
            steady = n / max(seconds - start, 1e-9)
            row |= {
                "startup_s": round(start, 2),
                "steady_passages_per_s": round(steady, 1),
                "steady_per_worker": round(steady / workers, 1),
            }
        rows[name] = row
    per_worker = rows["ray_1"]["steady_per_worker"]
    projection = {
        f"{machines} machines x {cores} cores": round(
            1e6 / (per_worker * machines * cores) / 3600, 2
        )
        for machines, cores in ((1, 2), (4, 8), (16, 16), (64, 32))
    }
    result = {
        "benchmark": "benchmarks.ray_build",
        "machine": cpu_info(),
        "data": portable_path(CMRC_TRAIN),
        "passages": n,
        "rounds": args.rounds,
        "rows": rows,
        "ratio_2_vs_1_workers": round(
            rows["ray_2"]["passages_per_s"] / rows["ray_1"]["passages_per_s"], 2
        ),
        "ratio_ray_2_vs_local": round(
            rows["ray_2"]["passages_per_s"] / rows["local"]["passages_per_s"], 2
        ),
        "projected_hours_for_1M_passages": projection,
        "projection_basis": "1e6 / (steady 1-thread worker rate x workers), one worker per "
        "core, start-up and writing the index left out",
    }
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
