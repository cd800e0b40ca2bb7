"""``score_round_sharded`` run for real: its steps on the deployment's executor, outside pytest.

A round is seeded twice, in two homes: one is scored by ``score_round`` in process (the
reference), the other by ``score_round_sharded`` as the sensor requests it, in a run process of
its own (``dagster job execute``, as a run worker does it: the job loaded from the code location
in that process's environment, so ``NUMERAI_EXECUTOR`` is honoured there; ``execute_in_process``
would ignore the executor). The instance is persistent (SQLite under a ``DAGSTER_HOME`` made here,
created before any other process opens it), so the steps' processes and workers share it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

from numerai_assets.cli.context import Deployment
from numerai_assets.pipeline.jobs import DEFINITIONS_MODULE, IN_PROCESS_JOB, SHARDED_JOB
from numerai_assets_tests.conftest import REPO
from numerai_assets_tests.daemon import add_partitions, evaluate_sensor, launch
from numerai_assets_tests.pipeline.conftest import seed_round

ROUND = 7
SUBMISSIONS = 12  # the demo's eight (every outcome) and four more originals
SHARDS = 4
# Phase 1 in SHARDS shards of a dozen submissions' pairs (a few dozen pairs, not 200,000).
SHARDED_ENV = {"NUMERAI_PAIR_SHARDS": str(SHARDS), "NUMERAI_MIN_PAIRS_PER_SHARD": "1"}
PAIR_STEP = "submission_scores.pair_statistics"


def decisions(deployment: Deployment) -> dict[str, dict]:
    """Each user's submission as the run left it, but for when and by which run: its
    concordance, consistency, originality (matches and nearest by user: two seedings of a
    round give their submissions different ids) or why it is invalid."""
    docs = deployment.store.round_submissions(ROUND)
    users = {str(doc["_id"]): doc["username"] for doc in docs}

    def named(value: object) -> object:
        if isinstance(value, dict):
            return {
                k: named(v)
                for k, v in value.items()
                if k != "run_id" and not isinstance(v, datetime)
            }
        if isinstance(value, list):
            return [named(v) for v in value]
        return users.get(str(value), value) if not isinstance(value, (int, float)) else value

    fields = ("concordant", "original", "consistency", "invalid")
    return {doc["username"]: {k: named(doc.get(k)) for k in fields} for doc in docs}


def in_process_decisions(home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple]:
    """The round scored by ``score_round`` in this process, in a home of its own."""
    monkeypatch.setenv("NUMERAI_ASSETS_HOME", str(home))
    seeded = seed_round(Deployment.from_env(), ROUND)
    seeded.submit_demo(SUBMISSIONS)
    started = time.monotonic()
    with dg.instance_for_test() as instance:
        results = launch(instance, evaluate_sensor(instance))
    print(f"score_round (in process): {time.monotonic() - started:.1f} s")
    assert [r.job_def.name for r in results] == [IN_PROCESS_JOB]
    assert all(r.success for r in results)
    return decisions(seeded.deployment)


def dagster_home(folder: Path) -> dg.DagsterInstance:
    """A persistent instance in ``folder``, its SQLite schema created now (two processes
    creating it at once race on it)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return dg.DagsterInstance.from_config(str(folder))


def run_environment(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment (the test's settings) for the run and its workers: the
    instance, and this checkout's code ahead of any installed copy."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": path, **extra}


@dataclass
class ShardedRun:
    run_id: str
    pid: int  # the run's process
    seconds: float
    instance: dg.DagsterInstance

    def events(self, kind: dg.DagsterEventType) -> list[dg.EventLogEntry]:
        return list(self.instance.all_logs(self.run_id, of_type=kind))

    def step_pids(self, step_prefix: str) -> dict[str, int]:
        """The process that ran each step whose key starts with ``step_prefix``."""
        return {
            e.step_key: e.dagster_event.pid
            for e in self.events(dg.DagsterEventType.STEP_START)
            if e.step_key and e.step_key.startswith(step_prefix)
        }


def run_sharded(
    instance: dg.DagsterInstance, home: Path, log: Path, env: dict[str, str], timeout: float
) -> ShardedRun:
    """The sensor's request for the seeded round, run as ``score_round_sharded`` in a process
    of its own with ``env``; fails the test (with the run's output) unless it succeeds."""
    tick = evaluate_sensor(instance)
    add_partitions(instance, tick)
    (request,) = tick.run_requests
    assert request.job_name == SHARDED_JOB
    config = home.parent / "run_config.json"
    config.write_text(json.dumps(request.run_config))
    tags = {
        **request.tags,
        "dagster/partition": request.partition_key,
        "dagster/run_key": request.run_key,
    }
    command = [
        str(Path(sys.executable).parent / "dagster"),
        *("job", "execute", "-m", DEFINITIONS_MODULE, "-j", SHARDED_JOB),
        *("-c", str(config), "--tags", json.dumps(tags)),
    ]
    started = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
            pytest.fail(f"the run took over {timeout} s:\n{log.read_text()[-4000:]}")
        finally:
            if process.poll() is None:
                os.killpg(process.pid, 9)
    seconds = time.monotonic() - started
    (record,) = instance.get_run_records(dg.RunsFilter(tags={"dagster/run_key": request.run_key}))
    status = record.dagster_run.status
    assert status == dg.DagsterRunStatus.SUCCESS, f"{status}:\n{log.read_text()[-4000:]}"
    return ShardedRun(record.dagster_run.run_id, process.pid, seconds, instance)
