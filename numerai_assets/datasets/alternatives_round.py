"""A synthetic round that shows the measured alternative originality rules at work (the README's
table): independent models of equal skill, and copies of four kinds.

``python -m numerai_assets.datasets.alternatives_round`` prints each submission's outcome under
the policy and each alternative (:mod:`numerai_assets.scoring.alternatives`, which decides
nothing).
"""

from __future__ import annotations

import numpy as np

from numerai_assets.datasets.synthetic import make_round, model_probabilities
from numerai_assets.scoring.alternatives import RULES, ad_null_quantile, compare_rules, outcome
from numerai_assets.scoring.policy import ScoringPolicy


def synthetic_round_submissions(rows: int, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """(what it is, predictions) of a synthetic round's submissions, oldest first: independent
    models (several of the same skill, so alike in distribution) and copies of four kinds."""
    _, tournament = make_round(
        training_rows=1000,
        validation_rows=rows * 2 // 5,
        test_rows=rows * 2 // 5,
        live_rows=rows - 2 * (rows * 2 // 5),
        seed=seed,
    )
    rng = np.random.default_rng(seed)
    skills = (0.5, 0.5, 0.9, 0.5, 0.25, 0.5, 0.7, 0.5)
    models = [
        model_probabilities(tournament, seed=seed + 1 + k, skill=s) for k, s in enumerate(skills)
    ]
    submissions = [
        (f"independent model (skill {s})", p) for s, p in zip(skills, models, strict=True)
    ]
    noise = rng.normal(0.0, 0.002, rows)
    submissions += [
        ("copy of model 1, rows shuffled", rng.permutation(models[0])),
        ("copy of model 3 + noise (sd 0.001)", np.clip(models[2] + noise / 2, 0, 1).round(6)),
        (
            "copy of model 2, shuffled + noise (sd 0.002)",
            np.clip(rng.permutation(models[1]) + noise, 0, 1).round(6),
        ),
        ("copy of model 4, squared (monotone)", (models[3] ** 2).round(6)),
    ]
    return submissions


def main(rows: int = 45_000) -> None:
    """Print the README's table: each submission's outcome under each rule."""
    policy = ScoringPolicy()
    submissions = synthetic_round_submissions(rows)
    judged = compare_rules([p for _, p in submissions], policy)
    limits = policy.with_size_aware_ks().ks_limits(rows)
    print(
        f"{rows:,} rows; size-aware: KS < {limits.duplicate_ks:.5f}, KS <= {limits.similar_ks:.5f};"
        f" Anderson-Darling: T <= {ad_null_quantile(rows, policy.false_alarm_level):.3f}"
    )
    print("| # | submission | " + " | ".join(RULES) + " |")
    print("| ---: | --- |" + " --- |" * len(RULES))
    for k, (what, _) in enumerate(submissions):
        cells = " | ".join(outcome(judged[rule][k]) for rule in RULES)
        print(f"| {k + 1} | {what} | {cells} |")


if __name__ == "__main__":
    main()
