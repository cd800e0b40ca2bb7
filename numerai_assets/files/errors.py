"""Storage errors shared by the local and S3 implementations.

Callers catch these instead of botocore's ``ClientError`` or ``OSError`` so the same handling works
whichever backend the settings picked.
"""

from __future__ import annotations


class StorageError(Exception):
    """Any failure reading or writing an object; S3 failures carry the S3 error code.

    ``transient`` says whether trying again later may succeed (a server down, throttling, a
    dropped connection) or not (access denied, a key the store refuses): a caller retries the
    first kind and gives up on the object for the second.
    """

    def __init__(self, message: str = "", *, transient: bool = True) -> None:
        self.transient = transient
        super().__init__(message)


class ObjectRefused(StorageError, ValueError):
    """The store will never serve this key: not a valid key, access denied, outside its bucket.

    Also a ``ValueError``: most often the key itself is what is wrong.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)


class ObjectNotFound(StorageError, FileNotFoundError):
    """The object, or its whole bucket, does not exist.

    Also a ``FileNotFoundError`` so code written against plain files handles it unchanged.
    """

    def __init__(
        self, bucket: str, key: str, message: str | None = None, *, bucket_missing: bool = False
    ) -> None:
        self.bucket = bucket
        self.key = key
        self.bucket_missing = bucket_missing
        if message is None:
            if bucket_missing:
                message = f"s3://{bucket}/{key} not found: bucket {bucket!r} does not exist"
            else:
                message = f"s3://{bucket}/{key} not found"
        # A missing bucket is the deployment's fault, never an object's: not given up on.
        super().__init__(message, transient=bucket_missing)


class ObjectTooLarge(StorageError):
    """Refused to read an object into memory because it is over the caller's limit."""

    def __init__(self, bucket: str, key: str, size: int, limit: int, location: str) -> None:
        self.bucket = bucket
        self.key = key
        self.size = size
        self.limit = limit
        super().__init__(
            f"{location} (bucket {bucket!r}, key {key!r}) is {size} bytes, over the "
            f"{limit}-byte limit for reading into memory",
            transient=False,
        )
