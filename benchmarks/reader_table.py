"""The model card's score table, before vs after, from two runs of ``benchmarks/reader_eval.sh``.

Usage (from the repo root), after running the evaluation into two folders::

    LUDAO_RESULTS=artifacts/before bash benchmarks/reader_eval.sh OLD_READER
    LUDAO_RESULTS=artifacts/after bash benchmarks/reader_eval.sh models/reader-zh
    python -m benchmarks.reader_table artifacts/before artifacts/after > table.md

Each row is one question set: EM and F1 with the best span, EM and F1 with the reader's
no-answer decisions, and the share of wrong best spans that are boundary errors.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SETS = (
    ("cmrc_dev_gold.json", "CMRC 2018 dev, gold passage"),
    ("cmrc_dev_open_all.json", "CMRC 2018 dev, open domain (848 paragraphs)"),
    ("reader_xquad_zh_gold.json", "XQuAD zh, gold passage"),
    ("reader_xquad_en_gold.json", "XQuAD en, gold passage"),
    ("reader_xquad_enq_zhp_gold.json", "XQuAD en question / zh paragraph"),
    ("seed_dev.json", "seed_dev.jsonl (end to end)"),
    ("seed_questions.json", "seed_questions.jsonl (end to end)"),
)


def _cells(report: dict | None) -> list[str]:
    if report is None:
        return ["–"] * 5
    share = report.get("boundary_error_share")
    return [
        f"{report['exact_match_forced']:.1f}",
        f"{report['f1_forced']:.1f}",
        f"{report['exact_match']:.1f}",
        f"{report['f1']:.1f}",
        "–" if share is None else f"{share:.1f}",
    ]


def _read(folder: Path, name: str) -> dict | None:
    path = folder / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def table(before: Path, after: Path) -> str:
    head = (
        "| set | n | EM before | F1 before | EM / F1 with decisions, before | boundary errors "
        "before (%) | EM after | F1 after | EM / F1 with decisions, after | boundary errors "
        "after (%) |"
    )
    lines = [head, "|" + "---|" * 10]
    for name, label in SETS:
        old, new = _read(before, name), _read(after, name)
        if old is None and new is None:
            continue
        n = (new or old or {}).get("n", "–")
        a, b = _cells(old), _cells(new)
        lines.append(
            f"| {label} | {n} | {a[0]} | {a[1]} | {a[2]} / {a[3]} | {a[4]} "
            f"| {b[0]} | {b[1]} | {b[2]} / {b[3]} | {b[4]} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args()
    print(table(args.before, args.after))


if __name__ == "__main__":
    main()
