"""A conditional logit over groups of options: which option of each group is the right one.

Both edge models are this shape: the boundary model picks one of the reader's overlapping spans
(:mod:`.boundaries`), the character-edge model picks where inside a subword token an answer
starts or ends (:mod:`.char_edges`). Each option has dense features and sparse string terms
(characters beside an edge); a softmax over each group, L2-regularised, is fitted with L-BFGS.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogitWeights:
    """Fitted weights: one per dense feature, one per term seen at least ``min_count`` times."""

    dense: tuple[float, ...]
    terms: dict[str, float]
    loss: float


def fit_conditional_logit(
    dense: Sequence[np.ndarray],
    terms: Sequence[Sequence[Sequence[str]]],
    targets: Sequence[np.ndarray],
    *,
    l2: float = 1.0,
    l2_terms: float = 10.0,
    min_count: int = 5,
) -> LogitWeights:
    """Fit on groups: ``dense[g]`` is ``(options, features)``, ``terms[g][o]`` the terms of
    option ``o``, ``targets[g]`` its weight of being right (normalised per group; a group whose
    targets are all zero says nothing and must be left out by the caller)."""
    from scipy import sparse
    from scipy.optimize import minimize

    if not dense:
        raise ValueError("no group to fit on")
    counts = Counter(t for group in terms for row in group for t in row)
    vocab = {t: i for i, t in enumerate(sorted(t for t, n in counts.items() if n >= min_count))}
    d = dense[0].shape[1]
    rows, cols = [], []
    r = 0
    for group in terms:
        for row in group:
            for t in row:
                if t in vocab:
                    rows.append(r)
                    cols.append(d + vocab[t])
            r += 1
    lexical = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(r, d + len(vocab)))
    stacked = np.vstack(dense)
    x = (lexical + sparse.csr_matrix(np.hstack([stacked, np.zeros((r, len(vocab)))]))).tocsr()
    sizes = np.array([len(t) for t in targets])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    y = np.concatenate([t / t.sum() for t in targets])
    reg = np.full(x.shape[1], l2_terms)
    reg[:d] = l2

    def loss_and_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = x @ w
        top = np.maximum.reduceat(s, starts)
        e = np.exp(s - np.repeat(top, sizes))
        z = np.add.reduceat(e, starts)
        p = e / np.repeat(z, sizes)
        loss = float(np.sum(np.log(z) + top) - y @ s + 0.5 * np.sum(reg * w * w))
        return loss, x.T @ (p - y) + reg * w

    result = minimize(
        loss_and_grad, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 500}
    )
    logger.info(
        "conditional logit: %d groups, %d terms, loss %.1f (%s)",
        len(targets),
        len(vocab),
        result.fun,
        result.message,
    )
    w = result.x
    return LogitWeights(
        dense=tuple(float(v) for v in w[:d]),
        terms={t: float(w[d + i]) for t, i in vocab.items()},
        loss=float(result.fun),
    )
