import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import ks_2samp

from numerai_assets.scoring.correlation import correlations
from numerai_assets.scoring.ks import ks_counts, ks_statistic, ks_statistics


def scipy_ks(new, earlier):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's p-value warnings; the statistic is exact
        return np.array([ks_2samp(new, row).statistic for row in earlier])


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 7, 8, 9, 13])
@pytest.mark.parametrize(
    "draw",
    [
        pytest.param(lambda rng, shape: rng.random(shape), id="continuous"),
        pytest.param(lambda rng, shape: rng.integers(0, 3, shape) / 2.0, id="three-valued"),
        pytest.param(lambda rng, shape: rng.integers(0, 12, shape) / 11.0, id="heavy-ties"),
        pytest.param(lambda rng, shape: np.round(rng.random(shape), 2), id="rounded"),
    ],
)
def test_matches_scipy(draw, rows):
    rng = np.random.default_rng(rows)
    for n in (1, 2, 5, 50, 301):
        new = draw(rng, n)
        earlier = draw(rng, (rows, n))
        np.testing.assert_allclose(
            ks_statistics(new, earlier), scipy_ks(new, earlier), rtol=0, atol=1e-12
        )


def test_constant_rows_are_exact():
    # The original shortcut scored two identical constant submissions 0.9993 apart.
    n = 1000
    new = np.full(n, 0.5)
    earlier = np.vstack([np.full(n, 0.5), np.full(n, 0.4), np.full(n, 0.6)])
    earlier = np.vstack([earlier, np.r_[np.full(n // 2, 0.5), np.full(n // 2, 0.7)]])
    np.testing.assert_array_equal(ks_statistics(new, earlier), [0.0, 1.0, 1.0, 0.5])
    np.testing.assert_allclose(ks_statistics(new, earlier), scipy_ks(new, earlier), atol=1e-12)


def test_presorted_rows_give_the_same_result():
    rng = np.random.default_rng(3)
    new = rng.integers(0, 20, 777) / 19.0
    earlier = rng.integers(0, 20, (11, 777)) / 19.0
    sorted_rows = np.sort(earlier, axis=1)
    np.testing.assert_array_equal(
        ks_statistics(new, sorted_rows, earlier_sorted=True), ks_statistics(new, earlier)
    )


def test_counts_are_integers_and_shuffling_does_not_matter():
    rng = np.random.default_rng(4)
    new = rng.random(1000)
    earlier = np.vstack([rng.permutation(new), new, rng.random(1000)])
    counts = ks_counts(new, earlier)
    assert counts.dtype == np.int64
    assert counts[0] == counts[1] == 0
    assert ks_statistics(new, earlier)[2] == counts[2] / 1000


def test_counts_at_a_known_gap():
    n = 1000
    new = np.arange(n) / n
    shifted = new.copy()
    shifted[:30] = 2.0  # 30 of the smallest values moved above everything: D = 30 / n
    assert ks_counts(new, shifted[None, :])[0] == 30
    assert ks_statistics(new, shifted[None, :])[0] == 0.03


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([0.1, 0.2, 0.2, 0.9], [0.2, 0.2, 0.5]),
        ([1.0], [1.0, 1.0, 2.0]),
        (np.arange(10) % 3, np.arange(7) % 2),
        ([0.5] * 5, [0.5] * 8),
    ],
)
def test_two_samples_of_different_sizes(a, b):
    assert ks_statistic(a, b) == pytest.approx(ks_2samp(a, b).statistic, abs=1e-12)


def test_no_earlier_submissions():
    assert ks_statistics(np.ones(5), np.empty((0, 5))).shape == (0,)


@pytest.mark.parametrize(
    ("new", "earlier", "message"),
    [
        (np.ones(5), np.ones((2, 4)), r"earlier must have shape \(N, 5\)"),
        (np.ones((2, 2)), np.ones((2, 2)), "new must be one-dimensional"),
        (np.array([0.1, np.nan]), np.ones((1, 2)), "new contains NaN"),
        (np.ones(2), np.array([[0.1, np.inf]]), "earlier contains NaN or infinite"),
        (np.ones(0), np.ones((1, 0)), "new is empty"),
    ],
)
def test_bad_input_is_named(new, earlier, message):
    with pytest.raises(ValueError, match=message):
        ks_statistics(new, earlier)


small_floats = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]) | st.floats(0, 1)


@st.composite
def submissions(draw):
    n = draw(st.integers(1, 40))
    rows = draw(st.integers(1, 6))
    new = draw(arrays(np.float64, n, elements=small_floats))
    return new, draw(arrays(np.float64, (rows, n), elements=small_floats))


@settings(max_examples=200, deadline=None)
@given(submissions())
def test_property_matches_scipy(data):
    new, earlier = data
    np.testing.assert_allclose(
        ks_statistics(new, earlier), scipy_ks(new, earlier), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("presorted", [False, True])
def test_non_finite_rows_are_refused(bad, presorted):
    rows = np.sort(np.random.default_rng(5).random((3, 40)), axis=1)
    rows[1, 20] = bad
    if presorted:
        rows = np.sort(rows, axis=1)  # as the pipeline would have stored them
    with pytest.raises(ValueError, match="earlier contains NaN or infinite values"):
        ks_statistics(np.arange(40.0), rows, earlier_sorted=presorted)


@pytest.mark.parametrize("rows", [np.array([True, False, True]), np.array([1.7]), [0.0]])
def test_rows_that_are_not_integer_indices_are_refused(rows):
    """A boolean mask was read as the indices 1, 0, 1, and 1.7 as row 1."""
    earlier = np.random.default_rng(7).random((3, 20))
    for compare in (ks_counts, correlations):
        with pytest.raises(ValueError, match="rows must be integer indices, got dtype"):
            compare(earlier[0], earlier, rows=rows)
    assert ks_counts(earlier[0], earlier, rows=[]).shape == (0,)  # an empty list is no rows


def test_new_given_sorted_counts_the_same_and_unsorted_is_refused():
    """Phase 2 passes the cache's sorted row (no sort per call): the same counts, ties and a
    constant row included; a row that is not ascending is refused, not counted."""
    rng = np.random.default_rng(12)
    new = np.round(rng.random(500), 2)
    earlier = np.sort(np.vstack([rng.random(500), new[::-1], np.full(500, 0.5)]), axis=1)
    expected = ks_counts(new, earlier, earlier_sorted=True, rows=[2, 0, 1])
    got = ks_counts(np.sort(new), earlier, earlier_sorted=True, rows=[2, 0, 1], new_sorted=True)
    np.testing.assert_array_equal(got, expected)
    assert got[2] == 0
    with pytest.raises(ValueError, match="new is not ascending"):
        ks_counts(new, earlier, earlier_sorted=True, new_sorted=True)
