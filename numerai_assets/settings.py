"""Every environment variable the project reads, in one place, read when asked.

The names are the original system's (``MONGO_URL``, ``S3_DATASET_BUCKET``, ...) so its deployments
carry over. Every setting has a local default: with nothing set, the store is an embedded on-disk
database and the buckets are folders under ``NUMERAI_ASSETS_HOME``. Nothing reads the environment
at import time: callers build :meth:`Settings.from_env` when they need a value, so a change to the
environment (a test, a daemon restarted with new values) is seen by the next call.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

LOCAL_DATASET_BUCKET = "numerai-datasets"
LOCAL_UPLOAD_BUCKET = "numerai-submissions"
DEFAULT_DATASET_KEY = "{round}/numerai_datasets.zip"
DEFAULT_IO_PREFIX = "numerai-assets"
DEFAULT_WEBSERVER_URL = "http://127.0.0.1:3000"

# Whole-number settings: variable -> (default, smallest value allowed).
SENSOR_INTERVAL_SECONDS = ("NUMERAI_SENSOR_INTERVAL_SECONDS", 30, 1)
BATCH_SIZE = ("NUMERAI_BATCH_SIZE", 500, 1)
MAX_SUBMISSIONS_PER_TICK = ("NUMERAI_MAX_SUBMISSIONS_PER_TICK", 5000, 1)
PENDING_RETRY_SECONDS = ("NUMERAI_PENDING_RETRY_SECONDS", 600, 0)
MAX_SCORING_ATTEMPTS = ("NUMERAI_MAX_SCORING_ATTEMPTS", 3, 1)
RUN_STALE_SECONDS = ("NUMERAI_RUN_STALE_SECONDS", 1800, 0)

# The variables that point the project at a deployment's services, credentials or state: what a
# test or benchmark removes to run on fresh local state only.
DEPLOYMENT_VARIABLES = (
    "NUMERAI_ASSETS_HOME",
    "MONGO_URL",
    "MONGO_DB_NAME",
    "S3_DATASET_BUCKET",
    "S3_UPLOAD_BUCKET",
    "S3_DATASET_KEY_TEMPLATE",
    "S3_ENDPOINT_URL",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "S3_REGION",
    "DAGSTER_IO_BUCKET",
    "DAGSTER_IO_PREFIX",
    "NUMERAI_PREDICTION_CACHE",
    "NUMERAI_UPLOAD_KEY_PREFIX",
    "DAGSTER_HOME",
)


# The layout the upload service (and ``numerai-assets submit``) writes: a submission's file lies
# under its own round and user; the pipeline refuses a file anywhere else.
DEFAULT_UPLOAD_KEY_PREFIX = "{round}/{username}/"


def _switch(name: str, value: str | None) -> bool:
    """An on/off setting: unset or "on" is on, "off" is off."""
    if value is None or value.lower() == "on":
        return True
    if value.lower() == "off":
        return False
    raise ValueError(f"{name} must be 'on' or 'off', got {value!r}")


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
    """Deployment settings; build with :meth:`from_env` (secrets are left out of ``repr``)."""

    home: Path
    mongo_url: str | None = field(repr=False)  # may hold a password
    mongo_db_name: str
    dataset_bucket: str
    upload_bucket: str
    dataset_key_template: str
    s3_endpoint_url: str | None
    s3_access_key: str | None = field(repr=False)
    s3_secret_key: str | None = field(repr=False)
    s3_region: str | None
    use_s3: bool
    prediction_cache: str  # a folder, or "off" (every run reads earlier files again)
    io_bucket: str | None  # DAGSTER_IO_BUCKET: round assets (and the cache's mirror) in S3
    io_prefix: str
    sensor_interval_seconds: int
    batch_size: int  # submissions per scoring run
    max_submissions_per_tick: int  # new submissions one sensor tick takes
    pending_retry_seconds: int  # pending this long with no run in flight: requested again
    max_scoring_attempts: int  # then marked invalid
    run_stale_seconds: int  # a queued/started run older than this is presumed dead
    api_key: str | None = field(repr=False)  # the intake's shared key
    webserver_url: str  # DAGSTER_WEBSERVER_URL: where `rescore` queues runs
    dagster_home: str | None  # Dagster's own DAGSTER_HOME (the instance), if set
    scoring_policy: Mapping[str, object]  # overrides of the default ScoringPolicy's fields
    round_picture: bool  # draw the round's picture on every materialization (about 0.8 s a run)
    upload_key_prefix: str  # where a submission's file must lie: {round} and {username} filled in
    variables_set: frozenset[str] = field(repr=False)  # the variables above given a value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings ``environ`` (default: ``os.environ``, now) names, defaults elsewhere.

        Raises ``ValueError`` naming the variable when a whole-number setting is not one, or is
        below its minimum (1 for sizes, counts and the interval; 0 for the recovery delays).
        """
        env = os.environ if environ is None else environ
        given: set[str] = set()

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            if value:
                given.add(name)
            return value or None

        def raw(name: str) -> str | None:
            """As set, spaces and all: for a setting where "" means something."""
            value = env.get(name)
            if value is not None:
                given.add(name)
            return value

        def whole(setting: tuple[str, int, int]) -> int:
            name, default, minimum = setting
            text = get(name)
            if text is None:
                return default
            try:
                value = int(text)
            except ValueError:
                raise ValueError(f"{name} must be a whole number, got {text!r}") from None
            if value < minimum:
                raise ValueError(f"{name} must be at least {minimum}, got {value}")
            return value

        home = Path(get("NUMERAI_ASSETS_HOME") or ".numerai_assets").absolute()
        dataset_bucket = get("S3_DATASET_BUCKET")
        upload_bucket = get("S3_UPLOAD_BUCKET")
        values = dict(
            home=home,
            mongo_url=get("MONGO_URL"),
            mongo_db_name=get("MONGO_DB_NAME") or "numerai",
            dataset_bucket=dataset_bucket or LOCAL_DATASET_BUCKET,
            upload_bucket=upload_bucket or LOCAL_UPLOAD_BUCKET,
            dataset_key_template=get("S3_DATASET_KEY_TEMPLATE") or DEFAULT_DATASET_KEY,
            s3_endpoint_url=get("S3_ENDPOINT_URL"),
            s3_access_key=get("S3_ACCESS_KEY"),
            s3_secret_key=get("S3_SECRET_KEY"),
            s3_region=next(filter(None, [get("S3_REGION"), get("AWS_DEFAULT_REGION")]), None),
            use_s3=bool(dataset_bucket or upload_bucket),
            prediction_cache=get("NUMERAI_PREDICTION_CACHE") or str(home / "prediction_cache"),
            upload_key_prefix=_key_prefix(raw("NUMERAI_UPLOAD_KEY_PREFIX")),
            io_bucket=get("DAGSTER_IO_BUCKET"),
            io_prefix=get("DAGSTER_IO_PREFIX") or DEFAULT_IO_PREFIX,
            sensor_interval_seconds=whole(SENSOR_INTERVAL_SECONDS),
            batch_size=whole(BATCH_SIZE),
            max_submissions_per_tick=whole(MAX_SUBMISSIONS_PER_TICK),
            pending_retry_seconds=whole(PENDING_RETRY_SECONDS),
            max_scoring_attempts=whole(MAX_SCORING_ATTEMPTS),
            run_stale_seconds=whole(RUN_STALE_SECONDS),
            api_key=get("API_KEY"),
            webserver_url=get("DAGSTER_WEBSERVER_URL") or DEFAULT_WEBSERVER_URL,
            dagster_home=get("DAGSTER_HOME"),
            scoring_policy=_json_object("NUMERAI_SCORING_POLICY", get("NUMERAI_SCORING_POLICY")),
            round_picture=_switch("NUMERAI_ROUND_PICTURE", get("NUMERAI_ROUND_PICTURE")),
        )
        return cls(**values, variables_set=frozenset(given))

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
