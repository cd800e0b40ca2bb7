"""Consistency: the share of validation eras in which a submission beats a coin flip.

A coin flip (p = 0.5 everywhere) has logloss ln 2, so an era "beats" it when its logloss is
strictly below ln 2. The comparison is exact (:mod:`.exact`): an era's losses are summed with
``math.fsum`` (one rounding, whatever the order), and an era within rounding distance of ln 2
is decided again in integer arithmetic, so an era of 0.5 everywhere never beats a coin flip,
whatever its number of rows. The original system computed this together with the pending
flags, before any other scoring, and showed it on the leaderboard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from numerai_assets.scoring._arrays import as_vector
from numerai_assets.scoring.exact import LOGLOSS_TIE_BAND, mean_logloss_below_ln2

COIN_FLIP_LOGLOSS = math.log(2.0)
CLIP = 1e-15


@dataclass(frozen=True)
class ConsistencyResult:
    percent: float  # share of eras with logloss < ln 2, in percent (0-100)
    validation_logloss: float  # over every validation row
    era_loglosses: dict[str, float]


def clipped(probabilities: np.ndarray) -> np.ndarray:
    """Probabilities clipped to ``[1e-15, 1 - 1e-15]`` so logloss stays finite at 0 and 1."""
    return np.clip(probabilities, CLIP, 1.0 - CLIP)


def row_loglosses(probabilities: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-row logloss of clipped probabilities (see :func:`clipped`)."""
    p = clipped(probabilities)
    return -(targets * np.log(p) + (1.0 - targets) * np.log1p(-p))


def beats_coin_flip(probabilities: np.ndarray, targets: np.ndarray, mean_logloss: float) -> bool:
    """Whether rows whose float mean logloss is ``mean_logloss`` have logloss below ln 2, exactly.

    ``mean_logloss`` (from ``math.fsum``) decides when it is farther from ln 2 than rounding can
    move it; otherwise the exact product test of :func:`.exact.mean_logloss_below_ln2` does.
    """
    if abs(mean_logloss - COIN_FLIP_LOGLOSS) > LOGLOSS_TIE_BAND:
        return mean_logloss < COIN_FLIP_LOGLOSS
    return mean_logloss_below_ln2(clipped(probabilities), targets)


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
    order = np.argsort(era_index, kind="stable")
    bounds = np.searchsorted(era_index[order], np.arange(len(names) + 1))
    era_means, beaten = {}, 0
    for k, name in enumerate(names):
        rows = order[bounds[k] : bounds[k + 1]]
        mean = math.fsum(losses[rows]) / rows.shape[0]
        era_means[str(name)] = mean
        beaten += beats_coin_flip(p[rows], y[rows], mean)
    return ConsistencyResult(
        percent=100.0 * beaten / len(names),
        validation_logloss=math.fsum(losses) / losses.shape[0],
        era_loglosses=era_means,
    )
