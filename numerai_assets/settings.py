"""Every environment variable the project reads, in one place.

The names are the original system's (``MONGO_URL``, ``S3_DATASET_BUCKET``, ...) so its deployments
carry over. Every setting has a local default: with nothing set, the store is an embedded on-disk
database and the buckets are folders under ``NUMERAI_ASSETS_HOME``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

LOCAL_DATASET_BUCKET = "numerai-datasets"
LOCAL_UPLOAD_BUCKET = "numerai-submissions"
DEFAULT_DATASET_KEY = "{round}/numerai_datasets.zip"


# The layout the upload service (and ``numerai-assets submit``) writes: a submission's file lies
# under its own round and user; the pipeline refuses a file anywhere else.
DEFAULT_UPLOAD_KEY_PREFIX = "{round}/{username}/"


def _key_prefix(value: str | None) -> str:
    """NUMERAI_UPLOAD_KEY_PREFIX: unset means the default layout, "" means any key."""
    if value is None:
        return DEFAULT_UPLOAD_KEY_PREFIX
    try:
        value.format(round=1, username="u")
    except (KeyError, IndexError, ValueError) as error:
        raise ValueError(
            f"NUMERAI_UPLOAD_KEY_PREFIX {value!r} may use only {{round}} and {{username}} ({error})"
        ) from None
    return value


@dataclass(frozen=True)
class Settings:
    """Deployment settings; build with :meth:`from_env`."""

    home: Path
    mongo_url: str | None
    mongo_db_name: str
    dataset_bucket: str
    upload_bucket: str
    dataset_key_template: str
    s3_endpoint_url: str | None
    s3_access_key: str | None
    s3_secret_key: str | None
    s3_region: str | None
    use_s3: bool
    prediction_cache: str  # a folder, or "off" (every run reads earlier files again)
    scoring_policy: Mapping[str, object]  # overrides of the default ScoringPolicy's fields
    upload_key_prefix: str  # where a submission's file must lie: {round} and {username} filled in

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        home = Path(get("NUMERAI_ASSETS_HOME") or ".numerai_assets").absolute()
        dataset_bucket = get("S3_DATASET_BUCKET")
        upload_bucket = get("S3_UPLOAD_BUCKET")
        return cls(
            home=home,
            mongo_url=get("MONGO_URL"),
            mongo_db_name=get("MONGO_DB_NAME") or "numerai",
            dataset_bucket=dataset_bucket or LOCAL_DATASET_BUCKET,
            upload_bucket=upload_bucket or LOCAL_UPLOAD_BUCKET,
            dataset_key_template=get("S3_DATASET_KEY_TEMPLATE") or DEFAULT_DATASET_KEY,
            s3_endpoint_url=get("S3_ENDPOINT_URL"),
            s3_access_key=get("S3_ACCESS_KEY"),
            s3_secret_key=get("S3_SECRET_KEY"),
            s3_region=get("S3_REGION") or get("AWS_DEFAULT_REGION"),
            use_s3=bool(dataset_bucket or upload_bucket),
            prediction_cache=get("NUMERAI_PREDICTION_CACHE") or str(home / "prediction_cache"),
            scoring_policy=_json_object("NUMERAI_SCORING_POLICY", get("NUMERAI_SCORING_POLICY")),
            upload_key_prefix=_key_prefix(env.get("NUMERAI_UPLOAD_KEY_PREFIX")),
        )

    @property
    def local_buckets_dir(self) -> Path:
        """Where the local stand-in for S3 keeps ``<bucket>/<key>`` files."""
        return self.home / "s3"

    @property
    def embedded_store_dir(self) -> Path:
        """Where the embedded (montydb) submissions database lives when MONGO_URL is unset."""
        return self.home / "store"


def _json_object(name: str, text: str | None) -> Mapping[str, object]:
    """A variable holding a JSON object (``{}`` when unset), or a ValueError naming it."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{name} is not valid JSON ({error}): {text!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object, got {text!r}")
    return value
