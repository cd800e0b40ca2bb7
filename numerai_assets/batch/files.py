"""Submission predictions, read from the upload bucket and aligned to the round's tournament ids."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from numerai_assets.files import Buckets, ObjectNotFound, ObjectTooLarge, StorageError
from numerai_assets.scoring.submission_format import SubmissionError, quoted
from numerai_assets.settings import (
    DEFAULT_UPLOAD_KEY_PREFIX,
    is_key_segment,
    upload_key_prefix_problem,
)


def owner_prefix(pattern: str, submission: Mapping) -> str:
    """The folder ``submission``'s file must lie directly in, under ``pattern`` (which may use
    ``{round}`` and ``{username}``; ``""`` allows any key)."""
    return pattern.format(round=submission["competition_id"], username=submission["username"])


def misplaced(pattern: str, submission: Mapping) -> str | None:
    """Why ``submission``'s ``filename`` is not a file directly in its owner's folder under
    ``pattern``, or None when it is (or when ``pattern`` is ``""``: any key).

    Keys are compared part by part, never as strings: every ``/``-separated part of the key
    must be one key segment (:func:`~numerai_assets.settings.is_key_segment`: no empty part, no
    ``.`` or ``..``, no ``\\``), the parts before the file name must be the folder's, and the
    user name must be one segment itself. So no user's folder is another's or inside another's
    (``7/a/`` does not hold ``7/a/b/x.csv``, nor ``7/ab/x.csv``), on S3, which takes every key
    literally, as on local folders and the tools that resolve them.
    """
    if not pattern:
        return None
    filename, username = submission["filename"], submission["username"]
    if not is_key_segment(str(username)):
        return f"the user name {quoted(username)} cannot name a folder of the upload bucket"
    prefix = owner_prefix(pattern, submission)
    parts = filename.split("/")
    if not all(is_key_segment(part) for part in parts):
        return (
            f"the submission file {quoted(filename)} is not a plain key: a part of it is empty, "
            "'.' or '..', or holds '\\'"
        )
    folder = prefix.split("/")[:-1]  # a valid pattern ends with "/"
    if parts[:-1] == folder:
        return None
    if len(parts) > len(folder) + 1 and parts[: len(folder)] == folder:
        return (
            f"the submission file {quoted(filename)} lies in a folder inside {quoted(prefix)}, "
            "not directly in it, the folder of its round and user"
        )
    return (
        f"the submission file {quoted(filename)} does not lie under {quoted(prefix)}, "
        "the folder of its round and user"
    )


def upload_key(pattern: str, *, round: int, username: str, name: str) -> str:
    """Where an upload of the file called ``name`` is stored: directly in its owner's folder
    under ``pattern`` (the default layout when ``pattern`` is ``""``), as a random prefix and the
    file's own name (its last part, any ``\\`` made ``_``), so it passes :func:`misplaced`."""
    folder = owner_prefix(
        pattern or DEFAULT_UPLOAD_KEY_PREFIX, {"competition_id": round, "username": username}
    )
    own_name = Path(name).name.replace("\\", "_")
    return f"{folder}{uuid.uuid4().hex[:12]}-{own_name}"


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
    submission: a missing file, a key not directly in its owner's folder (:func:`misplaced`) or
    one the store refuses, access denied, a file over the round's size limit (stored or
    decompressed), and everything the reader finds wrong with its content. A *transient*
    storage failure (a server down) is raised as :class:`~numerai_assets.files.StorageError`
    so the step is retried instead.
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
        # The reader needs pyarrow and pandas: imported here, when a batch is read, so that
        # loading the code location (the daemon, a run's first seconds) does not import them.
        from numerai_assets.scoring.submission import SubmissionReader

        problem = upload_key_prefix_problem(key_prefix)
        if problem is not None:
            raise ValueError(f"the upload key prefix {key_prefix!r} {problem}")
        self.buckets = buckets
        self.bucket = bucket
        self.reader = SubmissionReader(tournament_ids)
        self.key_prefix = key_prefix

    @property
    def max_bytes(self) -> int:
        return self.reader.max_bytes

    def load(
        self,
        submission: Mapping,
        known: Callable[[str], np.ndarray | None] | None = None,
    ) -> SubmissionFile:
        """The submission's predictions in the round's tournament-id order, and its digest.

        ``known``: the predictions already read from the file with these bytes, by
        :func:`cache_key` (the round's cache), or None. When it has them the file is read and
        hashed but not parsed: the same bytes parse to the same predictions (a round's later
        files, decided again after a late upload, are mostly unchanged; parsing is most of a
        file's cost)."""
        filename = submission.get("filename")
        if not isinstance(filename, str) or not filename:
            raise SubmissionError("the submission has no file name")
        problem = misplaced(self.key_prefix, submission)
        if problem is not None:
            raise SubmissionError(problem)
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
        digest = hashlib.sha256(raw).hexdigest()
        if known is not None:
            predictions = known(cache_key(submission.get("_id"), digest))
            if predictions is not None:
                return SubmissionFile(predictions, digest)
        return SubmissionFile(self.reader.read(raw), digest)
