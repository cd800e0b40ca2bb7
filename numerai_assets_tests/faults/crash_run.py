"""Runs one scoring run in its own process and dies in it on purpose (the fault tests' harness).

``python -m numerai_assets_tests.faults.crash_run MODE MARKER ROUND RUN_CONFIG_JSON RUN_KEY`` with
``DAGSTER_HOME`` naming the test's instance. Modes:

- ``hang-before-write``: compute everything, then signal ``MARKER`` and wait to be SIGKILLed;
- ``hang-before-lease``: signal ``MARKER`` as the first step is about to take the round's lease,
  and wait to be SIGKILLed (the run dies started, holding nothing);
- ``exit-after-writes=N``: die (no cleanup, like a killed process) once N of the scores are written;
- ``exit-before-leaderboard=N``: die at the Nth leaderboard update of the run (the 2nd is the one
  after every score is written), leaving the submissions written and the leaderboard behind.
"""

import json
import os
import sys
import time
from pathlib import Path

import dagster as dg

import numerai_assets.pipeline.scoring as scoring_ops
from numerai_assets.definitions import build_definitions
from numerai_assets.store import SubmissionStore


def die_on_call(name: str, limit: int, marker: Path, *, before: bool) -> None:
    """Make the ``limit``-th call of ``SubmissionStore.<name>`` end the process, before or after
    the real call, as a crash would (no cleanup)."""
    original = getattr(SubmissionStore, name)
    calls = []

    def dying(self, *args, **kwargs):
        calls.append(1)
        if before and len(calls) == limit:
            marker.write_text("dying")
            os._exit(9)
        result = original(self, *args, **kwargs)
        if not before and len(calls) == limit:
            marker.write_text("dying")
            os._exit(9)
        return result

    setattr(SubmissionStore, name, dying)


def die_part_way_through_writing(writes: int, marker: Path) -> None:
    """Make the run's writing of the scores (its second ``update_many``: the first pends the
    batch) apply only its first ``writes`` updates, then end the process as a crash would."""
    original = SubmissionStore.update_many
    calls = []

    def dying(self, updates):
        calls.append(1)
        if len(calls) < 2:
            return original(self, updates)
        original(self, updates[:writes])
        marker.write_text("dying")
        os._exit(9)

    SubmissionStore.update_many = dying


def main() -> None:
    mode, marker, round_key = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    run_config, run_key = json.loads(sys.argv[4]), sys.argv[5]
    if mode == "hang-before-write":

        def hang(*args, **kwargs):
            marker.write_text("computed")
            time.sleep(300)

        scoring_ops.write_results = hang
    elif mode == "hang-before-lease":

        def hang_at_lease(*args, **kwargs):
            marker.write_text("started")
            time.sleep(300)

        SubmissionStore.acquire_round = hang_at_lease
    elif mode.startswith("exit-after-writes="):
        die_part_way_through_writing(int(mode.split("=")[1]), marker)
    elif mode.startswith("exit-before-leaderboard="):
        die_on_call("reconcile_leaderboard", int(mode.split("=")[1]), marker, before=True)
    instance = dg.DagsterInstance.get()
    build_definitions().resolve_job_def("score_round").execute_in_process(
        run_config=run_config,
        instance=instance,
        partition_key=round_key,
        tags={"dagster/run_key": run_key},  # as the daemon tags a sensor's run
    )


if __name__ == "__main__":
    main()
