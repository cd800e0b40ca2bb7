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
    """A submission's consistency over the round's validation eras.

    Attributes
    ----------
    percent : float
        The share of eras whose mean logloss is below ln 2, in percent (0 to 100).
    validation_logloss : float
        The mean logloss over every validation row (summed by ``math.fsum``, so whatever the
        order of the rows, then divided).
    era_loglosses : dict of str to float
        Each era's mean logloss, eras in sorted order of their names.

    Examples
    --------
    Era 2 is a coin flip exactly (0.5 everywhere: logloss ln 2), which does not beat one:

    >>> result = consistency([0.6, 0.4, 0.5, 0.5], [1, 0, 1, 0], ["e1", "e1", "e2", "e2"])
    >>> result.percent, round(result.validation_logloss, 4), result.era_loglosses
    (50.0, 0.602, {'e1': 0.5108256237659907, 'e2': 0.6931471805599453})
    """

    percent: float
    validation_logloss: float
    era_loglosses: dict[str, float]


def clipped(probabilities: np.ndarray) -> np.ndarray:
    """Probabilities clipped to ``[1e-15, 1 - 1e-15]``, so that logloss stays finite at 0 and 1.

    Parameters
    ----------
    probabilities : array_like, float
        Any shape; not checked (:func:`consistency` checks its inputs).

    Returns
    -------
    ndarray of the same shape, float64

    Examples
    --------
    >>> clipped(np.array([0.0, 0.5, 1.0]))
    array([1.e-15, 5.e-01, 1.e+00])
    >>> float(1.0 - clipped(np.array([1.0]))[0])  # 1 - 1e-15, as near as a double gets
    9.992007221626409e-16
    """
    return np.clip(probabilities, CLIP, 1.0 - CLIP)


