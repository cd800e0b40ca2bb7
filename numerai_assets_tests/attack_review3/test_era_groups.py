# ruff: noqa: B023 - each lambda is called within its loop iteration
"""``consistency`` with eras grouped once (``EraGroups``) against the implementation it replaced
(commit 66b5100, copied below): the same result, or the same error, for every input."""

from __future__ import annotations

import datetime
import math
import random
from typing import Any

import numpy as np
import pytest

from numerai_assets.scoring._arrays import as_vector
from numerai_assets.scoring.consistency import (
    ConsistencyResult,
    EraGroups,
    beats_coin_flip,
    consistency,
    row_loglosses,
)


def consistency_before(probabilities: Any, targets: Any, eras: Any) -> ConsistencyResult:
    """numerai_assets/scoring/consistency.py's ``consistency`` at 66b5100, verbatim."""
    p = as_vector(probabilities, "probabilities")
    y = as_vector(targets, "targets")
    eras = np.asarray(eras)
    if not (p.shape == y.shape == eras.shape):
        raise ValueError(
            "probabilities, targets and eras must have the same length, got "
            f"{p.shape[0]}, {y.shape[0]} and {eras.shape[0] if eras.ndim else 0}"
        )
    if ((p < 0.0) | (p > 1.0)).any():
        raise ValueError("probabilities must be in [0, 1]")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("targets must be 0 or 1")
    losses = row_loglosses(p, y)
    names, era_index = np.unique(eras.astype(str), return_inverse=True)
    order = np.argsort(era_index, kind="stable")
    bounds = np.searchsorted(era_index[order], np.arange(len(names) + 1))
    era_means, beaten = {}, 0
    for k, name in enumerate(names):
        rows = order[bounds[k] : bounds[k + 1]]
        mean = math.fsum(losses[rows]) / rows.shape[0]
        era_means[str(name)] = mean
        beaten += beats_coin_flip(p[rows], y[rows], mean)
    return ConsistencyResult(
        percent=100.0 * beaten / len(names),
        validation_logloss=math.fsum(losses) / losses.shape[0],
        era_loglosses=era_means,
    )


def outcome(action: Any) -> Any:
    try:
        result = action()
    except Exception as error:  # noqa: BLE001 - compared by kind and message
        return ("error", type(error).__name__, str(error))
    return ("ok", result.percent, result.validation_logloss, list(result.era_loglosses.items()))


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN (an era's mean is never NaN, but compare safely)."""
    return repr(a) == repr(b)


ERA_KINDS = [
    lambda rng, m: [rng.choice(["era1", "era2", "era10", "ERA1"]) for _ in range(m)],
    lambda rng, m: [rng.choice([1, "1", 1.0, "1.0", True, "True"]) for _ in range(m)],
    lambda rng, m: np.array([rng.choice([1.0, float("nan"), 2.5]) for _ in range(m)]),
    lambda rng, m: [rng.choice([None, "None", float("nan"), "nan"]) for _ in range(m)],
    lambda rng, m: np.array([rng.choice([b"a", b"b"]) for _ in range(m)]),
    lambda rng, m: np.array([rng.randrange(3) for _ in range(m)], dtype=np.int8),
    lambda rng, m: [datetime.date(2026, 1, 1 + rng.randrange(3)) for _ in range(m)],
    lambda rng, m: np.array([np.datetime64("2026-01-01") + rng.randrange(3) for _ in range(m)]),
    lambda rng, m: ["é" * rng.randrange(1, 3) for _ in range(m)],
    # equal as strings, different objects: one era ("1"), as before
    lambda rng, m: np.array([rng.choice([1, "1", np.int64(1)]) for _ in range(m)], dtype=object),
    lambda rng, m: np.array([rng.choice([1, 1.0, True]) for _ in range(m)], dtype=object),
]


@pytest.mark.parametrize("seed", range(120))
def test_the_same_result_as_before_for_every_kind_of_era(seed: int) -> None:
    rng = random.Random(seed)
    m = rng.randrange(1, 40)
    eras = ERA_KINDS[seed % len(ERA_KINDS)](rng, m)
    targets = [rng.randrange(2) for _ in range(m)]
    probabilities = [rng.choice([0.5, 0.0, 1.0, rng.random()]) for _ in range(m)]
    before = outcome(lambda: consistency_before(probabilities, targets, eras))
    assert same(outcome(lambda: consistency(probabilities, targets, eras)), before)
    assert same(outcome(lambda: consistency(probabilities, targets, EraGroups.of(eras))), before)


BAD_INPUTS = [
    ([0.5, 0.5], [1, 0], ["a"]),  # eras shorter
    ([0.5], [1], ["a", "b"]),  # eras longer
    ([0.5, 0.5], [1], ["a", "b"]),  # targets shorter
    ([0.5, 0.5], [1, 0], [["a"], ["b"]]),  # 2-D eras of the right length
    ([0.5, 0.5], [1, 0], [["a", "b"]]),
    ([0.5], [1], "a"),  # 0-D eras
    ([0.5], [1], np.array("a")),
    ([], [], []),  # empty
    ([0.5], [1], []),
    ([1.5, 0.5], [1, 0], ["a", "b"]),  # probabilities out of range
    ([0.5, 0.5], [2, 0], ["a", "b"]),  # a target not 0 or 1
    ([float("nan"), 0.5], [1, 0], ["a", "b"]),
    ([[0.5, 0.5]], [[1, 0]], ["a", "b"]),  # 2-D probabilities
    ([0.5, 0.5], [1, 0], np.zeros((2, 0))),
]


@pytest.mark.parametrize(("probabilities", "targets", "eras"), BAD_INPUTS)
def test_the_same_error_as_before(probabilities: Any, targets: Any, eras: Any) -> None:
    before = outcome(lambda: consistency_before(probabilities, targets, eras))
    assert same(outcome(lambda: consistency(probabilities, targets, eras)), before)


@pytest.mark.parametrize(("probabilities", "targets", "eras"), BAD_INPUTS)
def test_grouped_eras_refuse_what_the_array_path_refuses(
    probabilities: Any, targets: Any, eras: Any
) -> None:
    """Grouped first (as prepare_batch does), an input the array path refuses is still refused,
    with the same error once grouping succeeds."""
    array_path = outcome(lambda: consistency(probabilities, targets, eras))
    assert array_path[0] == "error"
    try:
        groups = EraGroups.of(eras)
    except ValueError:
        return  # refused at grouping: eras that are not one-dimensional
    assert same(outcome(lambda: consistency(probabilities, targets, groups)), array_path)


def test_groups_made_once_answer_every_submission_alike() -> None:
    """One EraGroups for many submissions (a batch): each the same as grouped alone."""
    rng = np.random.default_rng(0)
    m = 3_000
    eras = rng.choice([f"era{k}" for k in range(120)], size=m)
    groups = EraGroups.of(eras)
    targets = rng.integers(0, 2, size=m)
    for _ in range(20):
        p = np.round(rng.random(m), rng.integers(0, 3))  # ties near 0.5 included
        assert same(
            outcome(lambda: consistency(p, targets, groups)),
            outcome(lambda: consistency_before(p, targets, eras)),
        )
