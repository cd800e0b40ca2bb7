"""Resources, configured from the environment with a local default for every one.

A variable that is set becomes a ``dg.EnvVar`` (read by the run process, never shown in the UI
or run config); one that is not set falls back to the embedded store and local folders under
``NUMERAI_ASSETS_HOME``. The variable names are the original system's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import dagster as dg
from dagster_aws.s3 import S3PickleIOManager, S3Resource
from pydantic import Field, PrivateAttr

from numerai_assets.files import Buckets, LocalBuckets, S3Buckets
from numerai_assets.prediction_cache import PredictionMirror, RoundPredictionCache
from numerai_assets.scoring.policy import ScoringPolicy
from numerai_assets.settings import (
    DEFAULT_DATASET_KEY,
    DEFAULT_UPLOAD_KEY_PREFIX,
    LOCAL_DATASET_BUCKET,
    LOCAL_UPLOAD_BUCKET,
    Settings,
)
from numerai_assets.store import SubmissionStore, open_database

_INDEXED: set[tuple] = set()


class StoreResource(dg.ConfigurableResource):
    """The submissions database: MongoDB at ``mongo_url``, else the embedded store in ``home``."""

    mongo_url: str | None = Field(default=None, description="MONGO_URL; unset: embedded store")
    db_name: str = Field(default="numerai", description="MONGO_DB_NAME")
    home: str = Field(default=".numerai_assets", description="NUMERAI_ASSETS_HOME")

    def get_store(self) -> SubmissionStore:
        settings = dataclasses.replace(
            Settings.from_env({}),
            home=Path(self.home).absolute(),
            mongo_url=self.mongo_url or None,
            mongo_db_name=self.db_name,
        )
        store = SubmissionStore(open_database(settings))
        key = (self.mongo_url, self.db_name, self.home)
        if key not in _INDEXED:  # once per process: creating an index is idempotent but not free
            store.ensure_indexes()
            _INDEXED.add(key)
        return store


class FilesResource(dg.ConfigurableResource):
    """Round datasets and submission files: S3 through ``s3`` when set, else local folders."""

    dataset_bucket: str = LOCAL_DATASET_BUCKET
    upload_bucket: str = LOCAL_UPLOAD_BUCKET
    dataset_key_template: str = DEFAULT_DATASET_KEY
    local_root: str = Field(default=".numerai_assets/s3", description="folders standing in for S3")
    s3: S3Resource | None = None
    upload_key_prefix: str = Field(
        default=DEFAULT_UPLOAD_KEY_PREFIX,
        description="where a submission's file must lie: {round} and {username} filled in "
        "(NUMERAI_UPLOAD_KEY_PREFIX; empty: anywhere in the bucket)",
    )
    prediction_cache: str = Field(
        default=".numerai_assets/prediction_cache",
        description="per-round prediction cache folder, or 'off' (NUMERAI_PREDICTION_CACHE)",
    )
    prediction_mirror_bucket: str | None = Field(
        default=None,
        description="S3 bucket holding the cache's copy for every worker (DAGSTER_IO_BUCKET)",
    )

    def get_buckets(self) -> Buckets:
        if self.s3 is not None:
            return S3Buckets(self.s3.get_client())
        return LocalBuckets(Path(self.local_root))

    @contextlib.contextmanager
    def prediction_cache_for(self, round: int, tournament_ids: Sequence[object]) -> Iterator:
        """The round's prediction cache; with the cache off, a throw-away one for this run."""
        if self.prediction_cache == "off":
            with tempfile.TemporaryDirectory(prefix="predictions-") as scratch:
                yield RoundPredictionCache(Path(scratch), round, tournament_ids)
            return
        mirror = None
        if self.prediction_mirror_bucket:
            mirror = PredictionMirror(self.get_buckets(), self.prediction_mirror_bucket)
        yield RoundPredictionCache(Path(self.prediction_cache), round, tournament_ids, mirror)


class PolicyResource(dg.ConfigurableResource):
    """The deployment's scoring policy (``NUMERAI_SCORING_POLICY``), read once per run: every
    step of a run decides under the same rules, and a bad policy fails the run's first step
    with a :class:`~numerai_assets.settings.ConfigurationError` naming the variable."""

    _policy: ScoringPolicy | None = PrivateAttr(default=None)

    def get(self) -> ScoringPolicy:
        if self._policy is None:
            self._policy = Settings.from_env().policy()
        return self._policy


def _env(name: str, default: object, settings: Settings) -> object:
    """``dg.EnvVar(name)`` when the variable is set, else the local default."""
    return dg.EnvVar(name) if name in settings.variables_set else default


def build_resources(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """Every resource the definitions need, chosen by what the environment (default:
    ``os.environ``) sets."""
    settings = Settings.from_env(environ)
    s3 = None
    if settings.use_s3:
        s3 = S3Resource(
            endpoint_url=_env("S3_ENDPOINT_URL", None, settings),
            aws_access_key_id=_env("S3_ACCESS_KEY", None, settings),
            aws_secret_access_key=_env("S3_SECRET_KEY", None, settings),
            region_name=_env("S3_REGION", None, settings),
            max_attempts=5,
        )
    store = StoreResource(
        mongo_url=_env("MONGO_URL", None, settings),
        db_name=_env("MONGO_DB_NAME", settings.mongo_db_name, settings),
        home=str(settings.home),
    )
    files = FilesResource(
        dataset_bucket=_env("S3_DATASET_BUCKET", settings.dataset_bucket, settings),
        upload_bucket=_env("S3_UPLOAD_BUCKET", settings.upload_bucket, settings),
        dataset_key_template=settings.dataset_key_template,
        local_root=str(settings.local_buckets_dir),
        s3=s3,
        upload_key_prefix=settings.upload_key_prefix,
        prediction_cache=settings.prediction_cache,
        prediction_mirror_bucket=_env("DAGSTER_IO_BUCKET", None, settings)
        if s3 is not None
        else None,
    )
    if settings.io_bucket:
        # Production: round assets live in S3, so any worker (ECS task, pod) can load them.
        io_manager: object = S3PickleIOManager(
            s3_resource=s3 or S3Resource(max_attempts=5),
            s3_bucket=dg.EnvVar("DAGSTER_IO_BUCKET"),
            s3_prefix=settings.io_prefix,
        )
    else:
        io_manager = dg.FilesystemIOManager(base_dir=str(settings.home / "dagster_storage"))
    return {
        "store": store,
        "files": files,
        "io_manager": io_manager,
        "scoring_policy": PolicyResource(),
        # Values passed between the ops of one scoring run never leave its process.
        "op_values": dg.InMemoryIOManager(),
    }
