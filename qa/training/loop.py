"""The training loop: fine-tune the span head and encoder, checkpoint, and resume.

The recipe is shaped by a 2-core budget: the 250k-row word-embedding matrix stays frozen (it is
most of the parameters and would triple the optimiser's memory and time), only answer-bearing
windows plus a share of unanswerable windows are trained on, and optionally only the lower encoder
layers are kept. Heavy imports (torch, transformers) happen inside the functions.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Iterable
from dataclasses import MISSING, asdict, fields
from pathlib import Path

from ..config import portable_path
from .config import TrainConfig
from .curve import plot_loss
from .data import SpanExample, TrainWindow, build_windows, load_training_examples

logger = logging.getLogger(__name__)


STATE_FILE = "trainer_state.pt"
"""Beside the weights of each checkpoint: what :attr:`TrainConfig.resume` needs to go on."""

# Settings that decide the data and its order: a resumed run must have the same ones.
_SAME_ON_RESUME = (
    "files",
    "num_layers",
    "max_length",
    "stride",
    "batch_size",
    "english_fraction",
    "code_switch_fraction",
    "negative_fraction",
    "holdout_fraction",
    "holdout_seed",
    "seed",
    "limit_examples",
)


def train_reader(config: TrainConfig) -> Path:
    """Fine-tune a span-extraction head and encoder; write a full checkpoint to ``out_dir``.

    The checkpoint is an ordinary ``AutoModelForQuestionAnswering`` folder plus ``holdout.jsonl``
    (the held-out questions, for calibration), ``training.json`` (settings and loss history),
    ``loss.png`` where matplotlib is installed, and ``trainer_state.pt`` for resuming;
    ``qa.readers.compact`` turns it into the compact form that is shipped.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer

    from embeddings.models import resolve_model

    out_dir = Path(config.out_dir)
    state = _resume_state(config, out_dir) if config.resume else None
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
    train, held = load_training_examples(config, rng)
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

    model = _initial_model(config, base, out_dir if state is not None else None)
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
    minutes_before = 0.0

    def minutes() -> float:
        return minutes_before + (time.monotonic() - started) / 60

    def progress(step: int) -> float:
        """Share of the run done: by steps, or by wall-clock when a time budget binds first.

        Tying the schedule to the clock means a slower machine still ends its run with the
        learning rate annealed, instead of being cut off at full rate. A resumed run counts the
        minutes before it stopped, so its schedule goes on where it was.
        """
        done = step / total
        if config.max_minutes:
            done = max(done, minutes() / config.max_minutes)
        return min(done, 1.0)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, 1.0 - progress(step)) / (1.0 - config.warmup_ratio)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_holdout(out_dir / "holdout.jsonl", held)
    pad_id = tokenizer.pad_token_id
    losses: list[float] = []
    history: list[dict] = []
    step = 0
    order: list[int] = []
    position = 0  # batches of ``order`` already trained on
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, order, position = state["step"], state["order"], state["position"]
        history, minutes_before = state["history"], state["minutes"]
        rng.setstate(state["python_rng"])
        torch.set_rng_state(state["torch_rng"])
        logger.info("resuming at step %d (%.1f minutes trained)", step, minutes_before)

    def save() -> None:
        _save(model, tokenizer, out_dir, config, history, minutes(), step)
        _save_state(
            out_dir / STATE_FILE,
            {
                "step": step,
                "order": order,
                "position": position,
                "history": history,
                "minutes": minutes(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "python_rng": rng.getstate(),
                "torch_rng": torch.get_rng_state(),
            },
        )

    model.train()
    bar = tqdm(
        total=total,
        initial=step,
        desc="train-reader",
        disable=not logger.isEnabledFor(logging.INFO),
    )
    while step < total and progress(step) < 1.0:
        if position * config.batch_size >= len(order):
            order = list(range(len(windows)))
            rng.shuffle(order)
            position = 0
        lo = position * config.batch_size
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
        position += 1
        bar.update(1)
        if step % 20 == 0:
            recent = sum(losses[-20:]) / len(losses[-20:])
            bar.set_postfix(loss=f"{recent:.3f}")
            history.append({"step": step, "loss": round(recent, 4)})
        if step % config.checkpoint_every == 0:
            logger.info("step %d: loss %.3f, saving checkpoint", step, losses[-1])
            save()
    if step < total:
        logger.warning("time budget of %.0f minutes reached at step %d", config.max_minutes, step)
    bar.close()
    save()
    return out_dir


# A setting added after a checkpoint was written had its default in that run.
_DEFAULTS = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}


