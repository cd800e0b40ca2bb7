"""``buckets_from_settings`` picks the backend the environment asks for, and it works."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from numerai_assets.files import LocalBuckets, S3Buckets, buckets_from_settings
from numerai_assets.settings import Settings


def test_local_when_no_bucket_is_configured(tmp_path: Path) -> None:
    settings = Settings.from_env({"NUMERAI_ASSETS_HOME": str(tmp_path)})
    buckets = buckets_from_settings(settings)

    assert isinstance(buckets, LocalBuckets)
    assert buckets.root == settings.local_buckets_dir == tmp_path / "s3"
    buckets.put_bytes(settings.dataset_bucket, "1/numerai_datasets.zip", b"zip")
    assert (tmp_path / "s3" / "numerai-datasets" / "1" / "numerai_datasets.zip").read_bytes() == (
        b"zip"
    )


def test_s3_when_a_bucket_is_configured(
    tmp_path: Path, s3_server: str, s3_client: Any, s3_bucket: str
) -> None:
    settings = Settings.from_env(
        {
            "NUMERAI_ASSETS_HOME": str(tmp_path),
            "S3_DATASET_BUCKET": s3_bucket,
            "S3_ENDPOINT_URL": s3_server,
            "S3_ACCESS_KEY": "testing",
            "S3_SECRET_KEY": "testing",
            "S3_REGION": "us-east-1",
        }
    )
    buckets = buckets_from_settings(settings)

    assert isinstance(buckets, S3Buckets)
    assert buckets.client.meta.endpoint_url == s3_server
    buckets.put_bytes(settings.dataset_bucket, "1/numerai_datasets.zip", b"zip")
    # Read back with an independent client: the object really is on the server.
    body = s3_client.get_object(Bucket=s3_bucket, Key="1/numerai_datasets.zip")["Body"].read()
    assert body == b"zip"
    assert not (tmp_path / "s3").exists()


def test_upload_bucket_alone_also_selects_s3(tmp_path: Path, s3_server: str) -> None:
    settings = Settings.from_env(
        {
            "NUMERAI_ASSETS_HOME": str(tmp_path),
            "S3_UPLOAD_BUCKET": "submissions",
            "S3_ENDPOINT_URL": s3_server,
            "S3_ACCESS_KEY": "testing",
            "S3_SECRET_KEY": "testing",
        }
    )
    assert isinstance(buckets_from_settings(settings), S3Buckets)
