"""The round's KS false-alarm check on a synthetic round of 45,000 tournament rows, through the
real sensor and job: it warns under the default policy and is quiet under the size-aware one."""

import math

import dagster as dg
import numpy as np
import pytest

from numerai_assets.datasets.synthetic import model_probabilities, submission_csv
from numerai_assets.definitions import build_definitions
from numerai_assets.pipeline.jobs import batch_run_config
from numerai_assets.scoring.policy import ScoringPolicy

from .conftest import evaluate_sensor, launch, seed_round


def p_ks_below(count: int, n: int) -> float:
    """P(D * n < count) for two independent samples of n each (Gnedenko–Korolyuk)."""

    def log_binomial(m: int, k: int) -> float:
        return math.lgamma(m + 1) - math.lgamma(k + 1) - math.lgamma(m - k + 1)

    terms = [
        (-1) ** (j + 1) * math.exp(log_binomial(2 * n, n - j * count) - log_binomial(2 * n, n))
        for j in range(1, n // count + 1)
    ]
    return 1.0 - 2.0 * sum(terms)


def check_of(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "ks_false_alarm_rate"
    ]
    return evaluation


def test_the_round_check_at_45000_rows(deployment, instance, monkeypatch):
    seeded = seed_round(deployment, 9, rows=45_000)
    assert len(seeded.ids) == 45_000
    alice = model_probabilities(seeded.tournament, seed=1, skill=0.5)
    seeded.submit("alice", submission_csv(seeded.ids, alice))
    seeded.submit("bob", submission_csv(seeded.ids, model_probabilities(seeded.tournament, seed=2)))
    seeded.submit("carol", submission_csv(seeded.ids, np.random.default_rng(0).permutation(alice)))

    (result,) = launch(instance, evaluate_sensor(instance))
    assert result.success
    evaluation = check_of(result)
    metadata = {key: value.value for key, value in evaluation.metadata.items()}
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert metadata["rows"] == 45_000 and metadata["method"] == "exact"
    assert metadata["p_duplicate"] == pytest.approx(p_ks_below(225, 45_000), abs=1e-9)
    assert metadata["p_similar"] == pytest.approx(p_ks_below(1351, 45_000), abs=1e-9)
    holding = round(metadata["holding_duplicate_ks"] * 45_000)
    assert p_ks_below(holding, 45_000) <= 0.05 < p_ks_below(holding + 1, 45_000)
    assert "at 45,000 rows" in metadata["summary"] and "would hold it" in metadata["summary"]
    # bob is an independent model of the same skill: KS 0.0271 with alice, so "similar" under
    # the fixed 0.03; carol (alice reordered) is then compared with alice only.
    docs = seeded.by_user()
    assert (docs["bob"]["original"]["reason"], docs["carol"]["original"]["reason"]) == (
        "similar",
        "duplicate",
    )
    assert docs["bob"]["original"]["matches"][0]["ks"] == pytest.approx(0.0271333, abs=1e-6)
    assert (metadata["compared_pairs"], metadata["duplicate_share"]) == (2, 0.5)
    assert metadata["similar_share"] == 1.0
    assert metadata["policies_in_round"] == ScoringPolicy().version

    # The documented rescore under a changed policy: scores only, every submission of the round.
    monkeypatch.setenv("NUMERAI_SCORING_POLICY", '{"ks_thresholds": "size-aware"}')
    size_aware = ScoringPolicy(ks_thresholds="size-aware")
    rescore = (
        build_definitions()
        .resolve_job_def("score_round")
        .execute_in_process(
            run_config=batch_run_config([]),
            instance=instance,
            partition_key="9",
            asset_selection=[dg.AssetKey("submission_scores")],
        )
    )
    assert rescore.success
    evaluation = check_of(rescore)
    assert evaluation.passed
    assert evaluation.metadata["p_similar"].value <= 0.05
    assert evaluation.metadata["policies_in_round"].value == size_aware.version
    docs = seeded.by_user()
    assert docs["bob"]["original"]["value"] is True  # 0.0271 is far above KS 0.00344
    assert docs["carol"]["original"]["reason"] == "duplicate"
    assert docs["carol"]["original"]["pairs"] == {
        "compared": 2,
        "correlated": 0,
        "duplicate": 1,
        "similar": 1,
    }
    assert evaluation.metadata["compared_pairs"].value == 3
    assert all(d["original"]["policy"] == size_aware.version for d in docs.values())
