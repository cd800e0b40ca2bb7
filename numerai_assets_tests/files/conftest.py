"""A real S3-compatible server (moto) on loopback, and the two ``Buckets`` implementations.

``s3_server``/``s3_client``/``s3_bucket`` depend on nothing from this package's tests, so they can
move to the top-level conftest when other suites need S3.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from numerai_assets.files import LocalBuckets, S3Buckets, make_s3_client

from .support import S3_TEST_CREDENTIALS, Store, start_moto, stop_moto


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
