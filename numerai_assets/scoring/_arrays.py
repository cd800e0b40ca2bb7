"""Boundary checks shared by the scoring functions: shape and finiteness, named in the error."""

from __future__ import annotations

import numpy as np


def as_float64(values: object, name: str) -> np.ndarray:
    """``values`` as a float64 array (no copy if it is one); numpy's error (text, ragged rows)
    named."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be an array of numbers ({error})") from None


def whole_number(value: object, name: str, minimum: int = 1) -> int:
    """``value`` as an int if it is a whole number (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        wanted = "positive whole number" if minimum == 1 else f"whole number of at least {minimum}"
        raise ValueError(f"{name} must be a {wanted}, got {value!r}")
    return int(value)


def as_vector(values: object, name: str, *, allow_empty: bool = False) -> np.ndarray:
    """``values`` as a contiguous finite float64 vector, or a ValueError naming ``name``."""
    array = np.ascontiguousarray(as_float64(values, name))
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def pick_rows(rows: object, n_rows: int, of: str = "earlier") -> np.ndarray:
    """Row indices to compare against (every row when ``rows`` is None), checked in range of
    the ``n_rows`` rows of the argument named ``of``."""
    if rows is None:
        return np.arange(n_rows, dtype=np.int64)
    given = np.asarray(rows)
    # Cast blindly, a boolean mask [True, False, True] would pick rows 1, 0, 1 and 1.7 row 1.
    if given.size and given.dtype.kind not in "iu":
        raise ValueError(f"rows must be integer indices, got dtype {given.dtype}")
    pick = np.ascontiguousarray(given, dtype=np.int64)
    if pick.ndim != 1:
        raise ValueError(f"rows must be one-dimensional, got shape {pick.shape}")
    if pick.size and (pick.min() < 0 or pick.max() >= n_rows):
        raise ValueError(f"rows must index the {n_rows} rows of {of}")
    return pick


def sorted_rows_finite(matrix: np.ndarray, pick: np.ndarray) -> bool:
    """Whether the picked ascending rows are finite: NaN sorts last, infinities sit at the ends."""
    return pick.shape[0] == 0 or bool(
        np.isfinite(matrix[pick, 0]).all() and np.isfinite(matrix[pick, -1]).all()
    )


def check_sorted_rows(
    matrix: np.ndarray, rows: np.ndarray, columns: np.ndarray, known: np.ndarray, name: str
) -> None:
    """Refuse the ascending rows ``matrix[rows]`` when they are not finite or their values at
    ``columns`` are not ``known`` (shape ``(len(rows), len(columns))``, e.g. a sketch's)."""
    if not sorted_rows_finite(matrix, rows):
        raise ValueError(f"{name} contains NaN or infinite values")
    if not np.array_equal(matrix[np.ix_(rows, columns)], known):
        raise ValueError(f"sketches do not match {name} (built from other rows?)")


def as_matrix(
    values: object, name: str, *, n_columns: int, check_finite: bool = True
) -> np.ndarray:
    """``values`` as a contiguous float64 matrix of ``n_columns`` columns.

    ``check_finite=False`` is for callers that check finiteness more cheaply themselves (a full
    scan here costs as much as the kernels that follow).
    """
    array = np.ascontiguousarray(as_float64(values, name))
    if array.ndim == 1 and array.shape[0] == 0:
        array = array.reshape(0, n_columns)
    if array.ndim != 2 or array.shape[1] != n_columns:
        raise ValueError(
            f"{name} must have shape (N, {n_columns}) to match the new submission, "
            f"got {array.shape}"
        )
    if check_finite and not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array
