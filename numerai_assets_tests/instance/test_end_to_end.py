"""End to end: the real Dagster daemon (sensor, run queue, run launcher, code server) on a
PostgreSQL-backed instance scores a seeded round with no help, three batches in turn; once with
the embedded store and once with the submissions in a MongoDB server over the wire."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from numerai_assets.cli.context import Deployment
from numerai_assets.settings import Settings
from numerai_assets.store import open_database
from numerai_assets_tests.conftest import REPO, fresh_database_name
from numerai_assets_tests.pipeline.conftest import evaluate_sensor, launch, seed_round
from numerai_assets_tests.pipeline.test_scoring_job import outcome

DEADLINE_SECONDS = 240
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


@pytest.fixture(params=["embedded", pytest.param("mongodb", marks=pytest.mark.mongodb)])
def submissions_store(request, local_env, monkeypatch):
    """Where the submissions live: the embedded store, or a fresh database at ``MONGO_URL``."""
    if request.param == "embedded":
        yield request.param
        return
    monkeypatch.setenv("MONGO_URL", request.getfixturevalue("mongo_url"))
    monkeypatch.setenv("MONGO_DB_NAME", fresh_database_name())
    database = open_database(Settings.from_env())
    try:
        yield request.param
    finally:
        database.client.drop_database(database.name)


@pytest.fixture
def daemon(postgres_env, production_home, submissions_store, tmp_path, monkeypatch):
    """``dagster-daemon run`` in its own process group, ended (group and all) afterwards."""
    for name, value in postgres_env.items():
        monkeypatch.setenv(name, value)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(production_home),
        "NUMERAI_SENSOR_INTERVAL_SECONDS": "1",
        "NUMERAI_BATCH_SIZE": "3",
    }
    log = (tmp_path / "daemon.log").open("w")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process, tmp_path / "daemon.log"
    finally:
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
            try:
                os.killpg(process.pid, sig)
                process.wait(timeout=wait)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        log.close()


def fault_free_outcomes(home: Path, monkeypatch) -> dict:
    """The same round scored in one in-process run on the embedded store: what the daemon's runs
    must reproduce, whichever store they wrote to."""
    monkeypatch.setenv("NUMERAI_ASSETS_HOME", str(home))
    monkeypatch.delenv("MONGO_URL", raising=False)
    seeded = seed_round(Deployment.from_env(), 5)
    seeded.submit_demo(8)
    with dg.instance_for_test() as instance:
        assert all(r.success for r in launch(instance, evaluate_sensor(instance)))
    return {user: outcome(doc) for user, doc in seeded.by_user().items()}


@pytest.mark.slow
def test_daemon_scores_every_submission(daemon, deployment, production_home, monkeypatch, tmp_path):
    """Three batches of one round requested together run one after the other, and write what a
    single fault-free run writes."""
    process, log = daemon
    seeded = seed_round(deployment, 5)
    ids = seeded.submit_demo(8)
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        docs = seeded.by_user()
        if all(not d["original"]["pending"] for d in docs.values()):
            break
        assert process.poll() is None, log.read_text()[-3000:]
        time.sleep(1)
    else:
        pytest.fail(
            f"not every submission was scored in {DEADLINE_SECONDS} s:\n" + log.read_text()[-3000:]
        )

    assert docs["carol"]["original"]["reason"] == "duplicate"
    assert docs["carol"]["original"]["matches"][0]["submission_id"] == ids["alice"]
    assert docs["dave"]["original"]["reason"] == "correlated"
    assert "missing" in docs["grace"]["invalid"]["reason"]

    with dg.DagsterInstance.from_config(str(production_home)) as instance:
        # The last scores are written a moment before their run records its end: wait for it.
        finished = dg.RunsFilter(tags={"round": "5"}, statuses=FINISHED)
        while len(instance.get_run_records(finished)) < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
        runs = instance.get_run_records(dg.RunsFilter(tags={"round": "5"}))
        assert len(runs) == 3 and all(
            r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in runs
        )
        spans = sorted((r.start_time, r.end_time) for r in runs)
        # One run per round at a time: each batch started after the previous one ended.
        assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))
    scored = {user: outcome(doc) for user, doc in docs.items()}
    assert scored == fault_free_outcomes(tmp_path / "reference", monkeypatch)
