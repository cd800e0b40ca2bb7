"""The prediction cache's copy in S3, for deployments whose runs land on different machines.

A worker's local cache is only as warm as the runs that worker did. With a mirror, every cached
submission is also stored as one raw float64 object (``<prefix>/round-<r>/<fingerprint>/<id>.f64``,
about 8 bytes per tournament row), so a run on a fresh worker fetches earlier predictions as
binary objects instead of downloading and parsing their CSV files.
"""

from __future__ import annotations

import numpy as np

from numerai_assets.files import Buckets, ObjectNotFound


class PredictionMirror:
    def __init__(self, buckets: Buckets, bucket: str, prefix: str = "prediction_cache") -> None:
        self.buckets = buckets
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def key(self, round: int, fingerprint: str, submission_id: str) -> str:
        return f"{self.prefix}/round-{round}/{fingerprint}/{submission_id}.f64"

    def get(
        self, round: int, fingerprint: str, submission_id: str, columns: int
    ) -> np.ndarray | None:
        """The mirrored predictions, or None when this submission was never mirrored."""
        try:
            raw = self.buckets.read_bytes(
                self.bucket, self.key(round, fingerprint, submission_id), max_bytes=columns * 8
            )
        except ObjectNotFound:
            return None
        if len(raw) != columns * 8:
            return None  # torn or foreign: read the file instead
        return np.frombuffer(raw, dtype=np.float64).copy()

    def put(
        self, round: int, fingerprint: str, submission_id: str, predictions: np.ndarray
    ) -> None:
        data = np.ascontiguousarray(predictions, dtype=np.float64).tobytes()
        self.buckets.put_bytes(self.bucket, self.key(round, fingerprint, submission_id), data)
