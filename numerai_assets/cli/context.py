"""What the commands share: the deployment's store and buckets, built from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from numerai_assets.files import Buckets, buckets_from_settings
from numerai_assets.settings import Settings
from numerai_assets.store import SubmissionStore, open_database


@dataclass(frozen=True)
class Deployment:
    settings: Settings
    store: SubmissionStore
    buckets: Buckets

    @classmethod
    def from_env(cls) -> Deployment:
        settings = Settings.from_env()
        store = SubmissionStore(open_database(settings))
        store.ensure_indexes()
        return cls(settings, store, buckets_from_settings(settings))
