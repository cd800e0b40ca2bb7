"""Boundary checks shared by the scoring functions: shape and finiteness, named in the error."""

from __future__ import annotations

import numpy as np


def as_vector(values: object, name: str, *, allow_empty: bool = False) -> np.ndarray:
    """``values`` as a contiguous finite float64 vector, or a ValueError naming ``name``."""
    array = np.ascontiguousarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def as_matrix(values: object, name: str, *, n_columns: int) -> np.ndarray:
    """``values`` as a contiguous float64 matrix of ``n_columns`` columns (finite)."""
    array = np.ascontiguousarray(values, dtype=np.float64)
    if array.ndim == 1 and array.shape[0] == 0:
        array = array.reshape(0, n_columns)
    if array.ndim != 2 or array.shape[1] != n_columns:
        raise ValueError(
            f"{name} must have shape (N, {n_columns}) to match the new submission, "
            f"got {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array
