"""A round's decisions in one ordered pass equal, on random rounds, the rule applied submission by
submission: the comparison rule over the decisions so far, then ``originality`` on the rows it
picks. Rounds hold copies, reorderings, near-copies sitting exactly on the KS limits, constant
files, several submissions per user and ties of ``created``."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from numerai_assets.scoring.comparison import Member, latest_comparable_per_user
from numerai_assets.scoring.originality import originality
from numerai_assets.scoring.policy import ScoringPolicy
from numerai_assets.scoring.round_decisions import InMemoryPairStatistics, decide_in_order

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
N = 400  # rows: the fixed limits are KS < 2/400 and KS <= 12/400


def shifted_copy(rng: np.random.Generator, base: np.ndarray, count: int) -> np.ndarray:
    """``base`` with its ``count`` smallest values moved above its largest, shuffled: the KS
    count against ``base`` is exactly ``count``."""
    order = np.argsort(base)
    values = base.copy()
    values[order[:count]] = base.max() + 1e-3 * (1 + np.arange(count))
    return rng.permutation(values)


def random_round(seed: int) -> tuple[list[Member], dict[int, np.ndarray]]:
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 14))
    users = [f"u{k}" for k in range(int(rng.integers(1, 6)))]
    predictions: dict[int, np.ndarray] = {}
    members = []
    for k in range(size):
        pool = list(predictions.values())
        kind = rng.integers(7)
        if kind == 0 or not pool:
            p = rng.random(N)
        elif kind == 1:
            p = rng.permutation(pool[rng.integers(len(pool))])  # duplicate by KS
        elif kind == 2:  # on the duplicate and similar limits, and one past each
            count = int(rng.choice([1, 2, 3, 12, 13]))
            p = shifted_copy(rng, pool[rng.integers(len(pool))], count)
        elif kind == 3:
            p = np.clip(pool[rng.integers(len(pool))] + rng.normal(0, 0.01, N), 0, 1)
        elif kind == 4:
            p = np.full(N, 0.5)  # constant: r undefined
        elif kind == 5:
            p = pool[rng.integers(len(pool))] ** 2  # monotone: correlated
        else:
            p = rng.beta(2, 5, N)
        predictions[k] = p
        created = T0 + timedelta(seconds=int(rng.integers(0, 6)))  # ties broken by id
        members.append(Member(k, str(rng.choice(users)), created))
    return members, predictions


def one_by_one(members, predictions, policy):
    """The rule as written, submission by submission (the reference)."""
    decided = {m.id: m for m in members}
    results = {}
    for member in sorted(members, key=lambda m: m.key):
        picked = latest_comparable_per_user(decided.values(), member)
        rows = np.vstack([predictions[m.id] for m in picked]) if picked else np.empty((0, N))
        result = originality(predictions[member.id], rows, policy=policy)
        results[member.id] = (result, tuple(m.id for m in picked))
        decided[member.id] = member.decided(result.original)
    return results


@pytest.mark.parametrize("seed", range(200))
def test_the_ordered_pass_equals_the_rule_applied_one_by_one(seed):
    members, predictions = random_round(seed)
    policy = ScoringPolicy(min_similar=1 + seed % 2)
    expected = one_by_one(members, predictions, policy)
    decisions = decide_in_order(
        members, predictions, InMemoryPairStatistics(predictions), policy, keep_compared=True
    )
    assert decisions.keys() == expected.keys()
    for submission_id, (result, compared) in expected.items():
        decision = decisions[submission_id]
        assert decision.compared == compared
        assert decision.result == result


def test_nearest_pairs_by_ks_and_by_defined_abs_correlation():
    rng = np.random.default_rng(1)
    base = rng.random(N)
    predictions = {
        0: base,
        1: np.full(N, 0.25),  # constant: r undefined, never nearest by |r|
        2: shifted_copy(rng, base, 40),  # KS 0.1 from base, r near 0
        3: 1 - base,  # r = -1 with base, KS small
        4: shifted_copy(rng, base, 20),  # decided now
    }
    members = [Member(k, f"u{k}", T0 + timedelta(seconds=k)) for k in predictions]
    statistics = InMemoryPairStatistics(predictions)
    decisions = decide_in_order(
        members, [4], statistics, ScoringPolicy(similar_ks=0.01), keep_compared=True
    )
    decision = decisions[4]
    assert decision.compared == (0, 1, 2, 3)
    ks = {
        k: c / N
        for k, c in zip(
            decision.compared,
            statistics.compare(4, statistics.index(decision.compared))[1],
            strict=True,
        )
    }
    assert decision.nearest_ks.id == min(ks, key=ks.get) and decision.nearest_ks.ks == min(
        ks.values()
    )
    assert decision.nearest_correlation.id in (0, 2, 3)
    assert decision.nearest_correlation.correlation is not None
    only_constant = decide_in_order(
        members[:2] + [Member(5, "u5", T0 + timedelta(seconds=9))],
        [5],
        InMemoryPairStatistics({1: predictions[1], 5: rng.random(N)}),
        ScoringPolicy(),
    )[5]
    assert only_constant.nearest_correlation is None
    assert only_constant.nearest_ks.id == 1 and math.isfinite(only_constant.nearest_ks.ks)
    first = decide_in_order(
        members[:1], [0], InMemoryPairStatistics(predictions), ScoringPolicy(), keep_compared=True
    )
    assert first[0].compared == () and first[0].nearest_ks is None and first[0].result.original


def test_members_without_predictions_keep_their_place_and_are_never_compared():
    """A submission left pending (its file unreadable this time) still stands for its user, as
    the pipeline has always had it, and is compared with nobody."""
    rng = np.random.default_rng(2)
    a = rng.random(N)
    members = [
        Member(0, "ann", T0),
        Member(1, "bob", T0 + timedelta(seconds=1)),  # no predictions
        Member(2, "cat", T0 + timedelta(seconds=2)),
    ]
    statistics = InMemoryPairStatistics({0: a, 2: rng.permutation(a)})
    decisions = decide_in_order(members, [0, 1, 2], statistics, ScoringPolicy(), keep_compared=True)
    assert set(decisions) == {0, 2}
    assert decisions[2].compared == (0,) and decisions[2].result.reason == "duplicate"


class LoosestBounds(InMemoryPairStatistics):
    """A source as loose as :class:`PairStatistics` allows: every count above ``exact_up_to``
    that is not the smallest of its row is given as the weakest lower bound that still leaves
    the smallest exact: one above ``exact_up_to`` or the row's smallest count, whichever is
    larger (a stored round's pruned pairs may be that loose)."""

    def compare(self, new, earlier, exact_up_to=0):
        r, counts = super().compare(new, earlier, exact_up_to)
        if len(counts):
            smallest = counts.min()
            loose = (counts > exact_up_to) & (counts > smallest)
            counts = np.where(loose, max(exact_up_to, smallest) + 1, counts)
        return r, counts


@pytest.mark.parametrize("seed", range(100))
def test_a_source_of_bounds_records_the_same_decisions_and_exact_nearest_pairs(seed):
    """What is recorded (decision, matches and both nearest pairs, KS included) is exact
    whatever bounds a source gives: the nearest pair by |r| is often far in KS."""
    members, predictions = random_round(seed)
    rng = np.random.default_rng(seed)
    for k in list(predictions)[::3]:  # near-copies by r, far by KS: the |r|-nearest is bounded
        predictions[k] = predictions[k] ** float(rng.choice([0.5, 3.0]))
    policy = ScoringPolicy(min_similar=1 + seed % 2)
    exact = decide_in_order(members, predictions, InMemoryPairStatistics(predictions), policy)
    bounded = decide_in_order(members, predictions, LoosestBounds(predictions), policy)
    assert bounded == exact
