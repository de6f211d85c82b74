"""``ludao train-reader``, ``package-reader``, ``fit-boundaries``, ``fit-char-edges``: making a
reader.

Kept apart from the commands that answer questions: they read the training files of
``../shared/data/qa`` and write model folders, and nothing else in the CLI needs them.
"""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command(name="train-reader")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), required=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
@click.option("--layers", type=click.IntRange(1, 12), default=12)
@click.option("--max-length", type=int, default=256)
@click.option("--stride", type=int, default=96)
@click.option("--batch-size", type=int, default=16)
@click.option("--lr", type=float, default=1.5e-4)
@click.option("--max-steps", type=int, default=1800)
@click.option("--max-minutes", type=float, default=None, help="Anneal and stop by this time.")
@click.option("--english-fraction", type=float, default=0.2)
@click.option(
    "--code-switch",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of Chinese questions given a copy with words in English (CC-CEDICT).",
)
@click.option("--limit-examples", type=int, default=None)
@click.option(
    "--init-from",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Start a second phase from this checkpoint or compact reader (e.g. models/reader-zh).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the run in --out where its last checkpoint left it (fresh if none).",
)
@click.option("--checkpoint-every", type=click.IntRange(1), default=300, help="Steps.")
@click.option("--warmup-ratio", type=float, default=0.06)
@click.option("--threads", type=click.IntRange(1), default=None)
@click.option("--seed", type=int, default=13)
@click.option("--device", default="cpu")
def train_reader_command(**options: object) -> None:
    """Fine-tune Ludao's reader on the training files of DATA_DIR (never the evaluation ones)."""
    from qa.training import TrainConfig, train_reader

    config = TrainConfig(
        data_dir=Path(str(options["data_dir"])),
        out_dir=Path(str(options["out_dir"])),
        num_layers=int(options["layers"]),  # type: ignore[arg-type]
        max_length=int(options["max_length"]),  # type: ignore[arg-type]
        stride=int(options["stride"]),  # type: ignore[arg-type]
        batch_size=int(options["batch_size"]),  # type: ignore[arg-type]
        learning_rate=float(options["lr"]),  # type: ignore[arg-type]
        max_steps=int(options["max_steps"]),  # type: ignore[arg-type]
        max_minutes=options["max_minutes"],  # type: ignore[arg-type]
        english_fraction=float(options["english_fraction"]),  # type: ignore[arg-type]
        code_switch_fraction=float(options["code_switch"]),  # type: ignore[arg-type]
        limit_examples=options["limit_examples"],  # type: ignore[arg-type]
        device=str(options["device"]),
        init_from=Path(str(options["init_from"])) if options["init_from"] else None,
        resume=bool(options["resume"]),
        checkpoint_every=int(options["checkpoint_every"]),  # type: ignore[arg-type]
        warmup_ratio=float(options["warmup_ratio"]),  # type: ignore[arg-type]
        threads=options["threads"],  # type: ignore[arg-type]
        seed=int(options["seed"]),  # type: ignore[arg-type]
    )
    try:
        click.echo(str(train_reader(config)))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


@click.command(name="package-reader")
@click.argument("checkpoint", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
@click.option("--calibrate-on", type=int, default=600, help="Held-out questions to calibrate on.")
@click.option(
    "--holdout",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Another run's holdout.jsonl, to compare two checkpoints on the same questions "
    "(default: the checkpoint's own).",
)
def package_reader(checkpoint: str, out_dir: str, calibrate_on: int, holdout: str | None) -> None:
    """Calibrate a trained checkpoint on its held-out split and write the compact reader."""
    from qa.calibration import calibrate_and_package

    result = calibrate_and_package(
        Path(checkpoint),
        Path(out_dir),
        limit=calibrate_on,
        holdout=Path(holdout) if holdout else None,
    )
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))


@click.command(name="fit-boundaries")
@click.argument("reader", type=click.Path(exists=True, file_okay=False))
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), required=True)
@click.option("--limit", type=click.IntRange(1), default=None, help="Training questions to use.")
@click.option(
    "--files",
    default=None,
    help="Comma-separated training files of --data-dir whose answer style the model learns "
    "(default: the CMRC 2018 train and trial files).",
)
def fit_boundaries(reader: str, data_dir: str, limit: int | None, files: str | None) -> None:
    """Fit the span-boundary model of READER on its n-best lists of training questions and
    write it beside the reader (boundaries.json); prints held-out EM/F1 before and after."""
    from qa.readers.compact import BOUNDARY_MODEL
    from qa.training.boundaries import BOUNDARY_FILES, fit_for_reader

    names = tuple(n.strip() for n in files.split(",") if n.strip()) if files else BOUNDARY_FILES
    try:
        model = fit_for_reader(Path(reader), Path(data_dir), limit=limit, files=names)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    path = Path(reader) / BOUNDARY_MODEL
    path.write_text(json.dumps(model.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    click.echo(json.dumps(model.metrics, ensure_ascii=False, indent=2))


@click.command(name="fit-char-edges")
@click.argument("reader", type=click.Path(exists=True, file_okay=False))
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), required=True)
@click.option(
    "--files",
    default=None,
    help="Comma-separated Chinese training files of --data-dir (default: all of them).",
)
def fit_char_edges(reader: str, data_dir: str, files: str | None) -> None:
    """Fit where READER's answers start and end inside a subword token, on the gold answers of
    the training files, and write it beside the reader (char_edges.json); prints held-out
    figures before and after."""
    from qa.readers.compact import CHAR_EDGE_MODEL
    from qa.readers.transformer import TransformerReader
    from qa.training import char_edges
    from qa.training.config import CHINESE_TRAIN_FILES

    names = tuple(n.strip() for n in files.split(",") if n.strip()) if files else None
    loaded = TransformerReader(reader)
    try:
        model = char_edges.fit_char_edges(
            loaded.tokenizer,
            Path(data_dir),
            files=names or CHINESE_TRAIN_FILES,
            max_length=loaded.config.max_length,
            stride=loaded.config.stride,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    path = Path(reader) / CHAR_EDGE_MODEL
    path.write_text(json.dumps(model.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    click.echo(json.dumps(model.metrics, ensure_ascii=False, indent=2))