def _resume_state(config: TrainConfig, out_dir: Path) -> dict | None:
    """The saved state of the run in ``out_dir``, checked against ``config``; ``None`` when
    there is none yet (the run starts fresh, so the same command starts and resumes)."""
    import torch

    path = out_dir / STATE_FILE
    if not path.is_file():
        logger.info("no %s in %s: starting a fresh run", STATE_FILE, portable_path(out_dir))
        return None
    saved = json.loads((out_dir / "training.json").read_text(encoding="utf-8"))["config"]
    now = asdict(config)
    changed = [
        key
        for key in _SAME_ON_RESUME
        if _comparable(saved.get(key, _DEFAULTS.get(key))) != _comparable(now[key])
    ]
    if changed:
        raise ValueError(
            f"cannot resume {portable_path(out_dir)}: {', '.join(changed)} differ from the run "
            "that wrote it (they decide the data and its order); use another --out"
        )
    # Our own file, written by _save_state: the optimiser state and Python's random state are
    # not plain tensors, so the full unpickler is needed.
    state = torch.load(path, weights_only=False)
    steps = json.loads((out_dir / "training.json").read_text(encoding="utf-8"))["steps"]
    if state["step"] != steps:
        raise ValueError(
            f"cannot resume {portable_path(out_dir)}: its weights are from step {steps} but its "
            f"{STATE_FILE} from step {state['step']} (the run stopped while saving)"
        )
    return state


def _save_state(path: Path, state: dict) -> None:
    """Write the resume state whole or not at all (a temporary file, then a rename)."""
    import torch

    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    partial.replace(path)


def _comparable(value: object) -> object:
    return list(value) if isinstance(value, tuple | list) else value


def _initial_model(config: TrainConfig, base: str, checkpoint: Path | None):
    """The model to train: the run's own checkpoint when resuming, else ``init_from`` (a
    checkpoint or a compact shipped reader) for a second phase, else the base encoder."""
    from transformers import AutoModelForQuestionAnswering

    from ..readers.compact import DELTA_WEIGHTS, load_reader_model

    source = checkpoint or config.init_from
    if source is None:
        return AutoModelForQuestionAnswering.from_pretrained(
            base, num_hidden_layers=config.num_layers
        )
    if (Path(source) / DELTA_WEIGHTS).is_file():
        model, _, _ = load_reader_model(str(source), precision="fp32")
        return model
    return AutoModelForQuestionAnswering.from_pretrained(source)


def _pad(rows: list[TrainWindow], pad_id: int) -> tuple[list[list[int]], list[list[int]]]:
    width = max(len(r.input_ids) for r in rows)
    ids = [r.input_ids + [pad_id] * (width - len(r.input_ids)) for r in rows]
    mask = [[1] * len(r.input_ids) + [0] * (width - len(r.input_ids)) for r in rows]
    return ids, mask


def _write_holdout(path: Path, held: Iterable[SpanExample]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for ex in held:
            fh.write(json.dumps(asdict(ex), ensure_ascii=False) + "\n")


def _save(model, tokenizer, out_dir: Path, config, history, minutes: float, step: int) -> None:
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    info = {
        "config": {
            k: portable_path(v) if isinstance(v, Path) else v for k, v in asdict(config).items()
        },
        "steps": step,
        "minutes": round(minutes, 2),
        "loss_history": history,
    }
    (out_dir / "training.json").write_text(json.dumps(info, indent=2, ensure_ascii=False))
    plot_loss(history, out_dir / "loss.png", title=f"{portable_path(out_dir)}: {step} steps")
