"""The ``database`` fixture: every store test runs against each backend.

``embedded`` is montydb's sqlite store in ``tmp_path``, opened the production way
(:func:`open_database` with ``MONGO_URL`` unset); ``mongomock`` is in memory; ``mongodb`` is the
server at ``MONGO_URL`` over the wire, opened the production way too (pymongo's ``MongoClient``),
in a fresh database per test. Without a server those are skipped (failed in CI).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mongomock
import pytest

from numerai_assets.settings import Settings
from numerai_assets.store import SubmissionStore, open_database
from numerai_assets_tests.conftest import fresh_database_name

BACKENDS = ["embedded", "mongomock", pytest.param("mongodb", marks=pytest.mark.mongodb)]


def embedded_settings(home: Path) -> Settings:
    return Settings.from_env({"NUMERAI_ASSETS_HOME": str(home)})


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "embedded":
        yield open_database(embedded_settings(tmp_path))
    elif request.param == "mongomock":
        yield mongomock.MongoClient(tz_aware=True)["numerai"]
    else:
        url = request.getfixturevalue("mongo_url")
        name = fresh_database_name()
        settings = Settings.from_env(
            {"NUMERAI_ASSETS_HOME": str(tmp_path), "MONGO_URL": url, "MONGO_DB_NAME": name}
        )
        database = open_database(settings)
        try:
            yield database
        finally:
            database.client.drop_database(name)


@pytest.fixture
def store(database: Any) -> SubmissionStore:
    store = SubmissionStore(database)
    store.ensure_indexes()
    return store
