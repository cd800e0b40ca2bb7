"""Object storage for round datasets and submission files: S3, or local folders standing in.

No Dagster here. :func:`buckets_from_settings` (and :func:`s3_client_from_settings`, the one
place an S3 client is built from the deployment's settings) choose the backend; boto3 is
imported only when S3 is used, so importing this package (and the code location) does not
load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from numerai_assets.files._atomic import atomic_path
from numerai_assets.files.buckets import Buckets, buckets_from_settings, s3_client_from_settings
from numerai_assets.files.datasets import dataset_key, fetch_round_dataset
from numerai_assets.files.errors import (
    ObjectNotFound,
    ObjectRefused,
    ObjectTooLarge,
    StorageError,
)
from numerai_assets.files.local import LocalBuckets

if TYPE_CHECKING:
    from numerai_assets.files.s3 import S3Buckets, make_s3_client

__all__ = [
    "Buckets",
    "LocalBuckets",
    "ObjectNotFound",
    "ObjectRefused",
    "ObjectTooLarge",
    "S3Buckets",
    "StorageError",
    "atomic_path",
    "buckets_from_settings",
    "dataset_key",
    "fetch_round_dataset",
    "make_s3_client",
    "s3_client_from_settings",
]

_S3_NAMES = {"S3Buckets", "make_s3_client"}


def __getattr__(name: str) -> Any:
    """``S3Buckets`` and ``make_s3_client`` on first use: they need boto3."""
    if name in _S3_NAMES:
        from numerai_assets.files import s3

        return getattr(s3, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