def row_loglosses(probabilities: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Each row's logloss, ``-(y ln p + (1 - y) ln(1 - p))``, of the clipped probabilities.

    Parameters
    ----------
    probabilities : array_like of shape ``(m,)``, float
        Clipped first (:func:`clipped`); not checked.
    targets : array_like of shape ``(m,)``
        0 or 1; not checked (numpy broadcasting applies).

    Returns
    -------
    ndarray of shape ``(m,)``, float64, in nats

    Examples
    --------
    >>> row_loglosses(np.array([0.5, 0.9, 0.0]), np.array([1, 0, 1])).round(4)
    array([ 0.6931,  2.3026, 34.5388])
    """
    p = clipped(probabilities)
    return -(targets * np.log(p) + (1.0 - targets) * np.log1p(-p))


def beats_coin_flip(probabilities: np.ndarray, targets: np.ndarray, mean_logloss: float) -> bool:
    """Whether rows whose float mean logloss is ``mean_logloss`` beat a coin flip, exactly.

    ``mean_logloss`` (from ``math.fsum``) decides when it is farther from ln 2 than
    :data:`.exact.LOGLOSS_TIE_BAND`, which rounding cannot cross; otherwise the exact product
    test of :func:`.exact.mean_logloss_below_ln2` decides, on the clipped probabilities.

    Parameters
    ----------
    probabilities : array_like of shape ``(m,)``, float
        One era's probabilities, in ``[0, 1]``.
    targets : array_like of shape ``(m,)``
        Their 0/1 targets.
    mean_logloss : float
        ``math.fsum(row_loglosses(probabilities, targets)) / m``.

    Returns
    -------
    bool
        Whether the era's mean logloss is strictly below ln 2.

    Raises
    ------
    ValueError
        Only near the tie, from :func:`.exact.mean_logloss_below_ln2`: if ``probabilities`` is
        empty, not finite or outside ``[0, 1]``, or ``targets`` does not match it.

    Examples
    --------
    Summed one by one, copies of ``fl(ln 2)`` come out below ln 2; the exact test is not fooled:

    >>> rows = 801
    >>> naive = sum([math.log(2)] * rows) / rows
    >>> naive < math.log(2)
    True
    >>> beats_coin_flip(np.full(rows, 0.5), np.arange(rows) % 2, naive)
    False
    """
    if abs(mean_logloss - COIN_FLIP_LOGLOSS) > LOGLOSS_TIE_BAND:
        return mean_logloss < COIN_FLIP_LOGLOSS
    return mean_logloss_below_ln2(clipped(probabilities), targets)


@dataclass(frozen=True)
class EraGroups:
    """Rows grouped by era, made once for the many submissions of a batch (grouping 18,000
    era names costs a third of a submission's consistency).

    Attributes
    ----------
    names : tuple of str
        The eras, in sorted order of their names (compared as strings).
    rows : tuple of ndarray of int
        For each era, its rows in ascending order.
    size : int
        The number of rows grouped.
    """

    names: tuple[str, ...]
    rows: tuple[np.ndarray, ...]
    size: int

    @classmethod
    def of(cls, eras: np.ndarray) -> EraGroups:
        """The groups of ``eras`` (array_like of shape ``(m,)``, any values).

        Raises
        ------
        ValueError
            If ``eras`` is not one-dimensional.

        Examples
        --------
        >>> groups = EraGroups.of(["b", "a", "b"])
        >>> groups.names, [rows.tolist() for rows in groups.rows], groups.size
        (('a', 'b'), [[1], [0, 2]], 3)
        """
        eras = np.asarray(eras)
        if eras.ndim != 1:
            raise ValueError(f"eras must be one-dimensional, got shape {eras.shape}")
        names, era_index = np.unique(eras.astype(str), return_inverse=True)
        order = np.argsort(era_index, kind="stable")
        bounds = np.searchsorted(era_index[order], np.arange(len(names) + 1))
        rows = tuple(order[bounds[k] : bounds[k + 1]] for k in range(len(names)))
        return cls(tuple(str(name) for name in names), rows, eras.shape[0])


def consistency(
    probabilities: np.ndarray, targets: np.ndarray, eras: np.ndarray | EraGroups
) -> ConsistencyResult:
    """Consistency of a submission: the share of validation eras in which it beats a coin flip.

    An era beats a coin flip (p = 0.5 everywhere, logloss ln 2) when its mean logloss is
    strictly below ln 2, decided exactly (:func:`beats_coin_flip`). Logloss is of the
    probabilities clipped to ``[1e-15, 1 - 1e-15]``, in nats.

    Parameters
    ----------
    probabilities : array_like of shape ``(m,)``, float
        The submission's probabilities on the round's validation rows, in ``[0, 1]``.
    targets : array_like of shape ``(m,)``
        Their targets, each 0 or 1.
    eras : array_like of shape ``(m,)``, or EraGroups
        The era of each row (any values; compared as strings), or those rows grouped once for
        many submissions (:meth:`EraGroups.of`). ``m`` must be at least 1.

    Returns
    -------
    ConsistencyResult

    Raises
    ------
    ValueError
        If ``probabilities`` or ``targets`` is not a one-dimensional array of finite numbers
        or is empty, the three lengths differ, a probability is outside ``[0, 1]``, or a target
        is not 0 or 1.

    Examples
    --------
    Three eras: one better than a coin flip, one a coin flip exactly (which does not beat it),
    one worse:

    >>> result = consistency(
    ...     [0.7, 0.3, 0.5, 0.5, 0.4, 0.6], [1, 0, 1, 0, 1, 0], ["a", "a", "b", "b", "c", "c"]
    ... )
    >>> result.percent
    33.333333333333336
    >>> {era: round(loss, 4) for era, loss in result.era_loglosses.items()}
    {'a': 0.3567, 'b': 0.6931, 'c': 0.9163}
    """
    p = as_vector(probabilities, "probabilities")
    y = as_vector(targets, "targets")
    if not isinstance(eras, EraGroups):
        eras = np.asarray(eras)
        if eras.ndim != 1:
            raise ValueError(
                "probabilities, targets and eras must have the same length, got "
                f"{p.shape[0]}, {y.shape[0]} and {eras.shape[0] if eras.ndim else 0}"
            )
        eras = EraGroups.of(eras)
    if not (p.shape[0] == y.shape[0] == eras.size):
        raise ValueError(
            "probabilities, targets and eras must have the same length, got "
            f"{p.shape[0]}, {y.shape[0]} and {eras.size}"
        )
    if ((p < 0.0) | (p > 1.0)).any():
        raise ValueError("probabilities must be in [0, 1]")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("targets must be 0 or 1")
    losses = row_loglosses(p, y)
    era_means, beaten = {}, 0
    for name, rows in zip(eras.names, eras.rows, strict=True):
        mean = math.fsum(losses[rows]) / rows.shape[0]
        era_means[name] = mean
        beaten += beats_coin_flip(p[rows], y[rows], mean)
    return ConsistencyResult(
        percent=100.0 * beaten / len(eras.names),
        validation_logloss=math.fsum(losses) / losses.shape[0],
        era_loglosses=era_means,
    )
