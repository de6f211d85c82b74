"""The loss curve of a training run, drawn for the model card (``loss.png`` in the checkpoint).

matplotlib is an optional extra (``ludao[bench]``); without it the curve is skipped with a log
line and the numbers stay in ``training.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)


def plot_loss(
    history: Sequence[dict], path: Path, *, title: str = "", phases: Sequence[int] = ()
) -> Path | None:
    """Write the loss by step (``history`` rows ``{"step", "loss"}``) as a small PNG; steps in
    ``phases`` get a vertical line (where a second phase started). ``None`` when not drawn."""
    if not history:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info("matplotlib is not installed: no loss curve drawn (pip install 'ludao[bench]')")
        return None
    figure, axes = plt.subplots(figsize=(5, 3), dpi=100)
    axes.plot([h["step"] for h in history], [h["loss"] for h in history], linewidth=1)
    for step in phases:
        axes.axvline(step, color="grey", linestyle="--", linewidth=0.8)
    axes.set_xlabel("step")
    axes.set_ylabel("loss (mean of 20 steps)")
    if title:
        axes.set_title(title, fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
