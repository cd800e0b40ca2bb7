"""Submission predictions, read from the upload bucket and aligned to the round's tournament ids."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from numerai_assets.files import Buckets, ObjectNotFound, ObjectTooLarge
from numerai_assets.scoring import SubmissionError, read_submission

# A row of "id,probability" is about 30 bytes; anything far larger is refused before parsing.
BYTES_PER_ROW_LIMIT = 200
MIN_SIZE_LIMIT = 1 << 20


class SubmissionFiles:
    """Reads submission files from the upload bucket, refusing oversized ones unread.

    A file that cannot be scored raises :class:`SubmissionError` with the reason stored on the
    submission (a missing file included). Nothing is remembered: the batch keeps what it read
    and the round's prediction cache keeps the rest.
    """

    def __init__(self, buckets: Buckets, bucket: str, tournament_ids: np.ndarray) -> None:
        self.buckets = buckets
        self.bucket = bucket
        self.tournament_ids = tournament_ids
        self.max_bytes = max(MIN_SIZE_LIMIT, BYTES_PER_ROW_LIMIT * len(tournament_ids))

    def load(self, submission: Mapping) -> np.ndarray:
        """The submission's predictions in the round's tournament-id order."""
        filename = submission.get("filename")
        if not isinstance(filename, str) or not filename:
            raise SubmissionError("the submission has no file name")
        try:
            raw = self.buckets.read_bytes(self.bucket, filename, max_bytes=self.max_bytes)
        except ObjectNotFound:
            raise SubmissionError(f"the submission file {filename} was not found") from None
        except ObjectTooLarge as error:
            raise SubmissionError(
                f"the file is {error.size:,} bytes, more than the {self.max_bytes:,} bytes a "
                "submission for this round can take"
            ) from None
        return read_submission(raw, self.tournament_ids)
