"""The two ``Buckets`` implementations, local folders and S3 (moto, from the top-level conftest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from numerai_assets.files import LocalBuckets, S3Buckets
from numerai_assets_tests.s3_server import Store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """Each behavioural test runs against both implementations."""
    if request.param == "local":
        buckets = LocalBuckets(tmp_path / "buckets")
        bucket = "test-bucket"
        (buckets.root / bucket).mkdir(parents=True)
        return Store(buckets, bucket, "local")
    client = request.getfixturevalue("s3_client")
    return Store(S3Buckets(client), request.getfixturevalue("s3_bucket"), "s3")
