"""A synthetic follow-up set derived from CMRC 2018 dev at run time (evaluation only; never saved
into the repository).

Recipe. A CMRC paragraph carries several questions. For each pair of consecutive questions
(A, B) of one paragraph where B has an answer:

1. tokenise both with jieba; the *shared subject* is the longest run of whole words of B that
   also occurs in A, holds a noun (n*, a name or a Latin word), is at least two characters long
   and is not all of B;
2. the follow-up is B with that subject taken away, alternating by pair number:
   - even pairs: the subject is written as a pronoun, 他 for a person name (jieba ``nr``),
     else 它 (它的/他的 when a 的 follows already stays 它的/他的);
   - odd pairs, when the subject opens B: it is dropped, leaving a question without a subject
     (a following 的 goes with it); otherwise the pronoun form is used;
3. the history is [A], the complete question is B, the gold answers are B's.

Pairs without a shared subject are skipped, so the set measures the resolver on text it was not
written against, with follow-ups of the kinds users write (pronoun, dropped subject).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SyntheticFollowUp:
    id: str
    history: tuple[str, ...]
    question: str
    complete: str
    answers: tuple[str, ...]
    kind: str
    paragraph_id: str


def _shared_subject(first: str, second: str) -> tuple[int, int, bool] | None:
    """``(start, end, is_person)`` in ``second`` of the longest word run also found in ``first``."""
    import jieba.posseg as pseg

    words = []
    position = 0
    for pair in pseg.cut(second):
        words.append((position, position + len(pair.word), pair.flag))
        position += len(pair.word)
    best: tuple[int, int, bool] | None = None
    for i in range(len(words)):
        for j in range(i, len(words)):
            start, end = words[i][0], words[j][1]
            text = second[start:end]
            if text not in first:
                break
            flags = [w[2] for w in words[i : j + 1]]
            nounish = any(f.startswith("n") or f == "eng" for f in flags)
            if not nounish or end - start < 2 or any(f in {"x", "r", "uj"} for f in flags):
                continue
            if end - start >= len(second.rstrip("？?")) - 1:
                continue
            if not _stands_apart(words, second, i, j):
                continue
            if best is None or end - start > best[1] - best[0]:
                best = (start, end, flags == ["nr"])
    return best


def _stands_apart(words: list[tuple[int, int, str]], text: str, i: int, j: int) -> bool:
    """Whether words ``i..j`` form a whole phrase: no noun, name or name dot glued on either
    side (莱昂德罗 of 莱昂德罗·内托, 模式 of 战国史模式 are not subjects of their own)."""

    def glued(k: int) -> bool:
        if not 0 <= k < len(words):
            return False
        start, end, flag = words[k]
        return flag.startswith("n") or flag == "eng" or text[start:end] in {"·", "•", "-"}

    return not glued(i - 1) and not glued(j + 1)


def derive_followups(path: str | Path, *, limit: int | None = None) -> list[SyntheticFollowUp]:
    """Follow-ups made from the consecutive questions of each CMRC paragraph (see the recipe)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    made: list[SyntheticFollowUp] = []
    pair = 0
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            qas = [q for q in paragraph.get("qas", []) if q.get("question", "").strip()]
            for first, second in itertools.pairwise(qas):
                answers = tuple(dict.fromkeys(a["text"] for a in second.get("answers", [])))
                a_text, b_text = first["question"].strip(), second["question"].strip()
                if not answers:
                    continue
                subject = _shared_subject(a_text, b_text)
                if subject is None:
                    continue
                start, end, person = subject
                drop = pair % 2 == 1 and start == 0
                if drop:
                    rest = b_text[end:]
                    question = rest[1:] if rest.startswith("的") else rest
                    kind = "dropped-subject"
                else:
                    question = b_text[:start] + ("他" if person else "它") + b_text[end:]
                    kind = "pronoun"
                if len(question.rstrip("？?")) < 2:
                    continue
                made.append(
                    SyntheticFollowUp(
                        id=f"cmrc-{second['id']}",
                        history=(a_text,),
                        question=question,
                        complete=b_text,
                        answers=answers,
                        kind=kind,
                        paragraph_id=str(paragraph.get("id", "")),
                    )
                )
                pair += 1
                if limit is not None and len(made) >= limit:
                    return made
    return made
