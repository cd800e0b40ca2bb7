"""``Settings``: every environment variable the project reads, read when asked, in one place."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from numerai_assets.definitions import build_definitions
from numerai_assets.settings import (
    DEPLOYMENT_VARIABLES,
    VARIABLES,
    ConfigurationError,
    Settings,
    is_key_segment,
)
from numerai_assets_tests.conftest import REPO

# One distinct value for every variable the project reads.
EVERY_VARIABLE = {
    "NUMERAI_ASSETS_HOME": "/srv/numerai",
    "MONGO_URL": "mongodb://scorer:hunter2@db:27017",
    "MONGO_DB_NAME": "tourney",
    "S3_DATASET_BUCKET": "datasets",
    "S3_UPLOAD_BUCKET": "uploads",
    "S3_DATASET_KEY_TEMPLATE": "rounds/{round}.zip",
    "S3_ENDPOINT_URL": "http://s3.local:9000",
    "S3_ACCESS_KEY": "AKIA-EXAMPLE",
    "S3_SECRET_KEY": "s3-secret-value",
    "S3_REGION": "eu-west-1",
    "AWS_DEFAULT_REGION": "us-east-2",
    "NUMERAI_PREDICTION_CACHE": "off",
    "NUMERAI_UPLOAD_KEY_PREFIX": "uploads/{round}/",
    "DAGSTER_IO_BUCKET": "io",
    "DAGSTER_IO_PREFIX": "assets",
    "DAGSTER_HOME": "/srv/dagster",
    "DAGSTER_WEBSERVER_URL": "http://dagster:3000",
    "NUMERAI_SENSOR_INTERVAL_SECONDS": "7",
    "NUMERAI_BATCH_SIZE": "11",
    "NUMERAI_PAIR_SHARDS": "3",
    "NUMERAI_MIN_PAIRS_PER_SHARD": "23",
    "NUMERAI_SHARD_THREADS": "2",
    "NUMERAI_EXECUTOR": "celery",
    "NUMERAI_CELERY_BROKER": "amqp://scorer:celery-secret@mq:5672//",
    "NUMERAI_CELERY_QUEUE": "scoring-eu",
    "NUMERAI_IN_PROCESS_MAX_SUBMISSIONS": "29",
    "NUMERAI_MAX_SUBMISSIONS_PER_TICK": "13",
    "NUMERAI_PENDING_RETRY_SECONDS": "17",
    "NUMERAI_MAX_SCORING_ATTEMPTS": "19",
    "NUMERAI_ROUND_LEASE_SECONDS": "23",
    "API_KEY": "intake-key-value",
    "NUMERAI_SCORING_POLICY": '{"name": "strict"}',
    "NUMERAI_ROUND_PICTURE": "off",
    "NUMERAI_LAUNCH_ON_UPLOAD": "off",
}


def test_every_variable_is_declared_here_once() -> None:
    """The list above covers what ``Settings`` declares (so the tests below cover them all)."""
    assert sorted(EVERY_VARIABLE) == sorted(VARIABLES)
    assert len(set(VARIABLES)) == len(VARIABLES)
    assert set(DEPLOYMENT_VARIABLES) <= set(VARIABLES)


def test_defaults_with_nothing_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})

    assert settings.home == tmp_path / ".numerai_assets"
    assert (settings.mongo_url, settings.mongo_db_name) == (None, "numerai")
    assert (settings.dataset_bucket, settings.upload_bucket, settings.use_s3) == (
        "numerai-datasets",
        "numerai-submissions",
        False,
    )
    assert settings.prediction_cache == str(tmp_path / ".numerai_assets" / "prediction_cache")
    assert (settings.io_bucket, settings.io_prefix) == (None, "numerai-assets")
    assert settings.sensor_interval_seconds == 1
    assert (settings.batch_size, settings.max_submissions_per_tick) == (2000, 5000)
    assert (settings.pending_retry_seconds, settings.max_scoring_attempts) == (60, 3)
    assert settings.round_lease_seconds == 60
    assert (settings.api_key, settings.dagster_home) == (None, None)
    assert settings.webserver_url == "http://127.0.0.1:3000"
    assert settings.launch_on_upload is True
    assert (settings.pair_shards, settings.min_pairs_per_shard) == (4, 200_000)
    assert settings.shard_threads == 1
    assert (settings.executor, settings.celery_queue) == ("multiprocess", "numerai-scoring")
    assert settings.variables_set == frozenset()


def test_every_variable_is_read() -> None:
    settings = Settings.from_env({**EVERY_VARIABLE, "UNRELATED": "x"})

    assert settings.variables_set == set(EVERY_VARIABLE)
    assert settings.home == Path("/srv/numerai")
    assert (settings.mongo_url, settings.mongo_db_name) == (EVERY_VARIABLE["MONGO_URL"], "tourney")
    assert (settings.dataset_bucket, settings.upload_bucket) == ("datasets", "uploads")
    assert settings.dataset_key_template == "rounds/{round}.zip"
    assert settings.s3_endpoint_url == "http://s3.local:9000"
    assert (settings.s3_access_key, settings.s3_secret_key) == ("AKIA-EXAMPLE", "s3-secret-value")
    assert settings.s3_region == "eu-west-1"  # S3_REGION before AWS_DEFAULT_REGION
    assert settings.prediction_cache == "off"
    assert settings.upload_key_prefix == "uploads/{round}/"
    assert Settings.from_env({"NUMERAI_UPLOAD_KEY_PREFIX": ""}).variables_set == {
        "NUMERAI_UPLOAD_KEY_PREFIX"
    }
    assert (settings.io_bucket, settings.io_prefix) == ("io", "assets")
    assert (settings.dagster_home, settings.webserver_url) == (
        "/srv/dagster",
        "http://dagster:3000",
    )
    assert [
        settings.sensor_interval_seconds,
        settings.batch_size,
        settings.max_submissions_per_tick,
        settings.pending_retry_seconds,
        settings.max_scoring_attempts,
    ] == [7, 11, 13, 17, 19]
    assert (settings.pair_shards, settings.min_pairs_per_shard) == (3, 23)
    assert settings.shard_threads == 2
    assert (settings.executor, settings.celery_broker, settings.celery_queue) == (
        "celery",
        EVERY_VARIABLE["NUMERAI_CELERY_BROKER"],
        "scoring-eu",
    )
    assert settings.round_lease_seconds == 23
    assert settings.api_key == "intake-key-value"
    assert settings.policy().name == "strict" and settings.round_picture is False
    assert settings.launch_on_upload is False
    assert Settings.from_env({"AWS_DEFAULT_REGION": "us-east-2"}).s3_region == "us-east-2"


def test_secrets_are_left_out_of_the_repr() -> None:
    shown = repr(Settings.from_env(EVERY_VARIABLE))
    for secret in (
        "hunter2",
        "s3-secret-value",
        "AKIA-EXAMPLE",
        "intake-key-value",
        "celery-secret",
    ):
        assert secret not in shown
    assert "batch_size=11" in shown


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("NUMERAI_BATCH_SIZE", "many", "NUMERAI_BATCH_SIZE must be a whole number, got 'many'"),
        ("NUMERAI_BATCH_SIZE", "0", "NUMERAI_BATCH_SIZE must be at least 1, got 0"),
        # a batch's run config names at most 10,000 submissions
        ("NUMERAI_BATCH_SIZE", "10001", "NUMERAI_BATCH_SIZE must be at most 10,000, got 10,001"),
        ("NUMERAI_SENSOR_INTERVAL_SECONDS", "2.5", "must be a whole number, got '2.5'"),
        ("NUMERAI_MAX_SCORING_ATTEMPTS", "0", "NUMERAI_MAX_SCORING_ATTEMPTS must be at least 1"),
        ("NUMERAI_PENDING_RETRY_SECONDS", "-1", "NUMERAI_PENDING_RETRY_SECONDS must be at least 0"),
        ("NUMERAI_ROUND_LEASE_SECONDS", "5", "NUMERAI_ROUND_LEASE_SECONDS must be at least 6"),
        ("NUMERAI_ROUND_PICTURE", "maybe", "NUMERAI_ROUND_PICTURE must be 'on' or 'off'"),
        (
            "NUMERAI_EXECUTOR",
            "dask",
            "NUMERAI_EXECUTOR must be one of multiprocess, celery, ecs, k8s",
        ),
        ("NUMERAI_UPLOAD_KEY_PREFIX", "{user}/", "may use only {round} and {username}"),
    ],
)
def test_a_bad_setting_names_its_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        Settings.from_env({name: value})


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("{round}/{username}", "must name a folder: end it with '/'"),
        ("{round}//{username}/", "no part may be empty, '.' or '..' or hold '\\'"),
        ("/{round}/{username}/", "no part may be empty"),
        ("{round}/../{username}/", "no part may be empty, '.' or '..'"),
        ("up\\loads/{round}/", "or hold '\\'"),
        ("{round}{username}/", "must put {round} and {username} in different parts"),
        ("{round}-{username}/", "must put {round} and {username} in different parts"),
        ("{username:.3}/", "may use only {round} and {username}, as they are"),
        ("{username!r}/", "may use only {round} and {username}, as they are"),
        ("{round.real}/", "may use only {round} and {username}, as they are"),
        ("{user}/", "may use only {round} and {username}, as they are"),
        ("{round/", "may use only {round} and {username} (expected '}'"),
    ],
)
def test_an_upload_key_prefix_must_name_one_folder_per_round_and_user(pattern, message) -> None:
    """Folders are compared part by part: a pattern whose parts are ambiguous (an empty part,
    '.', '..', a backslash, two placeholders in one part, a cut or reformatted user name) could
    give two users one folder, and is refused when read."""
    with pytest.raises(ValueError, match=re.escape(f"NUMERAI_UPLOAD_KEY_PREFIX {pattern!r}")) as e:
        Settings.from_env({"NUMERAI_UPLOAD_KEY_PREFIX": pattern})
    assert message in str(e.value)


@pytest.mark.parametrize(
    "pattern", ["", "{round}/{username}/", "uploads/{round}/", "r{round}/u-{username}-x/"]
)
def test_upload_key_prefixes_that_name_one_folder_are_read(pattern) -> None:
    assert Settings.from_env({"NUMERAI_UPLOAD_KEY_PREFIX": pattern}).upload_key_prefix == pattern


@pytest.mark.parametrize(
    ("text", "one"),
    [
        ("alice", True),
        ("a%2Fb", True),  # S3 decodes no percent-escape: one part
        ("a b", True),
        ("...", True),
        ("", False),
        (".", False),
        ("..", False),
        ("a/b", False),
        ("/", False),
        ("a\\b", False),
    ],
)
def test_a_key_segment_is_one_part_of_a_key(text, one) -> None:
    assert is_key_segment(text) is one


def test_zero_delays_are_allowed() -> None:
    settings = Settings.from_env({"NUMERAI_PENDING_RETRY_SECONDS": " 0 "})
    assert settings.pending_retry_seconds == 0


def test_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value set after every module was imported is what the next call sees."""
    monkeypatch.setenv("NUMERAI_PENDING_RETRY_SECONDS", "5")
    monkeypatch.setenv("NUMERAI_MAX_SCORING_ATTEMPTS", "2")
    assert Settings.from_env().pending_retry_seconds == 5
    monkeypatch.setenv("NUMERAI_MAX_SCORING_ATTEMPTS", "4")
    assert Settings.from_env().max_scoring_attempts == 4
    monkeypatch.setenv("NUMERAI_SENSOR_INTERVAL_SECONDS", "9")
    assert build_definitions().resolve_sensor_def("new_submissions").minimum_interval_seconds == 9


def test_no_other_module_reads_the_environment() -> None:
    """One home for every variable: a read anywhere else would drift from it."""
    read = re.compile(r"os\.environ\s*(\.get\(|\[)|getenv\(|environ\.get\(")
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for folder in ("numerai_assets", "benchmarks")
        for path in sorted((REPO / folder).rglob("*.py"))
        if path.name != "settings.py"
        for number, text in enumerate(path.read_text().splitlines(), 1)
        if read.search(text)
    ]
    assert offenders == []


def test_the_readme_documents_every_variable() -> None:
    readme = (REPO / "README.md").read_text()
    configuration = readme[readme.index("## Configuration") : readme.index("## Deployment")]
    missing = [name for name in EVERY_VARIABLE if f"`{name}`" not in configuration]
    assert missing == []
