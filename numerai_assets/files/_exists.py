"""``exists`` for both implementations, in terms of their ``size``."""

from __future__ import annotations

from numerai_assets.files.errors import ObjectNotFound


class ExistsBySize:
    """A missing key is ``False``; a missing *bucket* raises, so a misspelt bucket name does not
    look like "not uploaded yet"."""

    def size(self, bucket: str, key: str) -> int:  # pragma: no cover - provided by the subclass
        raise NotImplementedError

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.size(bucket, key)
        except ObjectNotFound as exc:
            if exc.bucket_missing:
                raise
            return False
        return True
