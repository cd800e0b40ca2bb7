"""Faults during scoring: each test ends with every submission scored exactly once, the stored
results equal to a fault-free run of the same round, and nothing left pending, claimed or
requested anywhere in the store (``checks.assert_scored_once_as_reference``)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import dagster as dg
import pymongo.errors
import pytest

from numerai_assets.cli.context import Deployment
from numerai_assets.store import SubmissionStore
from numerai_assets_tests.daemon import add_partitions, evaluate_sensor, launch
from numerai_assets_tests.faults.checks import assert_scored_once_as_reference, outcomes
from numerai_assets_tests.faults.services import wait_for
from numerai_assets_tests.pipeline.conftest import seed_round
from numerai_assets_tests.s3_server import S3_TEST_CREDENTIALS, start_moto, stop_moto

ROUND = 7


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The fault-free outcomes of the demo round (deterministic: same data, same files)."""
    home = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NUMERAI_ASSETS_HOME", str(home))
        for name in ("MONGO_URL", "S3_DATASET_BUCKET", "S3_UPLOAD_BUCKET", "S3_ENDPOINT_URL"):
            patch.delenv(name, raising=False)
        seeded = seed_round(Deployment.from_env(), ROUND)
        seeded.submit_demo(8)
        with dg.instance_for_test() as instance:
            assert all(r.success for r in launch(instance, evaluate_sensor(instance)))
        return outcomes(seeded)


def recover(instance, seeded, *, orphaned: bool = False):
    """A tick as the daemon would run it after the run's process died: it plans one retry run
    for its submissions.

    ``orphaned``: nobody told Dagster (the daemon and its code server died with the run), so the
    run still shows started; once its lease runs out (set here to have run out), the tick
    reports it failed first. Otherwise the code server reported the run failed when its process
    died (as Dagster's does within a second: ``run_in_child`` does it here).
    """
    store = seeded.deployment.store
    (dead,) = instance.get_run_records()
    if orphaned:
        assert dead.dagster_run.status == dg.DagsterRunStatus.STARTED
        assert store.lease_of(ROUND)["owner"] == dead.dagster_run.run_id  # held by the dead run
        store._competitions.update_one(  # whose heartbeat stopped: LEASE_SECONDS go by
            {"_id": ROUND}, {"$set": {"lease.until": datetime(2000, 1, 1)}}
        )
    result = evaluate_sensor(instance)
    assert instance.get_run_by_id(dead.dagster_run.run_id).status == dg.DagsterRunStatus.FAILURE
    assert isinstance(result, dg.SensorResult) and len(result.run_requests) == 1  # one retry run
    assert {r.tags["reason"] for r in result.run_requests} == {"retry"}
    # ahead of the round's queued runs: its submissions come before theirs
    assert {r.tags.get("dagster/priority") for r in result.run_requests} == {"1"}
    runs = launch(instance, result)
    assert runs and all(r.success for r in runs)
    return result


def test_s3_server_stopped_during_a_run_then_restarted(tmp_path, monkeypatch, instance, reference):
    server, url = start_moto()
    port = int(url.rsplit(":", 1)[1])
    env = {
        "S3_ENDPOINT_URL": url,
        "S3_DATASET_BUCKET": "datasets",
        "S3_UPLOAD_BUCKET": "uploads",
        "S3_ACCESS_KEY": S3_TEST_CREDENTIALS["access_key"],
        "S3_SECRET_KEY": S3_TEST_CREDENTIALS["secret_key"],
        "S3_REGION": S3_TEST_CREDENTIALS["region"],
        "NUMERAI_ASSETS_HOME": str(tmp_path / "home"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    deployment = Deployment.from_env()
    for bucket in ("datasets", "uploads"):
        deployment.buckets.client.create_bucket(Bucket=bucket)
    seeded = seed_round(deployment, ROUND)
    seeded.submit_demo(8)
    tick = evaluate_sensor(instance)
    stop_moto(server)  # S3 goes away before the run reads anything
    outcome_box = []
    runner = threading.Thread(target=lambda: outcome_box.extend(launch(instance, tick)))
    runner.start()
    time.sleep(1.5)
    server, _ = start_moto(port)  # back on the same port (moto keeps its data in-process)
    try:
        runner.join(timeout=120)
        assert not runner.is_alive()
        assert [r.success for r in outcome_box] == [True]
        assert_scored_once_as_reference(seeded, reference, instance)
    finally:
        stop_moto(server)


def test_store_raises_on_write_once(seeded, instance, reference, monkeypatch):
    seeded.submit_demo(8)
    original = SubmissionStore.update_many
    calls, failures = [], []

    def flaky(self, updates):
        calls.append(1)
        if len(calls) == 2 and not failures:  # the first write of the scores (1st: pending)
            failures.append(1)
            raise pymongo.errors.AutoReconnect("connection reset by peer")
        return original(self, updates)

    monkeypatch.setattr(SubmissionStore, "update_many", flaky)
    (run,) = launch(instance, evaluate_sensor(instance))
    assert run.success and failures == [1]
    retried = [e for e in run.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert [e.step_key for e in retried] == ["submission_scores.write_scores"]
    assert_scored_once_as_reference(seeded, reference, instance)


def run_in_child(
    instance, tick, mode: str, marker: Path, *, kill_when_marked: bool, report_failed: bool = True
):
    """Run the tick's one request in a child process that dies as ``mode`` says."""
    (request,) = tick.run_requests
    add_partitions(instance, tick)
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "numerai_assets_tests.faults.crash_run",
            mode,
            str(marker),
            request.partition_key,
            json.dumps(request.run_config),
            request.run_key,
        ],
        env={**os.environ, "DAGSTER_HOME": instance.root_directory},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), child.stderr.read().decode()[-3000:] if child.poll() else "timeout"
    if kill_when_marked:
        os.killpg(child.pid, signal.SIGKILL)
    assert child.wait(timeout=30) != 0
    if report_failed:  # what Dagster's code server does when a run's process dies
        (run,) = instance.get_run_records()
        instance.report_run_failed(run.dagster_run)


def test_run_process_killed_mid_run_is_retried(seeded, instance, reference, monkeypatch, tmp_path):
    seeded.submit_demo(8)
    tick = evaluate_sensor(instance)
    run_in_child(
        instance,
        tick,
        "hang-before-write",
        tmp_path / "m",
        kill_when_marked=True,
        report_failed=False,  # the daemon died with it: nobody tells Dagster
    )
    docs = seeded.by_user()
    assert all(d["original"]["pending"] for u, d in docs.items() if u != "grace")
    (killed,) = instance.get_run_records()
    assert killed.dagster_run.status == dg.DagsterRunStatus.STARTED  # nobody told Dagster
    recover(instance, seeded, orphaned=True)
    assert_scored_once_as_reference(seeded, reference, instance)


def test_run_killed_before_taking_the_lease_is_found_by_its_silence(
    seeded, instance, reference, monkeypatch, tmp_path
):
    """The daemon killed with a run whose first step had not taken the round's lease yet: no
    lease runs out, so the sensor goes by the run's silence (nothing logged for a lease's
    length), reports it failed and plans its batch again."""
    monkeypatch.setenv("NUMERAI_ROUND_LEASE_SECONDS", "6")  # the shortest allowed
    seeded.submit_demo(8)
    tick = evaluate_sensor(instance)
    run_in_child(
        instance,
        tick,
        "hang-before-lease",
        tmp_path / "m",
        kill_when_marked=True,
        report_failed=False,  # the daemon died with it: nobody tells Dagster
    )
    (killed,) = instance.get_run_records()
    assert killed.dagster_run.status == dg.DagsterRunStatus.STARTED
    assert seeded.deployment.store.lease_of(ROUND) is None  # it never held the round

    def retried():
        result = evaluate_sensor(instance)  # skips while the run may still be alive
        return result if isinstance(result, dg.SensorResult) else None

    result = wait_for(retried, timeout=60, interval=1, what="the silent run found dead")
    dead = instance.get_run_by_id(killed.dagster_run.run_id)
    assert dead.status == dg.DagsterRunStatus.FAILURE
    assert [r.tags["reason"] for r in result.run_requests] == ["retry"]
    assert all(r.success for r in launch(instance, result))
    assert_scored_once_as_reference(seeded, reference, instance)


@pytest.mark.parametrize(
    "mode",
    [
        "exit-after-writes=3",  # crash after computing, part way through writing
        "exit-before-leaderboard=2",  # every submission written, the leaderboard not
    ],
)
def test_crash_between_computing_and_writing(
    seeded, instance, reference, monkeypatch, tmp_path, mode
):
    seeded.submit_demo(8)
    tick = evaluate_sensor(instance)
    run_in_child(instance, tick, mode, tmp_path / "m", kill_when_marked=False)
    pending = [u for u, d in seeded.by_user().items() if d["original"]["pending"]]
    if mode.startswith("exit-after-writes"):
        assert 0 < len(pending) < 8
        recover(instance, seeded)
    else:
        assert pending == []  # all written, but the leaderboard still shows them pending
        board = seeded.deployment.store.leaderboard(ROUND)
        assert board and all(e["original"]["pending"] for e in board)
        # The next run of the round (here: a new submission's) completes the leaderboard.
        seeded.submit("late", b"id,probability\n")
        assert all(r.success for r in launch(instance, evaluate_sensor(instance, tick.cursor)))
        reference = {**reference, "late": outcomes(seeded)["late"]}
    assert_scored_once_as_reference(seeded, reference, instance)


def test_sensor_evaluated_twice_on_the_same_state(seeded, instance, reference):
    seeded.submit_demo(8)
    first, second = evaluate_sensor(instance), evaluate_sensor(instance)
    assert isinstance(second, dg.SkipReason)  # the first claimed every submission
    runs = launch(instance, first) + launch(instance, second)  # the second launches nothing
    assert len(runs) == 1 and runs[0].success
    assert_scored_once_as_reference(seeded, reference, instance)
