"""Training data: SQuAD-format files read into span examples, the held-out split, and windows.

Only the training files of ``../shared/data/qa`` are read (``EVALUATION_ONLY_FILES`` are refused);
Traditional Chinese is converted to Simplified with OpenCC, keeping answer offsets honest.
"""

from __future__ import annotations

import json
import logging
import random
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..readers.windows import answer_token_span, make_windows
from .config import (
    ENGLISH_TRAIN_FILES,
    EVALUATION_ONLY_FILES,
    TRADITIONAL_PREFIX,
    TrainConfig,
)
from .examples import SpanExample

logger = logging.getLogger(__name__)


def read_span_examples(path: Path, *, to_simplified: bool = False) -> list[SpanExample]:
    """Read a SQuAD-format file into span examples, one per question (first gold answer).

    With ``to_simplified`` the Traditional text is converted with OpenCC t2s. The conversion is
    character for character almost always; an answer that no longer sits at its offset is moved
    to its only occurrence in the converted paragraph, or dropped when it occurs more than once.
    """
    if path.name in EVALUATION_ONLY_FILES:
        raise ValueError(f"{path.name} is for evaluation only and must not be trained on")
    convert = _t2s() if to_simplified else (lambda s: s)
    data = json.loads(path.read_text(encoding="utf-8"))
    examples: list[SpanExample] = []
    dropped = 0
    for a, article in enumerate(data["data"]):
        for p, paragraph in enumerate(article["paragraphs"]):
            raw_context = paragraph["context"]
            context = convert(raw_context)
            key = f"{path.stem}:{a}:{p}"
            for qa in paragraph["qas"]:
                question = convert(qa["question"]).strip()
                if not question or not qa.get("answers"):
                    continue
                gold = qa["answers"][0]
                start = int(gold["answer_start"])
                text = convert(gold["text"])
                if len(context) != len(raw_context) or context[start : start + len(text)] != text:
                    # Offsets no longer hold: trust the text only where it is unambiguous.
                    if not text.strip() or context.count(text) != 1:
                        dropped += 1
                        continue
                    start = context.find(text)
                examples.append(
                    SpanExample(
                        id=str(qa.get("id", f"{key}:{len(examples)}")),
                        question=question,
                        context=context,
                        answer_start=start,
                        answer_text=text,
                        paragraph_key=key,
                        language="en" if path.name in ENGLISH_TRAIN_FILES else "zh",
                    )
                )
    if dropped:
        logger.info("%s: dropped %d answers that did not match their offset", path.name, dropped)
    return examples


def _t2s():
    import opencc

    converter = opencc.OpenCC("t2s")
    return converter.convert


def split_holdout(
    examples: list[SpanExample], fraction: float, seed: int
) -> tuple[list[SpanExample], list[SpanExample]]:
    """Hold out whole paragraphs (never questions of a trained paragraph) by a stable hash."""
    train, held = [], []
    for ex in examples:
        bucket = zlib.crc32(f"{seed}:{ex.paragraph_key}".encode()) % 10_000
        (held if bucket < fraction * 10_000 else train).append(ex)
    return train, held


@dataclass(frozen=True)
class TrainWindow:
    input_ids: list[int]
    start: int
    end: int


def build_windows(
    tokenizer,
    examples: list[SpanExample],
    *,
    max_length: int,
    stride: int,
    negative_fraction: float,
    rng: random.Random,
) -> list[TrainWindow]:
    """Answer-bearing windows, plus unanswerable ones labelled with the first token.

    Negatives are windows of the question's own paragraph that miss the answer and, for half of
    them, the question paired with another paragraph of the same file (a harder, on-topic decoy).
    """
    windows: list[TrainWindow] = []
    batch = 512
    by_file: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        by_file.setdefault(ex.paragraph_key.split(":")[0], []).append(i)
    for lo in range(0, len(examples), batch):
        chunk = examples[lo : lo + batch]
        enc = make_windows(
            tokenizer,
            [e.question for e in chunk],
            [e.context for e in chunk],
            max_length=max_length,
            stride=stride,
        )
        positives: dict[int, int] = {}
        misses: dict[int, list[int]] = {}
        for w, ci in enumerate(enc.context_index):
            ex = chunk[ci]
            span = answer_token_span(
                enc.offsets[w], ex.answer_start, ex.answer_start + len(ex.answer_text)
            )
            if span is None:
                misses.setdefault(ci, []).append(w)
            elif ci not in positives:  # one answer-bearing window per question
                positives[ci] = w
                windows.append(TrainWindow(enc.input_ids[w], span[0], span[1]))
        for ws in misses.values():
            if rng.random() < negative_fraction / 2:
                w = rng.choice(ws)
                windows.append(TrainWindow(enc.input_ids[w], 0, 0))
        decoys_q, decoys_c = [], []
        for ex in chunk:
            if rng.random() < negative_fraction / 2:
                pool = by_file[ex.paragraph_key.split(":")[0]]
                other = examples[rng.choice(pool)]
                if other.paragraph_key != ex.paragraph_key and ex.answer_text not in other.context:
                    decoys_q.append(ex.question)
                    decoys_c.append(other.context)
        if decoys_q:
            dec = make_windows(tokenizer, decoys_q, decoys_c, max_length=max_length, stride=stride)
            seen: set[int] = set()
            for w, ci in enumerate(dec.context_index):
                if ci not in seen:
                    seen.add(ci)
                    windows.append(TrainWindow(dec.input_ids[w], 0, 0))
    return windows


def load_training_examples(config: TrainConfig, rng: random.Random) -> tuple[list, list]:
    zh, en = [], []
    for name in config.files:
        path = config.data_dir / name
        exs = read_span_examples(path, to_simplified=name.startswith(TRADITIONAL_PREFIX))
        logger.info("%s: %d questions", name, len(exs))
        (en if name in ENGLISH_TRAIN_FILES else zh).extend(exs)
    zh_train, zh_held = split_holdout(zh, config.holdout_fraction, config.holdout_seed)
    en_train, en_held = split_holdout(en, config.holdout_fraction, config.holdout_seed)
    if en_train and config.english_fraction < 1:
        # English is a minority share: enough to keep English answering, most steps on Chinese.
        want = int(len(zh_train) * config.english_fraction / (1 - config.english_fraction))
        rng.shuffle(en_train)
        en_train = en_train[:want]
    if config.code_switch_fraction > 0:
        from .code_switch import code_switched_copies, load_dictionary

        dictionary = load_dictionary()
        fraction = config.code_switch_fraction
        switched = code_switched_copies(zh_train, dictionary, fraction=fraction, rng=rng)
        # The held-out copies come from their own generator so that the training data and its
        # order do not depend on how many questions were held out.
        held_rng = random.Random(config.holdout_seed)
        zh_held += code_switched_copies(zh_held, dictionary, fraction=fraction, rng=held_rng)
        logger.info("code-switched copies: %d training questions", len(switched))
        zh_train += switched
    train = zh_train + en_train
    rng.shuffle(train)
    if config.limit_examples is not None:
        train = train[: config.limit_examples]
    return train, zh_held + en_held
