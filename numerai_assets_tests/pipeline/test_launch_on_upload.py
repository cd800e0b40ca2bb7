"""An upload asks for its own scoring run, through what ``make run`` starts (``dg dev``: the
webserver, the daemon with its sensor, queue and run launcher, on the local SQLite instance).

The run the upload asks for is the one the sensor would have planned, carries its run key, and
is the only run that scores the submission; a burst is batched by the sensor instead of a run
per upload; with the webserver out of reach or the switch off, the sensor scores the upload.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from numerai_assets.datasets.synthetic import model_probabilities, submission_csv
from numerai_assets.pipeline.launch import launch_on_upload
from numerai_assets.pipeline.runs import ALIVE
from numerai_assets.settings import Settings
from numerai_assets_tests.conftest import REPO
from numerai_assets_tests.faults.services import free_port

from .conftest import seed_round

BIN = Path(sys.executable).parent
START_SECONDS = 90  # dg dev's webserver, daemon and code servers on a loaded machine
DECIDED_SECONDS = 120
ROUND = 7
QUEUED = re.compile(r"its scoring run ([0-9a-f-]{36}) is queued")


class DagsterDev:
    def __init__(self, home: Path, port: int, log: Path) -> None:
        self.home, self.port, self.log = home, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def runs_of(self, submission_id: str) -> list[dg.RunRecord]:
        """Every scoring run whose batch names ``submission_id``."""
        with dg.DagsterInstance.from_config(str(self.home)) as instance:
            return [r for r in instance.get_run_records() if submission_id in batch_of(r)]

    def idle(self) -> None:
        """Until no run has yet to end (queued, starting, started, canceling)."""
        deadline = time.monotonic() + DECIDED_SECONDS
        with dg.DagsterInstance.from_config(str(self.home)) as instance:
            while instance.get_run_records(dg.RunsFilter(statuses=ALIVE)):
                assert time.monotonic() < deadline, self.tail()
                time.sleep(0.5)


def batch_of(record: dg.RunRecord) -> list[str]:
    config = record.dagster_run.run_config or {}
    ops = config.get("ops", {}).get("submission_scores", {}).get("ops", {})
    return ops.get("prepare_submissions", {}).get("config", {}).get("submission_ids", [])


@pytest.fixture
def dagster_dev(deployment, tmp_path, monkeypatch) -> Iterator[DagsterDev]:
    """``dg dev`` as ``make run`` starts it, on a free port, in its own process group (ended
    after); ``DAGSTER_WEBSERVER_URL`` points at it."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "deploy/local/dagster.yaml").read_text())
    port = free_port()
    server = DagsterDev(home, port, tmp_path / "dg-dev.log")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_WEBSERVER_URL", server.url)
    monkeypatch.setenv("NUMERAI_ROUND_PICTURE", "off")  # not under test: 0.8 s a run
    command = [str(BIN / "dg"), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"]
    with server.log.open("w") as out:
        server.process = subprocess.Popen(
            command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield server
    finally:
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(server.process.pid, sig)
                server.process.wait(timeout=wait)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue


def wait_decided(seeded, ids, server: DagsterDev) -> dict[str, dict]:
    deadline = time.monotonic() + DECIDED_SECONDS
    while True:
        docs = {str(d["_id"]): d for d in seeded.deployment.store.round_submissions(ROUND)}
        if all(not docs[i]["original"].get("pending") or docs[i].get("invalid") for i in ids):
            return docs
        assert server.process.poll() is None, server.tail()
        assert time.monotonic() < deadline, f"not decided in {DECIDED_SECONDS} s\n{server.tail()}"
        time.sleep(0.2)


def submit(seeded, user: str, seed: int, tmp_path: Path, **env: str) -> tuple[str, str]:
    """``numerai-assets submit`` as a participant's upload service runs it: (id, its output)."""
    path = tmp_path / f"{user}.csv"
    path.write_bytes(submission_csv(seeded.ids, model_probabilities(seeded.tournament, seed=seed)))
    done = subprocess.run(
        [str(BIN / "numerai-assets"), "submit", "--round", str(ROUND), "--user", user, str(path)],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return re.search(r"submitted ([0-9a-f]{24})", done.stdout).group(1), done.stdout


@pytest.mark.slow
def test_an_upload_asks_for_its_run_and_only_that_run_scores_it(dagster_dev, deployment, tmp_path):
    seeded = seed_round(deployment, ROUND)
    first = seeded.submit_demo(3)  # stored only: the sensor's first run materializes the round
    wait_decided(seeded, first.values(), dagster_dev)
    dagster_dev.idle()

    # A tick may claim an upload between its insert and its ask: the upload loses that race by
    # design (it leaves the submission to the tick's run). Upload again until one asks.
    for attempt in range(4):
        submission, output = submit(seeded, f"erin{attempt}", 11 + attempt, tmp_path)
        asked = QUEUED.search(output)
        if asked:
            break
        assert "already planned (the sensor claimed it first)" in output, output
    assert asked, output
    doc = wait_decided(seeded, [submission], dagster_dev)[submission]
    assert doc["original"]["run_id"] == asked.group(1)
    dagster_dev.idle()
    (record,) = dagster_dev.runs_of(submission)  # the sensor planned no second run for it
    run = record.dagster_run
    assert run.run_id == asked.group(1) and run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["dagster/run_key"].startswith(f"new-round-{ROUND}-{submission}-1-")
    assert run.tags["dagster/partition"] == str(ROUND) and run.job_name == "score_round"
    assert run.asset_selection == {dg.AssetKey("submission_scores")}

    # A burst: the first upload asks, the sensor batches the others behind it.
    settings = Settings.from_env()
    launches, burst = [], []
    for k in range(8):
        data = submission_csv(seeded.ids, model_probabilities(seeded.tournament, seed=40 + k))
        burst.append(seeded.submit(f"burst{k}", data))
        launches.append(launch_on_upload(settings, deployment.store, burst[-1]))
    docs = wait_decided(seeded, burst, dagster_dev)
    assert not any(docs[i].get("invalid") for i in burst)
    dagster_dev.idle()
    runs = {i: dagster_dev.runs_of(i) for i in burst}
    assert all(len(found) == 1 for found in runs.values()), runs  # each scored by one run
    asked_runs = {launch.run_id for launch in launches if launch.run_id}
    assert 1 <= len(asked_runs) <= 2, [launch.why_not for launch in launches]
    assert len({found[0].dagster_run.run_id for found in runs.values()}) < len(burst) - 2


@pytest.mark.slow
def test_without_the_webserver_or_with_the_switch_off_the_sensor_scores_the_upload(
    dagster_dev, deployment, tmp_path
):
    seeded = seed_round(deployment, ROUND)
    first = seeded.submit_demo(2)
    wait_decided(seeded, first.values(), dagster_dev)
    dagster_dev.idle()
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    unreachable, output = submit(seeded, "erin", 12, tmp_path, DAGSTER_WEBSERVER_URL=closed)
    assert f"the sensor's next tick plans its run: cannot connect to {closed}" in output
    assert time.monotonic() - started < 60  # no long wait for a webserver that is not there
    off, output = submit(seeded, "finn", 13, tmp_path, NUMERAI_LAUNCH_ON_UPLOAD="off")
    assert "NUMERAI_LAUNCH_ON_UPLOAD is off" in output
    docs = wait_decided(seeded, [unreachable, off], dagster_dev)
    dagster_dev.idle()
    for submission in (unreachable, off):
        assert not docs[submission].get("invalid")
        (record,) = dagster_dev.runs_of(submission)
        assert record.dagster_run.tags["dagster/run_key"].startswith("new-round-")


def test_the_plain_run_shape_names_what_the_definitions_define(local_env):
    """``batch/run_shape.py`` names the jobs, assets and run config without importing Dagster;
    the definitions are what it names, and its run config is valid for both jobs."""
    from numerai_assets.batch.run_shape import (
        IN_PROCESS_JOB,
        ROUND_DATA_ASSETS,
        SCORES_ASSET,
        SHARDED_JOB,
        batch_config,
    )
    from numerai_assets.definitions import build_definitions
    from numerai_assets.pipeline.jobs import ROUND_DATA_KEYS
    from numerai_assets.pipeline.scoring import submission_scores

    defs = build_definitions()
    assert [dg.AssetKey(name) for name in ROUND_DATA_ASSETS] == ROUND_DATA_KEYS
    assert submission_scores.key == dg.AssetKey(SCORES_ASSET)
    for name in (IN_PROCESS_JOB, SHARDED_JOB):
        job = defs.resolve_job_def(name)
        dg.validate_run_config(job, batch_config(["6b0d021063a242cf3a04c286"]))
        keys = set(job.asset_layer.executable_asset_keys)
        assert {*ROUND_DATA_KEYS, submission_scores.key} <= keys
