"""Submission predictions, read from the upload bucket and aligned to the round's tournament ids."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from numerai_assets.files import Buckets, ObjectNotFound, ObjectTooLarge, StorageError
from numerai_assets.scoring import SubmissionError, SubmissionReader
from numerai_assets.scoring.submission_format import quoted
from numerai_assets.settings import DEFAULT_UPLOAD_KEY_PREFIX


def owner_prefix(pattern: str, submission: Mapping) -> str:
    """Where ``submission``'s file must lie in the upload bucket under ``pattern``.

    ``pattern`` may use ``{round}`` and ``{username}``; an empty pattern allows any key.
    """
    return pattern.format(round=submission["competition_id"], username=submission["username"])


class SubmissionFiles:
    """Reads submission files from the upload bucket, refusing oversized ones unread.

    A file that cannot be scored raises :class:`SubmissionError` with the reason stored on the
    submission: a missing file, a key outside its owner's folder or one the store refuses,
    access denied, a file over the round's size limit (stored or decompressed), and everything
    the reader finds wrong with its content. A *transient* storage failure (a server down) is
    raised as :class:`~numerai_assets.files.StorageError` so the step is retried instead.
    Nothing is remembered: the batch keeps what it read and the round's prediction cache the rest.
    """

    def __init__(
        self,
        buckets: Buckets,
        bucket: str,
        tournament_ids: np.ndarray,
        *,
        key_prefix: str = DEFAULT_UPLOAD_KEY_PREFIX,
    ) -> None:
        self.buckets = buckets
        self.bucket = bucket
        self.reader = SubmissionReader(tournament_ids)
        self.key_prefix = key_prefix

    @property
    def max_bytes(self) -> int:
        return self.reader.max_bytes

    def load(self, submission: Mapping) -> np.ndarray:
        """The submission's predictions in the round's tournament-id order."""
        filename = submission.get("filename")
        if not isinstance(filename, str) or not filename:
            raise SubmissionError("the submission has no file name")
        prefix = owner_prefix(self.key_prefix, submission)
        if not filename.startswith(prefix):
            raise SubmissionError(
                f"the submission file {quoted(filename)} does not lie under {quoted(prefix)}, "
                "the folder of its round and user"
            )
        try:
            raw = self.buckets.read_bytes(self.bucket, filename, max_bytes=self.max_bytes)
        except ObjectNotFound as error:
            if error.bucket_missing:  # the deployment's fault, not the participant's
                raise
            raise SubmissionError(f"the submission file {quoted(filename)} was not found") from None
        except ObjectTooLarge as error:
            raise SubmissionError(
                f"the file is {error.size:,} bytes, more than the {self.max_bytes:,} bytes a "
                "submission for this round can take"
            ) from None
        except StorageError as error:
            if error.transient:
                raise
            raise SubmissionError(
                f"the submission file {quoted(filename)} cannot be read ({error})"
            ) from None
        return self.reader.read(raw)
