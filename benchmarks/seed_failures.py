"""Every question Ludao gets wrong on the seed article, with the stage that failed.

    python -m benchmarks.seed_failures --out benchmarks/results/seed_failures.md

Each question goes through the default pipeline (retrieval + reader, end to end). A question
counts as a failure when the top answer is not an exact match (or, for an unanswerable one, when
Ludao answered). The cause is read off what each stage returned, by rules that know nothing of
the questions:

- ``retrieval``: no retrieved passage contains a gold answer, so the reader could not succeed;
- ``declined``: a gold answer was in the passages, but the reader said the documents do not say;
- ``boundary``: the answer overlaps a gold answer (F1 > 0): too long, too short or shifted;
- ``wrong span``: the gold passage was retrieved, the answer shares nothing with the gold;
- ``answered unanswerable``: the article does not answer it, the reader answered anyway.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from qa.config import REPO_ROOT, Settings
from qa.eval.metrics import Language, detect_language, has_relevant_passage, score_answer
from qa.eval.question_files import SEED_QUESTIONS, load_examples

QUESTION_FILES = (
    REPO_ROOT.parent / "shared" / "eval" / "seed_dev.jsonl",
    SEED_QUESTIONS,
)


def classify(
    golds: tuple[str, ...], answer: str | None, passages: list[str], *, language: Language = "zh"
) -> str | None:
    """The failed stage, or ``None`` when the top answer is right (metric of ``language``)."""
    if not golds:
        return None if answer is None else "answered unanswerable"
    scored = None if answer is None else score_answer(answer, golds, language=language)
    if scored is not None and scored.exact_match:
        return None
    if not has_relevant_passage(golds, passages):
        return "retrieval"
    if scored is None:
        return "declined"
    return "boundary" if scored.f1 > 0 else "wrong span"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=Path, nargs="+", default=list(QUESTION_FILES))
    parser.add_argument("--out", type=Path, default=None, help="markdown report")
    args = parser.parse_args(argv)

    from qa.pipeline import Pipeline

    pipeline = Pipeline.from_settings(Settings.load())
    rows = []
    for path in args.questions:
        if not path.is_file():
            continue
        for example in load_examples(path):
            response = pipeline.ask(example.question)
            answer = None if response.no_answer or not response.answers else response.answers[0]
            text = answer.text if answer else None
            cause = classify(
                tuple(example.answers),
                text,
                [h.passage.text for h in response.hits],
                language=detect_language(example.question),
            )
            rows.append(
                {
                    "file": path.name,
                    "id": example.id,
                    "question": example.question,
                    "gold": list(example.answers),
                    "answer": text,
                    "best_span": response.answers[0].text if response.answers else None,
                    "cause": cause,
                }
            )
    failures = [r for r in rows if r["cause"]]
    summary = {
        "questions": len(rows),
        "failures": len(failures),
        "by_cause": dict(Counter(r["cause"] for r in failures).most_common()),
        "reader": pipeline.reader.name,
    }
    if args.out:
        args.out.write_text(_markdown(summary, failures), encoding="utf-8")
        args.out.with_suffix(".json").write_text(
            json.dumps({"summary": summary, "failures": failures}, ensure_ascii=False, indent=1)
            + "\n",
            encoding="utf-8",
        )
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return summary


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ") if text is not None else "—"


def _markdown(summary: dict, failures: list[dict]) -> str:
    lines = [
        "# Seed article: the questions Ludao gets wrong, and where",
        "",
        "`python -m benchmarks.seed_failures --out benchmarks/results/seed_failures.md` "
        f"(reader `{summary['reader']}`, default settings, end to end).",
        "",
        f"{summary['failures']} of {summary['questions']} questions are not exact matches: "
        + ", ".join(f"{n} {cause}" for cause, n in summary["by_cause"].items())
        + ". Causes are assigned by rule (see the script's docstring).",
        "",
        "| cause | file | question | gold | Ludao's answer (best span if declined) |",
        "|---|---|---|---|---|",
    ]
    for r in sorted(failures, key=lambda r: (r["cause"], r["file"], r["id"])):
        said = r["answer"] if r["answer"] is not None else f"(declined; best: {r['best_span']})"
        lines.append(
            f"| {r['cause']} | {r['file']} | {_cell(r['question'])} | "
            f"{_cell(' / '.join(r['gold']) or '(unanswerable)')} | {_cell(said)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
