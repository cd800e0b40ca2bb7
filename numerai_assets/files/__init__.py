"""Object storage for round datasets and submission files: S3, or local folders standing in.

No Dagster here: the resource layer builds a boto3 client and wraps :class:`S3Buckets` around it.
"""

from numerai_assets.files.buckets import Buckets, buckets_from_settings
from numerai_assets.files.datasets import dataset_key, fetch_round_dataset
from numerai_assets.files.errors import (
    ObjectNotFound,
    ObjectRefused,
    ObjectTooLarge,
    StorageError,
)
from numerai_assets.files.local import LocalBuckets
from numerai_assets.files.s3 import S3Buckets, make_s3_client

__all__ = [
    "Buckets",
    "LocalBuckets",
    "ObjectNotFound",
    "ObjectRefused",
    "ObjectTooLarge",
    "S3Buckets",
    "StorageError",
    "buckets_from_settings",
    "dataset_key",
    "fetch_round_dataset",
    "make_s3_client",
]
