import numpy as np
import pytest

from numerai_assets.scoring.originality import originality
from numerai_assets.scoring.policy import ScoringPolicy

N = 2000


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def with_ks_gap(base: np.ndarray, rng, gap: int) -> np.ndarray:
    """A shuffled copy of ``base`` whose KS statistic against it is exactly ``gap / N``."""
    copy = np.sort(base)
    copy[:gap] = 2.0 + np.arange(gap)  # move the `gap` smallest values above everything
    return rng.permutation(copy)


def test_differently_distributed_submissions_are_original(rng):
    # Two independent uniform samples are "similar" (KS ~ 0.02): originality is about the
    # distribution of predictions, so the earlier ones here are shaped differently.
    new = rng.random(N)
    result = originality(new, np.vstack([rng.random(N) ** k for k in (2, 3, 4, 5, 6)]))
    assert result.original and result.reason is None and result.matches == ()
    assert result.compared == 5


def test_no_earlier_submissions_is_original():
    assert originality(np.random.default_rng(0).random(N), np.empty((0, N))).original


def test_correlated_wins_and_names_the_submission(rng):
    new = rng.random(N)
    earlier = np.vstack([rng.random(N), 0.5 * new + 0.2 + 0.01 * rng.random(N), rng.random(N)])
    result = originality(new, earlier)
    assert not result.original and result.reason == "correlated"
    assert [m.index for m in result.matches] == [1]
    assert result.matches[0].correlation > 0.95


def test_negative_correlation_counts(rng):
    new = rng.random(N)
    result = originality(new, (1.0 - new)[None, :])
    assert result.reason == "correlated" and result.matches[0].correlation == pytest.approx(-1)


def test_shuffled_copy_is_a_duplicate(rng):
    new = rng.random(N)
    result = originality(new, np.vstack([rng.random(N), rng.permutation(new)]))
    assert (result.original, result.reason) == (False, "duplicate")
    assert [(m.index, m.ks) for m in result.matches] == [(1, 0.0)]


def test_identical_constant_submissions_are_not_original():
    constant = np.full(N, 0.5)
    result = originality(constant, constant[None, :])
    assert (result.original, result.reason) == (False, "duplicate")
    assert result.matches[0].correlation is None  # a constant has no correlation


@pytest.mark.parametrize(
    ("gap", "original", "reason"),
    [
        (9, False, "duplicate"),  # 0.0045 < 0.005
        (10, False, "similar"),  # exactly 0.005 is not < 0.005, but <= 0.03
        (60, False, "similar"),  # exactly 0.03 is similar
        (61, True, None),  # 0.0305
    ],
)
def test_thresholds_are_exact(rng, gap, original, reason):
    new = rng.random(N)
    result = originality(new, with_ks_gap(new, rng, gap)[None, :])
    assert (result.original, result.reason) == (original, reason)
    if reason:
        assert result.matches[0].ks == gap / N


def test_similar_needs_min_similar_matches(rng):
    new = rng.random(N)
    earlier = np.vstack([with_ks_gap(new, rng, 40), rng.random(N) ** 2])
    assert originality(new, earlier).reason == "similar"
    loose = ScoringPolicy(min_similar=2)
    assert originality(new, earlier, policy=loose).original
    two_similar = np.vstack([earlier, with_ks_gap(new, rng, 50)])
    result = originality(new, two_similar, policy=loose)
    assert result.reason == "similar" and [m.index for m in result.matches] == [0, 2]


def test_presorted_rows_give_the_same_decision(rng):
    new = rng.random(N)
    earlier = np.vstack([rng.random(N), with_ks_gap(new, rng, 30)])
    assert originality(new, earlier) == originality(
        new, earlier, earlier_sorted_rows=np.sort(earlier, axis=1)
    )
    with pytest.raises(ValueError, match="earlier_sorted_rows must have the shape"):
        originality(new, earlier, earlier_sorted_rows=np.sort(earlier[:1], axis=1))


@pytest.mark.parametrize(
    "kwargs",
    [{"max_correlation": 1.5}, {"duplicate_ks": 0.05, "similar_ks": 0.03}, {"min_similar": 0}],
)
def test_bad_thresholds_are_refused(kwargs):
    with pytest.raises(ValueError):
        ScoringPolicy(**kwargs)


def test_picking_rows_equals_slicing_them(rng):
    from numerai_assets.scoring.correlation import correlations
    from numerai_assets.scoring.ks import ks_statistics

    new = rng.random(N)
    earlier = np.vstack([rng.random(N) ** k for k in (1, 2, 3)] + [rng.permutation(new)] * 3)
    sorted_rows = np.sort(earlier, axis=1)
    pick = np.array([5, 0, 2, 3, 1])
    np.testing.assert_array_equal(
        ks_statistics(new, sorted_rows, earlier_sorted=True, rows=pick),
        ks_statistics(new, earlier[pick]),
    )
    np.testing.assert_array_equal(
        correlations(new, earlier, rows=pick), correlations(new, earlier[pick])
    )
    picked = originality(new, earlier, earlier_sorted_rows=sorted_rows, rows=pick)
    assert picked == originality(new, earlier[pick])
    assert [m.index for m in picked.matches] == [0, 3]  # positions in `rows`
    assert originality(new, earlier, rows=np.array([], dtype=int)).original
    with pytest.raises(ValueError, match="rows must index the 6 rows of earlier"):
        originality(new, earlier, rows=np.array([6]))


@pytest.mark.parametrize(
    ("new", "earlier", "message"),
    [
        (np.array([np.nan, 0.5]), np.empty((0, 2)), "new contains NaN or infinite values"),
        (np.ones((2, 2)), np.empty((0, 2)), "new must be one-dimensional"),
        (np.ones(3), np.empty((0, 5)), r"earlier must have shape \(N, 3\)"),
    ],
)
def test_bad_input_is_refused_even_with_nothing_to_compare(new, earlier, message):
    """With no earlier rows the first submission of a round was called original unchecked."""
    with pytest.raises(ValueError, match=message):
        originality(new, earlier)
