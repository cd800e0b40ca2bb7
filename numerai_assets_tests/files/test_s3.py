"""What only the S3 implementation does: client setup, error codes, retries, against moto."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from numerai_assets.files import ObjectNotFound, S3Buckets, StorageError, make_s3_client
from numerai_assets_tests.s3_server import S3_TEST_CREDENTIALS, start_moto, stop_moto


def test_client_retries_transient_errors_and_uses_path_style(s3_server: str) -> None:
    client = make_s3_client(endpoint_url=s3_server, **S3_TEST_CREDENTIALS)
    config = client.meta.config
    # botocore's max_attempts counts retries; total_max_attempts includes the first try.
    assert config.retries == {"mode": "standard", "total_max_attempts": 6}
    assert config.s3 == {"addressing_style": "path"}
    assert config.connect_timeout == 10 and config.read_timeout == 60
    assert client.meta.endpoint_url == s3_server
    assert client.meta.region_name == "us-east-1"


def test_client_without_endpoint_keeps_aws_defaults() -> None:
    client = make_s3_client(region="eu-west-1", access_key="a", secret_key="b")
    assert client.meta.endpoint_url == "https://s3.eu-west-1.amazonaws.com"
    assert not (client.meta.config.s3 or {}).get("addressing_style")
    assert client.meta.config.retries["mode"] == "standard"


def test_other_client_errors_carry_the_s3_code(s3_client: Any, s3_bucket: str) -> None:
    # Archived objects cannot be read without a restore: a real, non-404 S3 error.
    s3_client.put_object(Bucket=s3_bucket, Key="archived", Body=b"x", StorageClass="GLACIER")
    with pytest.raises(StorageError, match="InvalidObjectState") as info:
        S3Buckets(s3_client).read_bytes(s3_bucket, "archived")
    assert not isinstance(info.value, ObjectNotFound)
    assert f"s3://{s3_bucket}/archived" in str(info.value)


def test_upload_to_missing_bucket(s3_client: Any, tmp_path: Path) -> None:
    src = tmp_path / "sub.csv"
    src.write_text("id,prediction\n")
    with pytest.raises(ObjectNotFound, match="bucket 'no-such-bucket-x' does not exist"):
        S3Buckets(s3_client).upload_file(src, "no-such-bucket-x", "sub.csv")
    with pytest.raises(ObjectNotFound, match="does not exist"):
        S3Buckets(s3_client).put_bytes("no-such-bucket-x", "sub.csv", b"x")


def test_unreachable_server_is_a_storage_error() -> None:
    server, url = start_moto()
    stop_moto(server)  # nothing listens on the port any more
    # Production's client settings but one attempt, so the failure comes without backoff waits.
    client = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client(
        "s3",
        endpoint_url=url,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2),
    )
    with pytest.raises(StorageError, match="Could not connect") as info:
        S3Buckets(client).size("bucket", "k")
    assert "s3://bucket/k" in str(info.value)


def test_connection_refused_is_retried_until_the_server_is_back() -> None:
    """A real outage: the first GET is refused because nothing listens; the retry succeeds.

    The server is brought back from a ``before-send`` hook on the second attempt rather than on a
    timer, so the test does not depend on backoff timing. The hook does not touch the request.
    """
    server, url = start_moto()
    port = server.get_host_and_port()[1]
    setup = make_s3_client(endpoint_url=url, **S3_TEST_CREDENTIALS)
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    setup.create_bucket(Bucket=bucket)
    setup.put_object(Bucket=bucket, Key="42/numerai_datasets.zip", Body=b"dataset bytes")
    setup.close()
    stop_moto(server)

    # A fresh client, so no kept-alive connection to the old server's handler threads exists.
    client = make_s3_client(endpoint_url=url, **S3_TEST_CREDENTIALS)
    attempts: list[str] = []
    restarted: list[Any] = []

    def before_send(request: Any, **_: Any) -> None:
        attempts.append(request.url)
        if len(attempts) == 2:
            # moto keeps its state in-process, so the new server still has the bucket.
            restarted.append(start_moto(port)[0])

    client.meta.events.register("before-send.s3.GetObject", before_send)
    try:
        data = S3Buckets(client).read_bytes(bucket, "42/numerai_datasets.zip")
    finally:
        for again in restarted:
            setup = make_s3_client(endpoint_url=url, **S3_TEST_CREDENTIALS)
            setup.delete_object(Bucket=bucket, Key="42/numerai_datasets.zip")
            setup.delete_bucket(Bucket=bucket)
            stop_moto(again)

    assert data == b"dataset bytes"
    assert len(attempts) == 2  # refused once, then retried
