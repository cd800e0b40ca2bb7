"""Shared fixtures: the tournament's sample rows, and the rule for unavailable services.

Outside CI a test whose service or data is unavailable is skipped; with
``NUMERAI_ASSETS_REQUIRE_SERVICES=1`` (set by ``.ci/run``) it fails instead, so nothing is
silently skipped in CI.

Tests marked ``mongodb`` talk to a MongoDB-wire-compatible server at the ``MONGO_URL`` this
process was started with (``.ci/mongo-server run -- .venv/bin/pytest -m mongodb`` starts one);
every other test runs with ``MONGO_URL`` unset (``local_env``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from numerai_assets.datasets import RoundDataset, load_round_dataset
from numerai_assets.files import make_s3_client
from numerai_assets.settings import DEPLOYMENT_VARIABLES
from numerai_assets_tests.s3_server import S3_TEST_CREDENTIALS, start_moto, stop_moto

REPO = Path(__file__).resolve().parents[1]
# The production Dagster instance (deploy/ecs and deploy/k8s are it plus a run launcher).
PRODUCTION_YAML = REPO / "deploy" / "production" / "dagster.yaml"
SAMPLE_DATA = Path(os.environ.get("NUMERAI_SAMPLE_DATA", REPO.parent / "shared" / "data"))


# Read once, at import: ``local_env`` removes MONGO_URL from the environment of each test.
WIRE_MONGO_URL = os.environ.get("MONGO_URL", "").strip()


def services_required() -> bool:
    return os.environ.get("NUMERAI_ASSETS_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    """Skip (or, in CI, fail) a test whose service or data is not there."""
    if services_required():
        pytest.fail(f"required in CI but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture
def local_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No services: embedded store and local folders under a fresh NUMERAI_ASSETS_HOME."""
    for name in DEPLOYMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("NUMERAI_ASSETS_HOME", str(home))
    return home


@pytest.fixture
def mongo_url() -> str:
    """The MongoDB server of the ``mongodb``-marked tests (skipped, or failed in CI, without)."""
    if not WIRE_MONGO_URL.startswith(("mongodb://", "mongodb+srv://")):
        unavailable("no MongoDB server at MONGO_URL (.ci/mongo-server run -- pytest -m mongodb)")
    return WIRE_MONGO_URL


def fresh_database_name() -> str:
    """A database of its own for one test on the shared server (dropped by the test after)."""
    return f"numerai_assets_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def home(local_env: Path) -> Path:
    return local_env


@pytest.fixture(scope="session")
def sample_data() -> Path:
    """The folder of the original tournament's sample files (``../shared/data``)."""
    if not (SAMPLE_DATA / "sample_tournament.csv.bz2").exists():
        unavailable(f"sample data not found in {SAMPLE_DATA} (set NUMERAI_SAMPLE_DATA)")
    return SAMPLE_DATA


@pytest.fixture(scope="session")
def sample_round_dir(sample_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample rows laid out as a round dataset folder (compressed CSV files)."""
    folder = tmp_path_factory.mktemp("sample_round")
    for source, target in (
        ("sample_training.csv.bz2", "numerai_training_data.csv.bz2"),
        ("sample_tournament.csv.bz2", "numerai_tournament_data.csv.bz2"),
    ):
        (folder / target).symlink_to(sample_data / source)
    return folder


@pytest.fixture(scope="session")
def sample_round(sample_round_dir: Path) -> RoundDataset:
    return load_round_dataset(sample_round_dir)


@pytest.fixture(scope="session")
def sample_submission(sample_data: Path) -> pd.DataFrame:
    """A real participant's submission for the sample tournament rows."""
    return pd.read_csv(sample_data / "sample_result.csv.bz2", dtype={"id": str})


# A real S3-compatible server (moto) over HTTP on loopback, shared by the session.


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """Endpoint URL of a moto S3 server shared by the session."""
    server, url = start_moto()
    try:
        yield url
    finally:
        stop_moto(server)


@pytest.fixture(scope="session")
def s3_client(s3_server: str) -> Any:
    """A boto3 client for ``s3_server``, configured as production configures its clients."""
    return make_s3_client(endpoint_url=s3_server, **S3_TEST_CREDENTIALS)


@pytest.fixture
def s3_bucket(s3_client: Any) -> Iterator[str]:
    """A fresh, empty bucket for one test; emptied and deleted afterwards to free moto's memory."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    yield name
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            s3_client.delete_object(Bucket=name, Key=obj["Key"])
    s3_client.delete_bucket(Bucket=name)
