"""S3 (or any S3-compatible server) behind the :class:`~numerai_assets.files.buckets.Buckets` API.

Takes a plain boto3 S3 client: the deployment's comes from
:func:`~numerai_assets.files.buckets.s3_client_from_settings`, and tests can point one at a
local server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import boto3
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError
from s3transfer.exceptions import RetriesExceededError as TransferRetriesExceededError

from numerai_assets.files._atomic import atomic_path
from numerai_assets.files._exists import ExistsBySize
from numerai_assets.files.errors import (
    ObjectNotFound,
    ObjectRefused,
    ObjectTooLarge,
    StorageError,
)

_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}

CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 60
MAX_ATTEMPTS = 5


def make_s3_client(
    *,
    endpoint_url: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    region: str | None = None,
) -> Any:
    """A boto3 S3 client that retries transient failures (throttling, 5xx, dropped connections).

    Keys left as ``None`` fall back to boto3's usual chain (environment, instance role). With an
    ``endpoint_url`` (MinIO, Ceph, moto, ...) it uses path-style addressing, which those servers
    expect, and only sends/validates checksums when an operation requires them: boto3's
    default-on CRC checksums are rejected by several S3-compatible servers.
    """
    options: dict[str, Any] = {
        "retries": {"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "read_timeout": READ_TIMEOUT_SECONDS,
    }
    if endpoint_url:
        options["s3"] = {"addressing_style": "path"}
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    # A fresh Session: boto3's default session is shared mutable state and not thread-safe.
    session = boto3.session.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
    )
    return session.client("s3", endpoint_url=endpoint_url or None, config=Config(**options))


def _transient(status: object) -> bool:
    """A client error (4xx) will fail again, except a timeout (408) and throttling (429)."""
    return not (isinstance(status, int) and 400 <= status < 500 and status not in (408, 429))


class S3Buckets(ExistsBySize):
    """Objects in S3 through a boto3 client; errors become :mod:`~numerai_assets.files.errors`."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"S3Buckets(endpoint={self.client.meta.endpoint_url!r})"

    def describe(self, bucket: str, key: str) -> str:
        return f"s3://{bucket}/{key}"

    @contextmanager
    def _errors(self, action: str, bucket: str, key: str) -> Iterator[None]:
        """Translate boto errors for one operation on ``bucket``/``key``."""
        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "NoSuchBucket":
                raise ObjectNotFound(bucket, key, bucket_missing=True) from exc
            if code in _NOT_FOUND_CODES:
                # HEAD responses have no body, so a 404 does not say whether the key or the whole
                # bucket is missing; ask, so a misspelt bucket name is reported as such.
                raise ObjectNotFound(
                    bucket, key, bucket_missing=not self._bucket_exists(bucket)
                ) from exc
            message = exc.response.get("Error", {}).get("Message", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            raise StorageError(
                f"{action} {self.describe(bucket, key)} failed: {code or 'unknown error'}"
                + (f": {message}" if message else ""),
                transient=_transient(status),
            ) from exc
        except ParamValidationError as exc:  # e.g. an empty key: no request was even sent
            raise ObjectRefused(f"{action} {self.describe(bucket, key)}: {exc}") from exc
        except (BotoCoreError, Boto3Error, TransferRetriesExceededError) as exc:
            raise StorageError(f"{action} {self.describe(bucket, key)} failed: {exc}") from exc

    def _bucket_exists(self, bucket: str) -> bool:
        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            return code not in {"404", "NoSuchBucket", "NotFound"}
        return True

    def download(self, bucket: str, key: str, dest: Path) -> Path:
        dest = Path(dest)
        # download_fileobj runs a HEAD first, so a missing object fails before the temp file has
        # data, and large objects arrive as concurrent ranged GETs written straight to disk.
        with (
            self._errors("downloading", bucket, key),
            atomic_path(dest) as tmp,
            tmp.open("xb") as f,
        ):
            self.client.download_fileobj(bucket, key, f)
        return dest

    def read_bytes(self, bucket: str, key: str, *, max_bytes: int | None = None) -> bytes:
        with self._errors("reading", bucket, key):
            if max_bytes is not None:
                size = self.size(bucket, key)
                if size > max_bytes:
                    raise ObjectTooLarge(bucket, key, size, max_bytes, self.describe(bucket, key))
            response = self.client.get_object(Bucket=bucket, Key=key)
            with closing(response["Body"]) as body:
                length = int(response.get("ContentLength", 0))
                if max_bytes is not None and length > max_bytes:  # replaced since the HEAD
                    raise ObjectTooLarge(bucket, key, length, max_bytes, self.describe(bucket, key))
                return body.read()

    def upload_file(self, src: Path, bucket: str, key: str) -> None:
        # upload_fileobj (unlike upload_file) lets the ClientError through, so NoSuchBucket maps.
        with self._errors("uploading", bucket, key), Path(src).open("rb") as f:
            self.client.upload_fileobj(f, bucket, key)

    def put_bytes(self, bucket: str, key: str, data: bytes) -> None:
        with self._errors("writing", bucket, key):
            self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def size(self, bucket: str, key: str) -> int:
        with self._errors("checking", bucket, key):
            return int(self.client.head_object(Bucket=bucket, Key=key)["ContentLength"])
