"""Resources: what a run may reach is the deployment's to say, never run config's.

None of these resources has a config field. Databases, buckets, key layouts, folders, the S3
endpoint and credentials are read from the environment when a step asks
(:meth:`Settings.from_env`, a local default for every setting; the variable names are the
original system's). Run config is whatever someone who reaches the Dagster UI types in the
launchpad (OSS Dagster has no authentication); a resource without fields refuses any config at
launch (``DagsterInvalidConfigError``, no run created), so a run cannot be pointed at another
folder, bucket, prefix, endpoint or database. The run config that remains is op config, checked:
the batch's submission ids (``BatchConfig``) and the round's clustering (``ClusteringConfig``).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from numerai_assets.files import Buckets, buckets_from_settings
from numerai_assets.pipeline.io_managers import OpValuesIOManager, RoundAssetsIOManager
from numerai_assets.prediction_cache import CacheLocation, PredictionMirror, RoundPredictionCache
from numerai_assets.scoring.policy import ScoringPolicy
from numerai_assets.settings import Settings
from numerai_assets.store import SubmissionStore, open_database

_INDEXED: set[tuple] = set()
RUN_CACHES = "run_caches"  # under the home: each run's own cache, with NUMERAI_PREDICTION_CACHE=off


class StoreResource(dg.ConfigurableResource):
    """The submissions database: ``MONGO_URL`` (database ``MONGO_DB_NAME``), else the embedded
    store under ``NUMERAI_ASSETS_HOME``."""

    def get_store(self) -> SubmissionStore:
        settings = Settings.from_env()
        store = SubmissionStore(open_database(settings))
        key = (settings.mongo_url, settings.mongo_db_name, settings.home)
        if key not in _INDEXED:  # once per process: creating an index is idempotent but not free
            store.ensure_indexes()
            _INDEXED.add(key)
        return store


class FilesResource(dg.ConfigurableResource):
    """Round datasets and submission files: the S3 buckets the deployment names
    (``S3_DATASET_BUCKET``, ``S3_UPLOAD_BUCKET``, through the project's one S3 client), else
    folders under ``NUMERAI_ASSETS_HOME``; and the per-round prediction cache
    (``NUMERAI_PREDICTION_CACHE``)."""

    def get_buckets(self) -> Buckets:
        return buckets_from_settings(Settings.from_env())

    @property
    def dataset_bucket(self) -> str:
        return Settings.from_env().dataset_bucket

    @property
    def dataset_key_template(self) -> str:
        return Settings.from_env().dataset_key_template

    @property
    def upload_bucket(self) -> str:
        return Settings.from_env().upload_bucket

    @property
    def upload_key_prefix(self) -> str:
        """Where a submission's file must lie: ``{round}`` and ``{username}`` filled in
        (``NUMERAI_UPLOAD_KEY_PREFIX``; empty: anywhere in the bucket)."""
        return Settings.from_env().upload_key_prefix

    def round_cache(
        self, round: int, tournament_ids: Sequence[object], run_id: str
    ) -> RoundPredictionCache:
        """The round's prediction cache (``NUMERAI_PREDICTION_CACHE``), mirrored in S3 for every
        worker with S3 files and ``DAGSTER_IO_BUCKET``. With the cache off, one for this run
        alone (every earlier file read again), shared by its steps and removed by
        :meth:`discard_run_cache` when the run ends."""
        return RoundPredictionCache(self._cache_root(run_id), round, tournament_ids, self._mirror())

    def cache_at(self, location: CacheLocation) -> RoundPredictionCache:
        """The cache another step of the run opened (:attr:`RoundPredictionCache.location`)."""
        return RoundPredictionCache.at(location, self._mirror())

    def discard_run_cache(self, run_id: str) -> None:
        """Remove the run's own cache (the cache off), and any a dead run left a day ago."""
        settings = Settings.from_env()
        if settings.prediction_cache != "off":
            return
        runs = settings.home / RUN_CACHES
        shutil.rmtree(runs / run_id, ignore_errors=True)
        for stale in runs.glob("*") if runs.exists() else ():
            if time.time() - stale.stat().st_mtime > 86_400:
                shutil.rmtree(stale, ignore_errors=True)

    def _cache_root(self, run_id: str) -> Path:
        settings = Settings.from_env()
        if settings.prediction_cache == "off":
            return settings.home / RUN_CACHES / run_id
        return Path(settings.prediction_cache)

    def _mirror(self) -> PredictionMirror | None:
        settings = Settings.from_env()
        if settings.prediction_cache != "off" and settings.use_s3 and settings.io_bucket:
            return PredictionMirror(buckets_from_settings(settings), settings.io_bucket)
        return None


class PolicyResource(dg.ConfigurableResource):
    """The deployment's scoring policy (``NUMERAI_SCORING_POLICY``), read once per run: every
    step of a run decides under the same rules, and a bad policy fails the run's first step
    with a :class:`~numerai_assets.settings.ConfigurationError` naming the variable."""

    _policy: ScoringPolicy | None = PrivateAttr(default=None)

    def get(self) -> ScoringPolicy:
        if self._policy is None:
            self._policy = Settings.from_env().policy()
        return self._policy


def build_resources() -> dict[str, object]:
    """Every resource the definitions need. The same objects for every deployment: each reads
    the environment when a run uses it, so local and production runs take one code path."""
    return {
        "store": StoreResource(),
        "files": FilesResource(),
        # Round assets: S3 with DAGSTER_IO_BUCKET (any worker loads them), else local folders.
        "io_manager": RoundAssetsIOManager(),
        "scoring_policy": PolicyResource(),
        # Values passed between the ops of one scoring run never leave its process.
        "op_values": OpValuesIOManager(),
    }
