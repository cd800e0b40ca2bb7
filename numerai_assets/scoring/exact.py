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

# |r| is computed in float64 by a two-pass kernel; its error is at most about 2 (n + 2) 2^-53
# (Higham's summation bound with Cauchy–Schwarz), about 1e-11 at 45,000 rows. Any |r| within
# this band of the threshold is decided again exactly: far wider than the error, and so rare
# that the exact check (tens of milliseconds) costs nothing overall.
CORRELATION_TIE_BAND = 1e-7

# The same for an era's mean logloss: numpy's log is within a few ulps, and math.fsum sums
# exactly then rounds once, so the float mean is within ~1e-15 (relative) of the exact one.
LOGLOSS_TIE_BAND = 1e-12


def as_written(threshold: float | int | str | Fraction) -> Fraction:
    """``threshold`` as the exact rational its shortest decimal spelling denotes.

    ``as_written(0.005) == Fraction(1, 200)``: ``repr`` of a float gives the shortest decimal
    that reads back as the same double, which is how the rule was written.
    """
    if isinstance(threshold, Fraction):
        return threshold
    if isinstance(threshold, int) and not isinstance(threshold, bool):
        return Fraction(threshold)
    if isinstance(threshold, str):
        return Fraction(threshold)
    value = float(threshold)
    if not math.isfinite(value):
        raise ValueError(f"a threshold must be a finite number, got {threshold!r}")
    return Fraction(repr(value))


def count_below(threshold: float | Fraction, n: int) -> int:
    """The smallest integer count ``c`` with ``c / n >= threshold``.

    So ``count / n < threshold`` exactly when ``count < count_below(threshold, n)``.
    """
    return math.ceil(as_written(threshold) * n)


def count_at_most(threshold: float | Fraction, n: int) -> int:
    """The largest integer count ``c`` with ``c / n <= threshold``."""
    return math.floor(as_written(threshold) * n)


def _scaled_integers(values: np.ndarray) -> list[int]:
    """Every value times one common power of two, as exact Python ints."""
    ratios = [v.as_integer_ratio() for v in np.asarray(values, dtype=np.float64).tolist()]
    common = max((den for _, den in ratios), default=1)  # powers of two: the largest divides
    return [num * (common // den) for num, den in ratios]


def abs_correlation_exceeds(x: np.ndarray, y: np.ndarray, threshold: float | Fraction) -> bool:
    """Whether ``|pearson_r(x, y)| > threshold``, computed exactly from the float64 values.

    ``r^2 > t^2`` is compared as ``(n Sxy - Sx Sy)^2 * den^2 > num^2 (n Sxx - Sx^2)(n Syy - Sy^2)``
    on integers (``t = num / den``). A constant vector has no correlation: False.
    """
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
    t = as_written(threshold)
    return cov * cov * t.denominator**2 > t.numerator**2 * var_a * var_b


def mean_logloss_below_ln2(probabilities: np.ndarray, targets: np.ndarray) -> bool:
    """Whether the mean logloss of ``probabilities`` (in (0, 1)) on 0/1 ``targets`` is < ln 2.

    Exact: with ``q_i`` the probability row ``i`` gave its outcome (``p`` or ``1 - p``, taken
    exactly), the inequality ``mean(-ln q) < ln 2`` is ``prod(2 q_i) > 1``. Every ``q_i`` is an
    integer over a power of two, so this is one big integer against a power of two.
    """
    numerators = []
    power = 0  # prod(2 q) = prod(numerators) / 2^power
    for p, y in zip(np.asarray(probabilities, dtype=np.float64).tolist(), targets, strict=True):
        num, den = p.as_integer_ratio()  # den is a power of two
        numerators.append(num if y else den - num)
        power += den.bit_length() - 2  # log2(den) - 1 for the factor 2
    numerator = math.prod(numerators)
    if power >= 0:
        return numerator > 1 << power
    return numerator << -power > 1
