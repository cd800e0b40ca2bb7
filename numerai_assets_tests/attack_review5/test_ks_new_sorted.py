"""``ks_counts(..., new_sorted=True)`` (922afc2), as phase 2 calls it with the cache's sorted
row. Held: the same counts as sorting ``new`` on ties, signed zeros, constant and length-1 rows;
NaN, infinities, descending, empty and wrong-length input refused by name."""

from __future__ import annotations

import numpy as np
import pytest

from numerai_assets.scoring.ks import ks_counts


@pytest.mark.parametrize("seed", range(4))
def test_agrees_with_sorting_on_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 41
    earlier = np.sort(rng.integers(0, 4, size=(7, n)) / 4.0, axis=1)
    earlier[0] = 0.5  # a constant row
    for _ in range(25):
        new = rng.integers(0, 4, size=n) / 4.0
        new[rng.random(n) < 0.2] *= -1.0  # -0.0 among the zeros
        got = ks_counts(np.sort(new), earlier, earlier_sorted=True, new_sorted=True, rows=[3, 0])
        assert got.tolist() == ks_counts(new, earlier, earlier_sorted=True, rows=[3, 0]).tolist()


def test_length_one_and_constant() -> None:
    assert ks_counts([0.5], [[0.5], [0.7]], new_sorted=True).tolist() == [0, 1]
    assert ks_counts([1.0, 1.0], [[1.0, 1.0]], new_sorted=True).tolist() == [0]


@pytest.mark.parametrize(
    ("new", "match"),
    [
        ([0.0, np.nan, 1.0], "NaN or infinite"),
        ([0.0, 1.0, np.inf], "NaN or infinite"),
        ([1.0, 0.5, 0.0], "not ascending"),
        ([], "empty"),
        ([0.0, 1.0], r"shape \(N, 2\)"),
    ],
)
def test_refuses_by_name(new: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ks_counts(new, np.zeros((2, 3)), earlier_sorted=True, new_sorted=True)
