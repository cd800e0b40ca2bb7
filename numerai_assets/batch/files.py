"""Submission predictions, read from the upload bucket and aligned to the round's tournament ids."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from numerai_assets.files import Buckets, ObjectNotFound, ObjectTooLarge, StorageError
from numerai_assets.scoring.submission import SubmissionReader
from numerai_assets.scoring.submission_format import SubmissionError, quoted
from numerai_assets.settings import DEFAULT_UPLOAD_KEY_PREFIX


def owner_prefix(pattern: str, submission: Mapping) -> str:
    """Where ``submission``'s file must lie in the upload bucket under ``pattern``.

    ``pattern`` may use ``{round}`` and ``{username}``; an empty pattern allows any key.
    """
    return pattern.format(round=submission["competition_id"], username=submission["username"])


@dataclass(frozen=True)
class SubmissionFile:
    """A submission's predictions (tournament-id order) and the SHA-256 of the bytes read."""

    predictions: np.ndarray
    digest: str


def cache_key(submission_id: object, digest: str | None) -> str:
    """Where a submission's predictions sit in the round's cache: its id and its content.

    Keyed by content, a replaced file is read again rather than served from the cache.
    """
    return f"{submission_id}-{digest[:16]}" if digest else str(submission_id)


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

    def load(self, submission: Mapping) -> SubmissionFile:
        """The submission's predictions in the round's tournament-id order, and its digest."""
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
        return SubmissionFile(self.reader.read(raw), hashlib.sha256(raw).hexdigest())
