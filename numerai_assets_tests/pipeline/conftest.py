"""A deployment on temporary local state, a small seeded round, and running what the sensor asks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from numerai_assets.cli.context import Deployment
from numerai_assets.cli.demo import demo_submissions
from numerai_assets.cli.submissions import upload_submission
from numerai_assets.datasets.synthetic import make_round, write_round_zip
from numerai_assets.files import dataset_key
from numerai_assets_tests.daemon import evaluate_sensor, launch  # noqa: F401 - the tests' import


@dataclass
class SeededRound:
    deployment: Deployment
    round: int
    tournament: pd.DataFrame

    @property
    def ids(self) -> np.ndarray:
        return self.tournament["id"].to_numpy()

    def submit(self, user: str, data: bytes) -> str:
        return str(upload_submission(self.deployment, round=self.round, user=user, data=data))

    def submit_demo(self, count: int = 8) -> dict[str, str]:
        """The demo's users (every outcome); returns user -> submission id."""
        return {
            user: self.submit(user, data)
            for user, data in demo_submissions(self.ids, self.tournament, count, seed=0)
        }

    def by_user(self) -> dict[str, dict]:
        return {d["username"]: d for d in self.deployment.store.round_submissions(self.round)}


def seed_round(
    deployment: Deployment, round: int, *, rows: int = 1500, seed: int = 0
) -> SeededRound:
    training, tournament = make_round(
        training_rows=rows,
        validation_rows=rows * 2 // 5,
        test_rows=rows * 2 // 5,
        live_rows=rows // 5,
        eras=6,
        seed=seed,
    )
    path = write_round_zip(training, tournament, deployment.settings.home / f"seed-{round}.zip")
    key = dataset_key(deployment.settings, round)
    deployment.buckets.upload_file(path, deployment.settings.dataset_bucket, key)
    return SeededRound(deployment, round, tournament)


@pytest.fixture
def deployment(local_env: Path) -> Deployment:
    return Deployment.from_env()


@pytest.fixture
def seeded(deployment: Deployment) -> SeededRound:
    return seed_round(deployment, 7)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance
