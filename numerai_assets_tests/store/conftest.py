"""The ``database`` fixture: every store test runs against each backend.

``embedded`` is montydb's sqlite store in ``tmp_path``, opened the production way
(:func:`open_database` with ``MONGO_URL`` unset); ``mongomock`` is in memory; ``mongodb`` is the
real server at ``MONGO_URL``, skipped when there is none (none can run on the CI machines).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mongomock
import pymongo
import pytest

from numerai_assets.settings import Settings
from numerai_assets.store import SubmissionStore, open_database

MONGO_URL = os.environ.get("MONGO_URL", "").strip()

BACKENDS = [
    "embedded",
    "mongomock",
    pytest.param(
        "mongodb",
        marks=[
            pytest.mark.mongodb,
            pytest.mark.skipif(
                not MONGO_URL.startswith("mongodb"), reason="no MongoDB server at MONGO_URL"
            ),
        ],
    ),
]


def embedded_settings(home: Path) -> Settings:
    return Settings.from_env({"NUMERAI_ASSETS_HOME": str(home)})


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "embedded":
        yield open_database(embedded_settings(tmp_path))
    elif request.param == "mongomock":
        yield mongomock.MongoClient(tz_aware=True)["numerai"]
    else:
        client = pymongo.MongoClient(MONGO_URL, tz_aware=True, serverSelectionTimeoutMS=5000)
        name = f"numerai_assets_test_{uuid.uuid4().hex[:12]}"
        try:
            yield client[name]
        finally:
            client.drop_database(name)
            client.close()


@pytest.fixture
def store(database: Any) -> SubmissionStore:
    store = SubmissionStore(database)
    store.ensure_indexes()
    return store
