"""The object-storage interface the pipeline codes against, and the settings-driven choice of it.

Production reads datasets from and writes submissions to S3; a local run uses folders instead.
Both implement :class:`Buckets` with the same behaviour, so assets never branch on the backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from numerai_assets.files.local import LocalBuckets
from numerai_assets.settings import Settings


@runtime_checkable
class Buckets(Protocol):
    """Objects addressed by ``(bucket, key)``; every method raises :class:`StorageError` kinds."""

    def download(self, bucket: str, key: str, dest: Path) -> Path:
        """Stream the object to ``dest`` (atomically: temp file, then rename); return ``dest``."""
        ...

    def read_bytes(self, bucket: str, key: str, *, max_bytes: int | None = None) -> bytes:
        """Return the object's content; over ``max_bytes`` raises ``ObjectTooLarge`` unread."""
        ...

    def upload_file(self, src: Path, bucket: str, key: str) -> None:
        """Store the file ``src`` (streamed, not read into memory) as the object."""
        ...

    def put_bytes(self, bucket: str, key: str, data: bytes) -> None:
        """Store ``data`` as the object, replacing any previous version."""
        ...

    def exists(self, bucket: str, key: str) -> bool:
        """Whether the object exists; a missing *bucket* raises ``ObjectNotFound`` instead."""
        ...

    def size(self, bucket: str, key: str) -> int:
        """The object's size in bytes."""
        ...

    def describe(self, bucket: str, key: str) -> str:
        """Human-readable location (``s3://bucket/key`` or a file path) for metadata and logs."""
        ...


def s3_client_from_settings(settings: Settings) -> Any:
    """The project's one way to an S3 client: the deployment's endpoint, credentials and
    region (``S3_*``; unset ones fall back to boto3's chain), with retries and timeouts
    (:func:`~numerai_assets.files.s3.make_s3_client`). Imports boto3 on first use."""
    from numerai_assets.files.s3 import make_s3_client

    return make_s3_client(
        endpoint_url=settings.s3_endpoint_url,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        region=settings.s3_region,
    )


def buckets_from_settings(settings: Settings) -> Buckets:
    """S3 when the deployment names a bucket (``settings.use_s3``), else local folders."""
    if settings.use_s3:
        from numerai_assets.files.s3 import S3Buckets

        return S3Buckets(s3_client_from_settings(settings))
    return LocalBuckets(settings.local_buckets_dir)
