"""Where a round's dataset lives, and fetching it to local disk for scoring."""

from __future__ import annotations

import string
from pathlib import Path, PurePosixPath

from numerai_assets.files.buckets import Buckets
from numerai_assets.files.errors import ObjectNotFound
from numerai_assets.settings import Settings


def dataset_key(settings_or_template: Settings | str, round: int) -> str:
    """The dataset object key for ``round``, from ``S3_DATASET_KEY_TEMPLATE`` (or a template).

    A template must use ``{round}`` (format specs such as ``{round:04d}`` are fine) and nothing
    else: without it every round would read the same object, which is checked here rather than
    discovered in a wrong score.
    """
    template = (
        settings_or_template.dataset_key_template
        if isinstance(settings_or_template, Settings)
        else settings_or_template
    )
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"dataset key template {template!r} is malformed: {exc}") from exc
    if fields != {"round"}:
        raise ValueError(
            f"dataset key template {template!r} must contain '{{round}}' and no other fields "
            f"(found {sorted(fields) or 'none'})"
        )
    return template.format(round=round)


def fetch_round_dataset(buckets: Buckets, bucket: str, key: str, dest_dir: Path) -> Path:
    """Download the round's dataset into ``dest_dir``, keeping the key's file name.

    The name is kept because readers go by the extension (``.zip`` vs ``.parquet``).
    """
    name = PurePosixPath(key).name
    if not name:
        raise ValueError(f"dataset key {key!r} has no file name")
    try:
        return buckets.download(bucket, key, Path(dest_dir) / name)
    except ObjectNotFound as exc:
        raise ObjectNotFound(
            bucket,
            key,
            f"the round's dataset is not available (bucket {bucket!r}, key {key!r}): {exc}",
            bucket_missing=exc.bucket_missing,
        ) from exc
