"""Runs one scoring run in its own process and dies in it on purpose (the fault tests' harness).

``python -m numerai_assets_tests.faults.crash_run MODE MARKER ROUND RUN_CONFIG_JSON`` with
``DAGSTER_HOME`` naming the test's instance. Modes:

- ``hang-before-write``: compute everything, then signal ``MARKER`` and wait to be SIGKILLed;
- ``exit-after-writes=N``: die (no cleanup, like a killed process) right after N submission writes;
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


def main() -> None:
    mode, marker, round_key = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    run_config = json.loads(sys.argv[4])
    if mode == "hang-before-write":

        def hang(*args, **kwargs):
            marker.write_text("computed")
            time.sleep(300)

        scoring_ops.write_results = hang
    elif mode.startswith("exit-after-writes="):
        limit = int(mode.split("=")[1])
        original = SubmissionStore.write_scores
        calls = []

        def write_then_die(self, *args, **kwargs):
            original(self, *args, **kwargs)
            calls.append(1)
            if len(calls) == limit:
                marker.write_text("dying")
                os._exit(9)

        SubmissionStore.write_scores = write_then_die
    elif mode.startswith("exit-before-leaderboard="):
        limit = int(mode.split("=")[1])
        original_reconcile = SubmissionStore.reconcile_leaderboard
        calls = []

        def die_before_reconcile(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == limit:
                marker.write_text("dying")
                os._exit(9)
            return original_reconcile(self, *args, **kwargs)

        SubmissionStore.reconcile_leaderboard = die_before_reconcile
    instance = dg.DagsterInstance.get()
    build_definitions().resolve_job_def("score_round").execute_in_process(
        run_config=run_config, instance=instance, partition_key=round_key
    )


if __name__ == "__main__":
    main()
