"""Latency statistics in the one shape every benchmark and ``ludao eval`` report."""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["latency_summary", "percentile"]


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0–100) with linear interpolation, like ``numpy.percentile``.

    Raises:
        ValueError: ``values`` is empty or ``q`` is outside [0, 100].
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= q <= 100:  # also rejects NaN
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    position = (len(ordered) - 1) * q / 100
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def latency_summary(values: Iterable[float], digits: int = 2) -> dict[str, float]:
    """p50, p95 and mean of a list of timings, rounded: the shape every benchmark reports."""
    values = list(values)
    return {
        "p50": round(percentile(values, 50), digits),
        "p95": round(percentile(values, 95), digits),
        "mean": round(sum(values) / len(values), digits),
    }
