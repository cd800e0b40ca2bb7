"""Threshold comparisons decided as the rule is written, whatever the summation order.

A score compared with a threshold is decided in floating point only when the float result is
farther from the threshold than any rounding could move it; near a tie the comparison is made
again in exact integer or rational arithmetic. So a value that equals its threshold (an era
of 0.5 everywhere has logloss exactly ln 2) falls on the side the rule names, on every machine
and for any number of rows.

Thresholds are read as the decimal numbers they are written as (``0.005`` is 1/200, not the
binary double nearest to it): :func:`as_written`.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from numerai_assets.scoring._arrays import as_vector, whole_number

# |r| is computed in float64 by a two-pass kernel; its error is at most about 2 (n + 2) 2^-53
# (Higham's summation bound with Cauchy–Schwarz), about 1e-11 at 45,000 rows. Any |r| within
# this band of the threshold is decided again exactly: far wider than the error, and so rare
# that the exact check (tens of milliseconds) costs nothing overall.
CORRELATION_TIE_BAND = 1e-7

# The same for an era's mean logloss: numpy's log is within a few ulps, and math.fsum sums
# exactly then rounds once, so the float mean is within ~1e-15 (relative) of the exact one.
LOGLOSS_TIE_BAND = 1e-12


def as_written(threshold: float | int | str | Fraction) -> Fraction:
    """A threshold as the exact rational number its shortest decimal spelling denotes.

    ``repr`` of a float is the shortest decimal that reads back as the same double (Steele &
    White / Gay's shortest round-trip), which is how the rule was written: ``0.005`` is 1/200,
    not the binary double nearest to it.

    Parameters
    ----------
    threshold : float, int, str or Fraction
        A float or int as written; a string as a decimal or ``"p/q"``; a Fraction as itself.

    Returns
    -------
    Fraction

    Raises
    ------
    ValueError
        If ``threshold`` is NaN or infinite, a string that is not a finite number, or not a
        number at all.

    Examples
    --------
    >>> as_written(0.005), as_written("0.12"), as_written(3)
    (Fraction(1, 200), Fraction(3, 25), Fraction(3, 1))
    >>> Fraction(0.005)  # the double itself, which the rule did not mean
    Fraction(5764607523034235, 1152921504606846976)
    """
    if isinstance(threshold, Fraction):
        return threshold
    if isinstance(threshold, int) and not isinstance(threshold, bool):
        return Fraction(threshold)
    if isinstance(threshold, str):
        try:
            return Fraction(threshold)
        except ValueError:
            raise ValueError(f"threshold must be a finite number, got {threshold!r}") from None
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return Fraction(repr(value))


def count_below(threshold: float | Fraction, n: int) -> int:
    """The smallest integer count ``c`` with ``c / n >= threshold``, the threshold as written.

    So ``count / n < threshold`` exactly when ``count < count_below(threshold, n)``: a rule
    "KS < threshold" is decided on integer KS counts (:func:`.ks.ks_counts`).

    Parameters
    ----------
    threshold : float, int, str or Fraction
        Read by :func:`as_written`.
    n : int
        The denominator (a round's rows), at least 1.

    Returns
    -------
    int
        ``ceil(as_written(threshold) * n)``, in exact arithmetic.

    Raises
    ------
    ValueError
        If ``threshold`` is not a finite number (:func:`as_written`) or ``n`` is not a
        positive whole number.

    Examples
    --------
    The default duplicate rule at 45,000 rows: KS counts below 225 (KS < 0.005):

    >>> count_below(0.005, 45_000)
    225

    Where float arithmetic would move the boundary (``0.07 * 100`` is 7.000000000000001):

    >>> count_below(0.07, 100), math.ceil(0.07 * 100)
    (7, 8)
    """
    return math.ceil(as_written(threshold) * whole_number(n, "n"))


def count_at_most(threshold: float | Fraction, n: int) -> int:
    """The largest integer count ``c`` with ``c / n <= threshold``, the threshold as written.

    So ``count / n <= threshold`` exactly when ``count <= count_at_most(threshold, n)``.

    Parameters
    ----------
    threshold : float, int, str or Fraction
        Read by :func:`as_written`.
    n : int
        The denominator (a round's rows), at least 1.

    Returns
    -------
    int
        ``floor(as_written(threshold) * n)``, in exact arithmetic.

    Raises
    ------
    ValueError
        If ``threshold`` is not a finite number (:func:`as_written`) or ``n`` is not a
        positive whole number.

    Examples
    --------
    The default similar rule at 45,000 rows: KS counts up to 1,350 (KS <= 0.03); and a product
    that float arithmetic rounds down (``0.29 * 100`` is 28.999999999999996):

    >>> count_at_most(0.03, 45_000), count_at_most(0.29, 100), math.floor(0.29 * 100)
    (1350, 29, 28)
    """
    return math.floor(as_written(threshold) * whole_number(n, "n"))


def _scaled_integers(values: np.ndarray) -> list[int]:
    """Every value times one common power of two, as exact Python ints."""
    ratios = [v.as_integer_ratio() for v in np.asarray(values, dtype=np.float64).tolist()]
    common = max((den for _, den in ratios), default=1)  # powers of two: the largest divides
    return [num * (common // den) for num, den in ratios]


def abs_correlation_exceeds(x: np.ndarray, y: np.ndarray, threshold: float | Fraction) -> bool:
    """Whether ``|r| > threshold`` for Pearson's r of ``x`` and ``y``, decided exactly.

    Every float64 value is an integer times a power of two, so with all values scaled to
    integers, ``r^2 > t^2`` is compared as
    ``(n Sxy - Sx Sy)^2 den^2 > num^2 (n Sxx - Sx^2)(n Syy - Sy^2)`` on Python integers, for
    ``t = num / den`` as written (:func:`as_written`). Tens of milliseconds at 45,000 rows: for
    the rare ``r`` within :data:`CORRELATION_TIE_BAND` of the threshold.

    Parameters
    ----------
    x, y : array_like of shape ``(n,)``, float
        Two submissions' probabilities, id-aligned; finite.
    threshold : float, int, str or Fraction
        At least 0.

    Returns
    -------
    bool
        The exact answer for the float64 values given. A constant vector has no correlation:
        False (so are vectors of no values).

    Raises
    ------
    ValueError
        If ``x`` or ``y`` is not a one-dimensional array of finite numbers, their lengths
        differ, or ``threshold`` is not a finite number of at least 0.

    Examples
    --------
    These values have ``r = 1/2`` exactly; float64 arithmetic rounds it up:

    >>> import statistics
    >>> x, y = [0.25, 0.125, 0.125], [0.25, 0.25, 0.125]
    >>> statistics.correlation(x, y)
    0.5000000000000001
    >>> abs_correlation_exceeds(x, y, 0.5), abs_correlation_exceeds(x, y, 0.4999)
    (False, True)
    """
    t = as_written(threshold)
    if t < 0:
        raise ValueError(f"threshold must be at least 0, got {threshold!r}")
    x = as_vector(x, "x", allow_empty=True)
    y = as_vector(y, "y", allow_empty=True)
    a = _scaled_integers(x)
    b = _scaled_integers(y)
    if len(a) != len(b):
        raise ValueError(f"x and y must have the same length, got {len(a)} and {len(b)}")
    n = len(a)
    sa, sb = sum(a), sum(b)
    cov = n * sum(p * q for p, q in zip(a, b, strict=True)) - sa * sb
    var_a = n * sum(p * p for p in a) - sa * sa
    var_b = n * sum(q * q for q in b) - sb * sb
    if var_a == 0 or var_b == 0:
        return False
    return cov * cov * t.denominator**2 > t.numerator**2 * var_a * var_b


def mean_logloss_below_ln2(probabilities: np.ndarray, targets: np.ndarray) -> bool:
    """Whether the mean logloss of ``probabilities`` on 0/1 ``targets`` is below ln 2, exactly.

    With ``q_i`` the probability row ``i`` gave its outcome (``p`` or ``1 - p``, taken exactly),
    ``mean(-ln q) < ln 2`` is ``prod(2 q_i) > 1``. Every ``q_i`` is an integer over a power of
    two, so this is one big integer against a power of two: no logarithm, no rounding.

    Parameters
    ----------
    probabilities : array_like of shape ``(m,)``, float
        In ``[0, 1]`` (a 0 given to the outcome is an infinite loss: never below ln 2); not
        empty. :mod:`.consistency` passes them clipped to ``[1e-15, 1 - 1e-15]``.
    targets : array_like of shape ``(m,)``
        Each 0 or 1.

    Returns
    -------
    bool

    Raises
    ------
    ValueError
        If ``probabilities`` is not a one-dimensional array of finite numbers in ``[0, 1]``
        or is empty, ``targets`` has another length, or a target is not 0 or 1.

    Examples
    --------
    An era of 0.5 everywhere has logloss exactly ln 2, so it does not beat a coin flip; nudged
    by 2**-50 (a float mean of the logs cannot tell these from ln 2), it does or does not:

    >>> mean_logloss_below_ln2(np.full(45_000, 0.5), np.arange(45_000) % 2)
    False
    >>> nudge = 2.0**-50
    >>> mean_logloss_below_ln2([0.5 + nudge, 0.5 - nudge], [1, 1])  # prod(2q) = 1 - 2**-98
    False
    >>> mean_logloss_below_ln2([0.5 + nudge, 0.5 + nudge], [1, 1])
    True
    """
    p = as_vector(probabilities, "probabilities")
    if ((p < 0.0) | (p > 1.0)).any():
        raise ValueError("probabilities must be in [0, 1]")
    y = np.asarray(targets)
    if y.shape != p.shape:
        raise ValueError(
            f"probabilities and targets must have the same length, got {p.shape[0]} and "
            f"{y.shape[0] if y.ndim else 0}"
        )
    if not np.isin(y, (0, 1)).all():
        raise ValueError("targets must be 0 or 1")
    numerators = []
    power = 0  # prod(2 q) = prod(numerators) / 2^power
    for value, outcome in zip(p.tolist(), y.tolist(), strict=True):
        num, den = value.as_integer_ratio()  # den is a power of two
        numerators.append(num if outcome else den - num)
        power += den.bit_length() - 2  # log2(den) - 1 for the factor 2
    numerator = math.prod(numerators)
    if power >= 0:
        return numerator > 1 << power
    return numerator << -power > 1
