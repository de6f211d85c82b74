"""Follow-up questions: answered with the history, alone, and as the complete question.

    python -m benchmarks.followups --out benchmarks/results/followups
    python -m benchmarks.followups --resolver-only          # latency of the resolver alone

Sets:

- ``qa/eval/data/followups.jsonl``: hand-written on the default corpus. Lines carry ``kind``
  (slot-year, yoy, pronoun, topic, …, unanswerable, standalone), ``history`` (the earlier
  question), ``question`` (the follow-up), ``complete`` (the same information asked in full)
  and ``answers``. Stand-alone lines follow an unrelated question and must not be rewritten.
- CMRC 2018 dev, derived at run time by ``benchmarks.followups_cmrc`` (recipe there), asked
  open-domain over the file's own paragraphs like ``ludao eval`` does.

Three ways of asking each follow-up: ``history`` (the earlier turns go along, their answers
being whatever the pipeline answered, as in the chat), ``alone`` (today's behaviour without a
conversation) and ``complete``. The seed sets are also asked without history, to show that
nothing changed for questions asked on their own. Scores use ``qa.eval`` like ``ludao eval``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.followups_cmrc import derive_followups
from qa.config import REPO_ROOT, Settings
from qa.conversation import FollowUpResolver, Turn, resolver_for
from qa.conversation.chinese import tokenize
from qa.eval import QAExample, evaluate, load_examples, percentile, pipeline_asker
from qa.eval.question_files import SEED_QUESTIONS

logger = logging.getLogger(__name__)

OWN_SET = REPO_ROOT / "qa" / "eval" / "data" / "followups.jsonl"
SHARED = REPO_ROOT.parent / "shared"
CMRC_DEV = SHARED / "data" / "qa" / "cmrc2018_dev.json"
SEED_DEV = SHARED / "eval" / "seed_dev.jsonl"


def load_set(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _example(item: dict, question: str, *, history: bool) -> QAExample:
    turns = tuple(Turn(q) for q in item["history"]) if history else ()
    return QAExample(str(item["id"]), question, tuple(item["answers"]), history=turns)


def score_modes(pipeline, items: list[dict], top_k: int) -> dict:
    """EM/F1 of the follow-ups asked with history, alone, and as the complete question."""
    ask = pipeline_asker(pipeline, top_k)
    name = pipeline.reader.name
    out = {}
    for mode, examples in (
        ("history", [_example(i, i["question"], history=True) for i in items]),
        ("alone", [_example(i, i["question"], history=False) for i in items]),
        ("complete", [_example(i, i["complete"], history=False) for i in items]),
    ):
        report, predictions = evaluate(
            examples, ask, reader_name=name, embedding_model=None, mode=mode, with_retrieval=True
        )
        data = report.to_dict()
        out[mode] = {k: data[k] for k in ("n", "exact_match", "f1", "no_answer_accuracy")}
        out[mode]["recall@5"] = data["recall@5"]
        if mode == "history":
            out[mode]["rewritten"] = data["rewritten"]
            out["examples"] = [
                {"id": p.id, "question": p.question, "interpreted_as": p.interpreted_as,
                 "prediction": p.prediction, "gold": list(p.gold)}
                for p in predictions
            ]  # fmt: skip
    return out


def resolver_latency(resolver: FollowUpResolver, items: list[dict]) -> dict:
    """Milliseconds per resolution, cold (jieba's per-text cache emptied first) and warm."""
    for item in items:  # load jieba's dictionary and models before timing
        resolver.resolve(item["question"], item["history"])
    cold, warm = [], []
    for _ in range(3):
        for item in items:
            tokenize.cache_clear()
            t0 = time.perf_counter()
            resolver.resolve(item["question"], item["history"])
            cold.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            resolver.resolve(item["question"], item["history"])
            warm.append((time.perf_counter() - t0) * 1000)
    return {
        "n": len(cold),
        "cold_p50_ms": round(percentile(cold, 50), 3),
        "cold_p95_ms": round(percentile(cold, 95), 3),
        "warm_p50_ms": round(percentile(warm, 50), 3),
        "corpus_chars": len(resolver.corpus_text),
    }


def _false_rewrites(resolver: FollowUpResolver, questions: list[str]) -> dict:
    """Each stand-alone question asked after the one before it (and after one 7 further on)."""
    asked = rewritten = 0
    for i, question in enumerate(questions):
        for earlier in (questions[i - 1], questions[(i + 7) % len(questions)]):
            asked += 1
            rewritten += resolver.resolve(question, [earlier]).interpreted_as is not None
    return {"asked": asked, "rewritten": rewritten}


def run(args: argparse.Namespace) -> dict:
    from qa.eval.runner import squad_paragraph_pipeline
    from qa.pipeline import Pipeline

    settings = Settings.load()
    items = load_set(OWN_SET)
    followups = [i for i in items if i["kind"] != "standalone"]
    standalone = [i for i in items if i["kind"] == "standalone"]
    result: dict = {"own_set": str(OWN_SET.relative_to(REPO_ROOT))}
    pipeline = Pipeline.from_settings(settings)
    resolver = resolver_for(pipeline.retriever.passages)
    result["resolver_latency"] = resolver_latency(resolver, followups)
    seeds = [e.question for e in load_examples(SEED_QUESTIONS)]
    result["seed_questions_after_another"] = _false_rewrites(resolver, seeds)
    if SEED_DEV.is_file():
        dev = [e.question for e in load_examples(SEED_DEV)]
        result["seed_dev_after_another"] = _false_rewrites(resolver, dev)
    if args.resolver_only:
        return result
    pipeline = replace(pipeline, cache_size=0)  # every mode pays for its own answers
    result["own_followups"] = score_modes(pipeline, followups, args.top_k)
    result["own_standalone"] = score_modes(pipeline, standalone, args.top_k)
    by_kind: dict[str, list[dict]] = {}
    for item in followups:
        by_kind.setdefault(item["kind"], []).append(item)
    result["own_kinds"] = {kind: len(group) for kind, group in by_kind.items()}
    ask = pipeline_asker(pipeline, args.top_k)
    for name, path in (("seed_questions", SEED_QUESTIONS), ("seed_dev", SEED_DEV)):
        if path.is_file():
            report, _ = evaluate(
                load_examples(path), ask, reader_name=pipeline.reader.name,
                embedding_model=settings.embedding_model, mode="knowledge base",
                with_retrieval=True,
            )  # fmt: skip
            data = report.to_dict()
            result[name] = {k: data[k] for k in ("n", "exact_match", "f1", "no_answer_accuracy")}
    if CMRC_DEV.is_file() and args.cmrc_limit:
        synthetic = derive_followups(CMRC_DEV, limit=args.cmrc_limit)
        cmrc_items = [
            {"id": s.id, "history": list(s.history), "question": s.question,
             "complete": s.complete, "answers": list(s.answers), "kind": s.kind}
            for s in synthetic
        ]  # fmt: skip
        cmrc = squad_paragraph_pipeline(CMRC_DEV, settings)
        result["cmrc_followups"] = score_modes(cmrc, cmrc_items, args.top_k)
        result["cmrc_followups"]["kinds"] = {
            k: sum(i["kind"] == k for i in cmrc_items) for k in ("pronoun", "dropped-subject")
        }
    return result


def _markdown(result: dict) -> str:
    lines = ["# Follow-up questions", "", "Command: `python -m benchmarks.followups`", ""]
    lat = result["resolver_latency"]
    lines += [
        f"Resolver alone: p50 {lat['cold_p50_ms']} ms (cold), p95 {lat['cold_p95_ms']} ms, "
        f"warm p50 {lat['warm_p50_ms']} ms over {lat['n']} resolutions.",
        "",
        "| set | mode | n | EM | F1 | no-answer acc. | rewritten |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in ("own_followups", "own_standalone", "cmrc_followups"):
        block = result.get(key)
        if not block:
            continue
        for mode in ("history", "alone", "complete"):
            row = block[mode]
            rewritten = row.get("rewritten", "")
            lines.append(
                f"| {key} | {mode} | {row['n']} | {row['exact_match']} | {row['f1']} | "
                f"{row['no_answer_accuracy']} | {rewritten} |"
            )
    lines.append("")
    for key in ("seed_questions_after_another", "seed_dev_after_another"):
        if key in result:
            r = result[key]
            lines.append(f"- {key}: {r['rewritten']} of {r['asked']} rewritten")
    for key in ("seed_questions", "seed_dev"):
        if key in result:
            r = result[key]
            lines.append(f"- {key} (no history): EM {r['exact_match']}, F1 {r['f1']}, n {r['n']}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--cmrc-limit", type=int, default=300, help="0 skips CMRC")
    parser.add_argument("--resolver-only", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = run(args)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    if args.out:
        Path(args.out + ".json").write_text(text + "\n", encoding="utf-8")
        if not args.resolver_only:
            Path(args.out + ".md").write_text(_markdown(result), encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
