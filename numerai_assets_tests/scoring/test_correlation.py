import warnings

import numpy as np
import pytest

from numerai_assets.scoring.correlation import correlation_block, correlations, standardized
from numerai_assets.scoring.originality import originality


def reference(new, earlier):
    return np.array([np.corrcoef(new, row)[0, 1] for row in earlier])


@pytest.mark.parametrize("rows", [1, 3, 8])
def test_matches_numpy(rows):
    rng = np.random.default_rng(rows)
    new = rng.random(2000)
    earlier = np.vstack([rng.random((rows, 2000)), 0.3 * new + 0.1, 1 - new])
    r = correlations(new, earlier)
    np.testing.assert_allclose(r, reference(new, earlier), rtol=0, atol=1e-12)
    assert r[-2] == pytest.approx(1.0) and r[-1] == pytest.approx(-1.0)


def test_tiny_spread_around_a_large_mean_stays_accurate():
    rng = np.random.default_rng(1)
    new = rng.random(5000)
    earlier = 0.7 + 1e-9 * (new + 0.1 * rng.random(5000))
    expected = reference(new, earlier[None, :])
    np.testing.assert_allclose(correlations(new, earlier[None, :]), expected, atol=1e-9)


def test_constant_rows_and_constant_new_give_nan_without_warnings():
    rng = np.random.default_rng(2)
    new = rng.random(100)
    earlier = np.vstack([np.full(100, 0.5), rng.random(100), np.full(100, 1 / 3)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = correlations(new, earlier)
        constant_new = correlations(np.full(100, 0.25), earlier)
    assert np.isnan(r[0]) and np.isnan(r[2]) and np.isfinite(r[1])
    assert np.isnan(constant_new).all()


def test_no_earlier_and_shape_errors():
    assert correlations(np.arange(3.0), np.empty((0, 3))).shape == (0,)
    with pytest.raises(ValueError, match=r"earlier must have shape \(N, 3\)"):
        correlations(np.arange(3.0), np.ones((2, 4)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_rows_are_refused_naming_the_row(bad):
    rows = np.random.default_rng(3).random((5, 50))
    rows[3, 17] = bad
    with pytest.raises(ValueError, match=r"earlier contains NaN or infinite values \(row 3\)"):
        correlations(np.arange(50.0), rows)
    with pytest.raises(ValueError, match="earlier contains NaN or infinite values"):
        correlations(np.full(50, 0.5), rows)  # constant new: no kernel, still checked


@pytest.mark.parametrize("tiny", [1e-300, 2.0**-1074, 1e-120])
def test_a_row_spread_near_zero_reads_as_the_same_row_scaled(tiny):
    """Values such as 0 and 1e-300 (a valid file) once underflowed to r = 1 with every row: the
    squares of their differences are below the smallest double. r does not depend on scale."""
    rng = np.random.default_rng(4)
    pattern = rng.integers(0, 3, 2000).astype(np.float64)
    honest = np.vstack([rng.random(2000), pattern + rng.random(2000)])
    expected = correlations(pattern, honest)
    np.testing.assert_allclose(correlations(pattern * tiny, honest), expected, atol=1e-12)
    np.testing.assert_allclose(
        correlations(honest[0], (pattern * tiny)[None]), expected[:1], atol=1e-12
    )
    rows = standardized(np.vstack([pattern * tiny, honest]))
    np.testing.assert_allclose(correlation_block(rows[:1], rows[1:])[0], expected, atol=1e-12)
    assert abs(expected[0]) < 0.1  # independent: nowhere near the correlation threshold


def test_a_file_near_zero_does_not_make_later_ones_correlated():
    rng = np.random.default_rng(5)
    hostile = (rng.random(1000) < 0.5) * 1e-300  # not constant, so not refused
    honest = rng.random(1000)
    result = originality(honest, hostile[None])
    assert result.original and result.pairs["correlated"] == 0


def test_a_non_finite_row_picked_by_rows_is_named_by_its_row_in_earlier():
    rows = np.random.default_rng(6).random((6, 50))
    rows[3, 17] = np.nan
    with pytest.raises(ValueError, match=r"earlier contains NaN or infinite values \(row 3\)"):
        correlations(np.arange(50.0), rows, rows=np.array([5, 3]))


def test_standardized_in_place_gives_the_same_bits_and_leaves_what_it_may_not_touch():
    """Phase 1 standardizes a fresh copy in place (one matrix fewer in memory): every value must
    be the one the copying path gives, for ordinary, tiny-spread, constant and NaN rows; an input
    it may not overwrite (a read-only map, an int array, no permission) is left as it was."""
    rng = np.random.default_rng(7)
    rows = np.vstack(
        [
            rng.random((5, 300)),
            (rng.random(300) < 0.5) * 1e-300,  # spread below 1e-100: scaled first
            np.full(300, 0.25),  # constant
            np.r_[np.nan, rng.random(299)],
        ]
    )
    expected = standardized(rows)
    scratch = rows.copy()
    got = standardized(scratch, overwrite_input=True)
    assert np.shares_memory(got, scratch)  # it did reuse the input
    np.testing.assert_array_equal(got.view(np.uint64), expected.view(np.uint64))
    for untouchable, kwargs in (
        (rows.copy(), {}),
        (rows.copy(), {"overwrite_input": False}),
        (np.array(rows, copy=True), {"overwrite_input": True}),  # made read-only below
    ):
        if kwargs.get("overwrite_input"):
            untouchable.flags.writeable = False
        before = untouchable.copy()
        out = standardized(untouchable, **kwargs)
        np.testing.assert_array_equal(out.view(np.uint64), expected.view(np.uint64))
        np.testing.assert_array_equal(untouchable, before)
    ints = rng.integers(0, 9, (3, 50))
    held = ints.copy()
    standardized(ints, overwrite_input=True)  # converted to float: a copy, ints unchanged
    np.testing.assert_array_equal(ints, held)


def test_standardized_in_place_only_on_a_contiguous_array():
    """A strided view (reversed, every other column) or an overlapping one is not reused: its
    sums would run in another order (1 ulp off) or read what was just written (wrong)."""
    rng = np.random.default_rng(8)
    base = rng.random((4, 401))
    for view in (
        base.copy()[:, ::-1],
        base.copy()[:, ::2],
        np.lib.stride_tricks.as_strided(base.copy(), shape=(3, 300), strides=(8 * 50, 8)),
    ):
        expected = standardized(np.ascontiguousarray(view))
        before = view.copy()
        got = standardized(view, overwrite_input=True)
        np.testing.assert_array_equal(got.view(np.uint64), expected.view(np.uint64))
        np.testing.assert_array_equal(view, before)
