"""Folders standing in for S3 buckets, for runs without S3: ``root/<bucket>/<key>``."""

from __future__ import annotations

import contextlib
import errno
import shutil
from collections.abc import Iterator
from pathlib import Path

from numerai_assets.files._atomic import atomic_path
from numerai_assets.files._exists import ExistsBySize
from numerai_assets.files.errors import (
    ObjectNotFound,
    ObjectRefused,
    ObjectTooLarge,
    StorageError,
)

# Errors that say the key itself can never be read; any other OSError may pass (a full disk, an
# unmounted share) and is reported as transient.
_REFUSING_ERRNOS = {
    errno.ENAMETOOLONG,
    errno.EACCES,
    errno.EPERM,
    errno.ELOOP,
    errno.EISDIR,
    errno.ENOTDIR,
    errno.EINVAL,
}


class LocalBuckets(ExistsBySize):
    """Same behaviour as :class:`~numerai_assets.files.s3.S3Buckets`, on the local filesystem.

    One deliberate difference: writing to a bucket folder that does not exist creates it, so a
    fresh local home needs no setup. Reads from a missing bucket fail as on S3.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalBuckets({str(self.root)!r})"

    def _bucket_dir(self, bucket: str) -> Path:
        if not bucket or bucket in {".", ".."} or "/" in bucket or "\\" in bucket:
            raise ValueError(f"invalid bucket name {bucket!r}")
        return self.root / bucket

    def path(self, bucket: str, key: str) -> Path:
        """The file backing ``bucket``/``key``; refuses keys that could leave the root."""
        bucket_dir = self._bucket_dir(bucket)
        parts = key.split("/")
        if (
            not isinstance(key, str)
            or "\\" in key
            or "\x00" in key
            or any(part in {"", ".", ".."} for part in parts)
        ):
            # Covers "", absolute keys ("/..."), trailing or doubled "/" and any "." or "..".
            raise ObjectRefused(f"refusing object key {key!r:.80}: not a plain relative '/' path")
        return bucket_dir.joinpath(*parts)

    @contextlib.contextmanager
    def _errors(self, bucket: str, key: str) -> Iterator[None]:
        """OS errors as storage errors: refused for good, or transient."""
        try:
            yield
        except OSError as error:
            if isinstance(error, StorageError):
                raise
            where = f"bucket {bucket!r}, key {key!r:.80}"
            if error.errno in _REFUSING_ERRNOS:
                raise ObjectRefused(f"cannot read {where}: {error.strerror}") from None
            raise StorageError(f"reading {where} failed: {error}") from error

    def _existing(self, bucket: str, key: str) -> Path:
        path = self.path(bucket, key)
        with self._errors(bucket, key):
            is_file = path.is_file()
            # A link may point anywhere on the machine: never serve what lies outside the bucket.
            if is_file and not path.resolve().is_relative_to(self._bucket_dir(bucket).resolve()):
                raise ObjectRefused(f"refusing object key {key!r:.80}: it leads outside its bucket")
        if is_file:
            return path
        if not self._bucket_dir(bucket).is_dir():
            raise ObjectNotFound(
                bucket,
                key,
                f"{path} not found: bucket {bucket!r} does not exist (no folder "
                f"{self._bucket_dir(bucket)})",
                bucket_missing=True,
            )
        raise ObjectNotFound(bucket, key, f"{path} not found (bucket {bucket!r}, key {key!r})")

    def download(self, bucket: str, key: str, dest: Path) -> Path:
        src = self._existing(bucket, key)
        dest = Path(dest)
        with atomic_path(dest) as tmp, src.open("rb") as fin, tmp.open("xb") as fout:
            shutil.copyfileobj(fin, fout, length=1024 * 1024)
        return dest

    def read_bytes(self, bucket: str, key: str, *, max_bytes: int | None = None) -> bytes:
        path = self._existing(bucket, key)
        with self._errors(bucket, key):
            if max_bytes is None:
                return path.read_bytes()
            size = path.stat().st_size
            if size > max_bytes:
                raise ObjectTooLarge(bucket, key, size, max_bytes, str(path))
            with path.open("rb") as f:
                data = f.read(max_bytes + 1)
        if len(data) > max_bytes:  # grew since the stat
            raise ObjectTooLarge(bucket, key, len(data), max_bytes, str(path))
        return data

    def upload_file(self, src: Path, bucket: str, key: str) -> None:
        dest = self.path(bucket, key)
        with atomic_path(dest) as tmp, Path(src).open("rb") as fin, tmp.open("xb") as fout:
            shutil.copyfileobj(fin, fout, length=1024 * 1024)

    def put_bytes(self, bucket: str, key: str, data: bytes) -> None:
        dest = self.path(bucket, key)
        with atomic_path(dest) as tmp:
            tmp.write_bytes(data)

    def size(self, bucket: str, key: str) -> int:
        return self._existing(bucket, key).stat().st_size

    def describe(self, bucket: str, key: str) -> str:
        return str(self.path(bucket, key))
