"""A fresh PostgreSQL database per test on the server at 127.0.0.1:5432, and a DAGSTER_HOME
holding the production ``deploy/production/dagster.yaml`` pointed at it."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from numerai_assets_tests.conftest import PRODUCTION_YAML, unavailable
from numerai_assets_tests.pipeline.conftest import deployment  # noqa: F401

PG_HOST = os.environ.get("DAGSTER_TEST_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("DAGSTER_TEST_PG_PORT", "5432")
PG_USER = os.environ.get("DAGSTER_TEST_PG_USERNAME", "postgres")


def _admin_connection():
    import psycopg2

    try:
        connection = psycopg2.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=3
        )
    except psycopg2.OperationalError as error:
        unavailable(f"no PostgreSQL server at {PG_HOST}:{PG_PORT} ({error})".strip())
    connection.autocommit = True
    return connection


@pytest.fixture
def postgres_env() -> Iterator[dict[str, str]]:
    """``DAGSTER_PG_*`` variables naming a database created for this test (dropped after)."""
    name = f"numerai_assets_test_{uuid.uuid4().hex[:10]}"
    admin = _admin_connection()
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {
            "DAGSTER_PG_HOST": PG_HOST,
            "DAGSTER_PG_PORT": PG_PORT,
            "DAGSTER_PG_DB": name,
            "DAGSTER_PG_USERNAME": PG_USER,
            "DAGSTER_PG_PASSWORD": "",
        }
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def production_home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME with the production instance (``deploy/production/dagster.yaml``)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PRODUCTION_YAML, home / "dagster.yaml")
    return home
