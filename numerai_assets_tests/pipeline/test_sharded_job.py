"""``score_round_sharded`` on the local default executor (multiprocess): phase 1 in several
shards, each in a process of its own, deciding what ``score_round`` decides in one process."""

from __future__ import annotations

import pytest

from numerai_assets.cli.context import Deployment
from numerai_assets_tests.pipeline.conftest import seed_round
from numerai_assets_tests.pipeline.sharded import (
    PAIR_STEP,
    ROUND,
    SHARDED_ENV,
    SHARDS,
    SUBMISSIONS,
    dagster_home,
    decisions,
    in_process_decisions,
    run_environment,
    run_sharded,
)


@pytest.mark.slow
def test_sharded_job_on_the_multiprocess_executor(local_env, tmp_path, monkeypatch):
    for name, value in SHARDED_ENV.items():
        monkeypatch.setenv(name, value)
    reference = in_process_decisions(tmp_path / "reference", monkeypatch)

    monkeypatch.setenv("NUMERAI_ASSETS_HOME", str(local_env))
    monkeypatch.setenv("NUMERAI_EXECUTOR", "multiprocess")
    monkeypatch.setenv("NUMERAI_IN_PROCESS_MAX_SUBMISSIONS", "0")  # every batch: the sharded job
    deployment = Deployment.from_env()
    seed_round(deployment, ROUND).submit_demo(SUBMISSIONS)
    home = tmp_path / "dagster_home"
    with dagster_home(home) as instance:
        run = run_sharded(instance, home, tmp_path / "run.log", run_environment(home), timeout=150)
        pids = run.step_pids(PAIR_STEP)
        shard_logs = [
            entry.user_message
            for entry in instance.all_logs(run.run_id)
            if entry.dagster_event is None and (entry.step_key or "").startswith(PAIR_STEP)
        ]

    assert decisions(deployment) == reference
    assert len(pids) == SHARDS  # phase 1 really was cut
    # Each shard in a process of its own, none of them the run's.
    assert len(set(pids.values())) == SHARDS and run.pid not in pids.values()
    # Shards run side by side, one per core: each keeps to NUMERAI_SHARD_THREADS (1) threads.
    done = [m for m in shard_logs if "KS counts computed exactly" in m]
    assert len(done) == SHARDS and all(m.endswith("(1 thread)") for m in done), shard_logs
    print(f"score_round_sharded (multiprocess): {run.seconds:.1f} s")
