"""Consistency: the share of validation eras in which a submission beats a coin flip.

A coin flip (p = 0.5 everywhere) has logloss ln 2, so an era "beats" it when its logloss is
strictly below ln 2. The original system computed this together with the pending flags, before
any other scoring, and showed it on the leaderboard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from numerai_assets.scoring._arrays import as_vector

COIN_FLIP_LOGLOSS = math.log(2.0)
CLIP = 1e-15


@dataclass(frozen=True)
class ConsistencyResult:
    percent: float  # share of eras with logloss < ln 2, in percent (0-100)
    validation_logloss: float  # over every validation row
    era_loglosses: dict[str, float]


def row_loglosses(probabilities: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-row logloss, probabilities clipped to ``[1e-15, 1 - 1e-15]`` so 0 and 1 stay finite."""
    p = np.clip(probabilities, CLIP, 1.0 - CLIP)
    return -(targets * np.log(p) + (1.0 - targets) * np.log1p(-p))


def consistency(
    probabilities: np.ndarray, targets: np.ndarray, eras: np.ndarray
) -> ConsistencyResult:
    """Consistency of a submission over its validation rows.

    Parameters
    ----------
    probabilities, targets, eras : arrays of shape (m,)
        The submission's probabilities on the round's validation rows, their 0/1 targets and
        the era of each row. ``m`` must be at least 1.
    """
    p = as_vector(probabilities, "probabilities")
    y = as_vector(targets, "targets")
    eras = np.asarray(eras)
    if not (p.shape == y.shape == eras.shape):
        raise ValueError(
            "probabilities, targets and eras must have the same length, got "
            f"{p.shape[0]}, {y.shape[0]} and {eras.shape[0] if eras.ndim else 0}"
        )
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("targets must be 0 or 1")
    losses = row_loglosses(p, y)
    names, era_index = np.unique(eras.astype(str), return_inverse=True)
    era_means = np.bincount(era_index, weights=losses) / np.bincount(era_index)
    return ConsistencyResult(
        percent=float(100.0 * np.mean(era_means < COIN_FLIP_LOGLOSS)),
        validation_logloss=float(losses.mean()),
        era_loglosses={str(name): float(v) for name, v in zip(names, era_means, strict=True)},
    )
