"""End to end: the real Dagster daemon (sensor, run queue, run launcher, code server) on a
PostgreSQL-backed instance scores a seeded round with no help, three batches in turn."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from numerai_assets_tests.conftest import REPO
from numerai_assets_tests.pipeline.conftest import seed_round

DEADLINE_SECONDS = 240


@pytest.fixture
def daemon(postgres_env, production_home, local_env, tmp_path, monkeypatch):
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


@pytest.mark.slow
def test_daemon_scores_every_submission(daemon, deployment, production_home):
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
        runs = instance.get_run_records(dg.RunsFilter(tags={"round": "5"}))
        assert len(runs) == 3 and all(
            r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in runs
        )
        spans = sorted((r.start_time, r.end_time) for r in runs)
        # One run per round at a time: each batch started after the previous one ended.
        assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))
