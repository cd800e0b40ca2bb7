"""The round's and a submission's pictures: PNGs drawn from stored decisions and predictions."""

from __future__ import annotations

import io

import matplotlib.image
import numpy as np

from numerai_assets.scoring.concordance import RoundClusters
from numerai_assets.scoring.policy import ScoringPolicy
from numerai_assets.views.pictures import (
    markdown_image,
    round_picture,
    round_values,
    scoring_thresholds,
    submission_picture,
)


def scored(score, ks=None, r=None, matches=()):
    nearest = {}
    if ks is not None:
        nearest["ks"] = {"ks": ks}
    if r is not None:
        nearest["correlation"] = {"correlation": r}
    return {
        "concordant": {"pending": False, "value": score < 0.12, "score": score},
        "original": {"pending": False, "value": not matches, "nearest": nearest,
                     "matches": list(matches)},
    }  # fmt: skip


def image(png: bytes) -> np.ndarray:
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def test_round_values_take_the_nearest_pairs_else_the_decisive_ones():
    docs = [
        scored(0.05, ks=0.2, r=-0.4),
        scored(0.2, matches=[{"ks": 0.001, "correlation": -0.99}, {"ks": 0.004}]),
        {"invalid": {"reason": "x"}, **scored(0.3, ks=0.0)},  # not scored: left out
        {"concordant": {"pending": True}, "original": {"pending": True}},
    ]
    assert round_values(docs) == {
        "concordance": [0.05, 0.2],
        "ks": [0.2, 0.001],
        "abs_r": [0.4, 0.99],
    }


def test_the_round_picture_is_a_png_even_for_an_empty_round():
    docs = [scored(0.02 * k, ks=10.0**-k, r=k / 10) for k in range(1, 9)]
    assert image(round_picture(docs, 7)).shape[:2] == (360, 1200)
    assert image(round_picture([], 7)).shape[:2] == (360, 1200)


def test_thresholds_are_the_deployments_scoring_policy(monkeypatch):
    monkeypatch.setenv("NUMERAI_SCORING_POLICY", '{"similar_ks": 0.02, "max_correlation": 0.9}')
    limits = scoring_thresholds()
    assert (limits.similar_ks, limits.max_correlation) == (0.02, 0.9)
    default = ScoringPolicy()
    assert tuple(vars(scoring_thresholds(default)).values()) == (
        default.concordance_threshold,
        default.max_correlation,
        default.duplicate_ks,
        default.similar_ks,
    )


def test_the_submission_picture_has_a_panel_per_cluster():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(5), 30)
    splits = np.tile(np.repeat(np.arange(3), 10), 5)
    splits[labels == 4] = 0  # one cluster with a single split: drawn, nothing to compare
    clusters = RoundClusters(labels, splits, 5)
    png = submission_picture(rng.random(150), clusters, "ann's submission")
    assert image(png).shape[:2] == (640, 1200)  # 2 rows of 3 panels


def test_a_markdown_image_is_a_data_uri():
    assert markdown_image(b"\x89PNG", "round 1") == "![round 1](data:image/png;base64,iVBORw==)"
