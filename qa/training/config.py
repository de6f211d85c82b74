"""The settings of one training run, recorded in its checkpoint's ``training.json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass
class TrainConfig:
    data_dir: Path
    out_dir: Path
    base_model: str = "multilingual-e5-small"
    init_from: Path | None = None
    """A reader to start a second phase from instead of the base: a checkpoint folder, or a
    compact shipped folder such as ``models/reader-zh``."""
    resume: bool = False
    """Continue the run whose checkpoint is in ``out_dir`` (weights, optimiser, learning-rate
    schedule, data order and clock) as if it had not stopped; a fresh run when there is none."""
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
    code_switch_fraction: float = 0.0
    """Share of the Chinese questions (training and held out) that get a code-switched copy,
    some words put into English with CC-CEDICT (``qa.training.code_switch``): English questions
    about Chinese documents."""
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
