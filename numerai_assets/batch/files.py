"""Submission predictions, read once per run and aligned to the round's tournament ids."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from numerai_assets.files import Buckets, ObjectNotFound, ObjectTooLarge
from numerai_assets.scoring import SubmissionError, read_submission

# A row of "id,probability" is about 30 bytes; anything far larger is refused before parsing.
BYTES_PER_ROW_LIMIT = 200
MIN_SIZE_LIMIT = 1 << 20


class SubmissionFiles:
    """Reads submission files from the upload bucket; each file is read at most once.

    A file that cannot be scored raises :class:`SubmissionError` with the reason stored on the
    submission (a missing file included), the same error every time it is asked for.
    """

    def __init__(self, buckets: Buckets, bucket: str, tournament_ids: np.ndarray) -> None:
        self.buckets = buckets
        self.bucket = bucket
        self.tournament_ids = tournament_ids
        self.max_bytes = max(MIN_SIZE_LIMIT, BYTES_PER_ROW_LIMIT * len(tournament_ids))
        self._read: dict[object, np.ndarray | SubmissionError] = {}

    def load(self, submission: Mapping) -> np.ndarray:
        """Read the file now, remembering nothing: for callers that keep the result elsewhere."""
        value = self._load(submission)
        if isinstance(value, SubmissionError):
            raise value
        return value

    def predictions(self, submission: Mapping) -> np.ndarray:
        key = submission["_id"]
        if key not in self._read:
            self._read[key] = self._load(submission)
        value = self._read[key]
        if isinstance(value, SubmissionError):
            raise value
        return value

    def _load(self, submission: Mapping) -> np.ndarray | SubmissionError:
        filename = submission.get("filename")
        if not isinstance(filename, str) or not filename:
            return SubmissionError("the submission has no file name")
        try:
            raw = self.buckets.read_bytes(self.bucket, filename, max_bytes=self.max_bytes)
            return read_submission(raw, self.tournament_ids)
        except ObjectNotFound:
            return SubmissionError(f"the submission file {filename} was not found")
        except ObjectTooLarge as error:
            return SubmissionError(
                f"the file is {error.size:,} bytes, more than the {self.max_bytes:,} bytes a "
                "submission for this round can take"
            )
        except SubmissionError as error:
            return error
