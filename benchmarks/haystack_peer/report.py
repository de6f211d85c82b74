"""The Markdown page of the side-by-side benchmark, written from the JSON report alone.

Keeping the page a pure function of the JSON means the two files cannot disagree, and the page
can be rewritten from a saved JSON without running anything.
"""

from __future__ import annotations

from typing import Any

SYSTEM_NAMES = {"ludao": "Ludao", "haystack": "Haystack"}
VARIANT_NAMES = {
    "dense_only": "dense only",
    "bm25_only": "BM25 only",
    "bm25_only_legacy_regex": "BM25 only, 2.x regex `(?u)\\b\\w\\w+\\b`",
    "hybrid_legacy_regex": "hybrid, BM25 with the 2.x regex",
}


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{value}"


def _corpus_section(result: dict[str, Any]) -> list[str]:
    ratio = result["latency_ratio"]
    lines = [
        f"### {result['name']}",
        "",
        f"{result['passages']} passages, {result['questions']} questions "
        f"({result['answerable']} answerable). **Latency ratio Haystack / Ludao: "
        f"{ratio['p50']}× at p50** (means: {ratio['mean']}×; median of per-question ratios: "
        f"{ratio['median_of_per_question']}×).",
        "",
        "| system | p50 ms | p95 ms | mean ms | recall@5 | EM | F1 | EM best span | "
        "F1 best span | said no-answer | index build s | models load s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, scores in result["systems"].items():
        latency = scores["latency_ms"]
        lines.append(
            f"| {SYSTEM_NAMES.get(key, key)} | {latency['p50']} | {latency['p95']} | "
            f"{latency['mean']} | {_fmt(scores['recall_at_5'])} | {scores['exact_match']} | "
            f"{scores['f1']} | {scores['exact_match_best_span']} | {scores['f1_best_span']} | "
            f"{scores['no_answer_count']} | {scores['index_build_s']} | "
            f"{scores['models_load_s']} |"
        )
    lines += ["", "Recall@5 of retrieval variants (no reader, not timed):", ""]
    lines += ["| system | variant | recall@5 |", "| --- | --- | ---: |"]
    for system, variants in result["retrieval_variants"].items():
        for name, value in variants.items():
            label = VARIANT_NAMES.get(name, name)
            lines.append(f"| {SYSTEM_NAMES.get(system, system)} | {label} | {_fmt(value)} |")
    load = result["load_average"]
    lines += [
        "",
        f"Load average (1/5/15 min) at the start of the timed loop: {load['start']}, "
        f"at its end: {load['end']}.",
        "",
    ]
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """The page: headline, one table per corpus, settings, versions, command and machine."""
    lines = ["# Ludao vs Haystack, side by side", ""]
    headline = report.get("headline")
    if headline:
        lines += [f"**{headline}**", ""]
    for result in report["corpora"]:
        lines += _corpus_section(result)
    lines += [
        "### Columns",
        "",
        "- Latency: one whole question (retrieve 5 passages, read them), measured inside each "
        "system's own process after a warm-up; index building and model loading are excluded "
        "and shown on their own.",
        "- recall@5: share of answerable questions with a gold answer inside one of the 5 "
        "passages (whitespace removed), Ludao's `answer_in_text`.",
        "- EM / F1: Ludao's CMRC 2018 metric on each system's top answer as a user would see "
        "it (a no-answer decision counts as an empty answer); *best span* scores the best span "
        "even where the system declined, as published CMRC numbers do.",
        "- said no-answer: questions where the system's top answer was 'no answer'.",
        "",
        "### Setup",
        "",
    ]
    precision = report.get("precision")
    if precision:
        lines.append(
            f"- Precision: Ludao's reader ran at {precision['ludao_reader']} and its embedding "
            f"model at {precision['ludao_embedding']} (bf16 = autocast, chosen by `auto` where "
            f"the CPU multiplies bf16 natively); Haystack's models were loaded in "
            f"{precision['haystack']}."
        )
    lines += [f"- {note}" for note in report["notes"]]
    lines += ["", "### Versions", ""]
    for side, versions in report["versions"].items():
        joined = ", ".join(f"{k} {v}" for k, v in versions.items())
        lines.append(f"- {side}: {joined}")
    machine = report["machine"]
    lines += [
        "",
        "### Command and machine",
        "",
        f"`{report['command']}`",
        "",
        f"{machine['cpus']} CPUs ({machine['processor']}), torch threads {machine['torch_threads']}"
        f" in each process, Python {machine['python']}, started {report['started']}, "
        f"took {report['wall_s']} s in all. The machine was shared with other work; compare "
        "the load averages above.",
        "",
    ]
    return "\n".join(lines)
