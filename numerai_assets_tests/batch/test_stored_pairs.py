"""Decisions from the round's stored pairs (pruned KS counts, kept as bounds where far) equal
decisions with every statistic computed exactly, nearest pairs included: on random rounds with
copies, near-copies on the KS limits, constant files and several submissions per user (so a
submission's nearest overall is often its own user's, never compared)."""

from __future__ import annotations

import numpy as np
import pytest

from numerai_assets.batch.originality import StoredPairStatistics
from numerai_assets.prediction_cache import RoundPredictionCache
from numerai_assets.prediction_cache.pairs import RoundPairStore
from numerai_assets.scoring.comparison import order_key
from numerai_assets.scoring.policy import ScoringPolicy
from numerai_assets.scoring.round_decisions import InMemoryPairStatistics, decide_in_order
from numerai_assets_tests.scoring.test_round_decisions import N, random_round


def stored_statistics(tmp_path, members, predictions, policy) -> StoredPairStatistics:
    """Every pair of the round computed into a pair store (pruned), in the round's order."""
    cache = RoundPredictionCache(tmp_path, 1, [f"t{k}" for k in range(N)])
    keys = {m.id: f"{m.id}-key" for m in members}
    cache.add((keys[i], np.asarray(p, dtype=float)) for i, p in predictions.items())
    store = RoundPairStore(cache)
    ordered = [keys[m.id] for m in sorted(members, key=lambda m: order_key(m.created, m.id))]
    exact_up_to = policy.ks_limits(N).similar_at_most
    for shard in store.plan(ordered, 3, min_pairs=1):
        store.compute(shard, exact_up_to)
    return StoredPairStatistics(cache, store.table(), keys)


@pytest.mark.parametrize("seed", range(60))
def test_stored_pairs_decide_and_record_nearest_pairs_as_exact_statistics(tmp_path, seed):
    members, predictions = random_round(seed)
    policy = ScoringPolicy(min_similar=1 + seed % 2)
    exact = decide_in_order(members, predictions, InMemoryPairStatistics(predictions), policy)
    stored = stored_statistics(tmp_path, members, predictions, policy)
    got = decide_in_order(members, predictions, stored, policy)
    assert got.keys() == exact.keys()
    for submission_id, want in exact.items():
        assert exact_parts(got[submission_id]) == exact_parts(want), submission_id
        assert correlations(got[submission_id]) == pytest.approx(
            correlations(want), abs=1e-9, nan_ok=True
        )


def exact_parts(decision) -> tuple:  # noqa: ANN001
    """Everything but Pearson r, which BLAS gives within rounding of the two-pass kernel."""
    result = decision.result
    return (
        result.original,
        result.reason,
        result.compared,
        result.pairs,
        [(m.index, m.ks) for m in result.matches],
        decision.matched,
        *[(n.id, n.ks) if n else None for n in (decision.nearest_ks, decision.nearest_correlation)],
    )


def correlations(decision) -> list[float]:  # noqa: ANN001
    nearest = (decision.nearest_ks, decision.nearest_correlation)
    values = [m.correlation for m in decision.result.matches]
    values += [n.correlation for n in nearest if n is not None]
    return [float("nan") if v is None else v for v in values]
