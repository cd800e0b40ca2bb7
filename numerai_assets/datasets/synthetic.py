"""Synthetic rounds shaped like the tournament's, for demos, tests and benchmarks.

Features are in [0, 1] and the target depends weakly on them (as in the real data), so a simple
model beats a coin flip in most eras and the demo shows realistic consistency figures.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from numerai_assets.datasets.round_dataset import TOURNAMENT, TRAINING


def _true_weights(features: int) -> np.ndarray:
    """The hidden relation between features and target, the same in every synthetic round."""
    return np.random.default_rng(20161201).normal(0.0, 1.0, features)


def make_round(
    *,
    training_rows: int = 5000,
    validation_rows: int = 4000,
    test_rows: int = 4000,
    live_rows: int = 2000,
    features: int = 21,
    eras: int = 10,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A round's (training, tournament) frames with the original columns and unique ids."""
    rng = np.random.default_rng(seed)
    weights = _true_weights(features)

    def rows(count: int, start_id: int, era_names: list[str], data_type: str) -> pd.DataFrame:
        x = np.clip(rng.normal(0.5, 0.12, (count, features)), 0.0, 1.0).round(5)
        logits = (x - 0.5) @ weights * 0.8
        target = (rng.random(count) < 1.0 / (1.0 + np.exp(-logits))).astype(float)
        frame = pd.DataFrame(x, columns=[f"feature{k + 1}" for k in range(features)])
        frame.insert(0, "data_type", data_type)
        frame.insert(0, "era", np.array(era_names)[np.arange(count) * len(era_names) // count])
        frame.insert(0, "id", [f"n{start_id + k}" for k in range(count)])
        frame["target"] = target if data_type != "live" else np.nan
        return frame

    training = rows(training_rows, 0, [f"era{k + 1}" for k in range(eras)], "train")
    validation_eras = [f"era{eras + k + 1}" for k in range(max(1, eras // 2))]
    parts = [
        rows(validation_rows, training_rows, validation_eras, "validation"),
        rows(test_rows, training_rows + validation_rows, ["eraX"], "test"),
        rows(live_rows, training_rows + validation_rows + test_rows, ["eraX"], "live"),
    ]
    tournament = pd.concat(parts, ignore_index=True)
    order = rng.permutation(len(tournament))  # the real files interleave the splits
    return training, tournament.iloc[order].reset_index(drop=True)


def model_probabilities(tournament: pd.DataFrame, *, seed: int, skill: float = 0.5) -> np.ndarray:
    """A participant's predictions: a noisy linear model, different for every ``seed``."""
    rng = np.random.default_rng(seed)
    x = tournament[[c for c in tournament.columns if c.startswith("feature")]].to_numpy()
    guess = _true_weights(x.shape[1]) + rng.normal(0.0, 0.5, x.shape[1])
    logits = skill * ((x - 0.5) @ guess + rng.normal(0.0, 0.2, len(x)))
    return (1.0 / (1.0 + np.exp(-logits))).round(6)


def write_round_zip(training: pd.DataFrame, tournament: pd.DataFrame, path: Path) -> Path:
    """Write the original layout: a zip with the two CSV files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{TRAINING}.csv", training.to_csv(index=False))
        archive.writestr(f"{TOURNAMENT}.csv", tournament.to_csv(index=False))
    return path


def submission_csv(ids: np.ndarray, probabilities: np.ndarray) -> bytes:
    """A submission file's bytes: ``id,probability`` rows."""
    frame = pd.DataFrame({"id": ids, "probability": probabilities})
    return frame.to_csv(index=False).encode()
