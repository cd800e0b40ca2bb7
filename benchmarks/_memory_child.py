"""The processes the memory benchmark measures: ``python -m benchmarks._memory_child MODE``.

Run with the benchmark's ``NUMERAI_ASSETS_HOME`` and ``DAGSTER_HOME`` in the environment:

- ``setup``: add the round's partition and materialize its data and clusters (one run);
- ``fixed``: import the package and load the round's data and clusters through the IO manager,
  what every scoring run pays before it scores anything;
- ``score ID``: one scoring run of submission ``ID`` (``submission_scores`` alone, the round's
  assets already materialized), ``execute_in_process`` against the ``DAGSTER_HOME`` instance.

Each writes a line of JSON (run id, success) to the file named by ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import dagster as dg

from numerai_assets.definitions import build_definitions
from numerai_assets.pipeline.jobs import ROUND_ASSETS, batch_run_config
from numerai_assets.pipeline.partitions import rounds
from numerai_assets.pipeline.scoring import submission_scores


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("setup", "fixed", "score"))
    parser.add_argument("submission_id", nargs="?")
    parser.add_argument("--round", default="1")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    defs = build_definitions()
    job = defs.resolve_job_def("score_round")
    report: dict = {"mode": args.mode}
    with dg.DagsterInstance.get() as instance:
        if args.mode == "fixed":
            loaded = [
                defs.load_asset_value(a.key, partition_key=args.round, instance=instance)
                for a in ROUND_ASSETS
            ]
            report["success"] = all(value is not None for value in loaded)
        else:
            if args.mode == "setup":
                instance.add_dynamic_partitions(rounds.name, [args.round])
                selection, run_config = [a.key for a in ROUND_ASSETS], {}
            else:
                selection = [submission_scores.key]
                run_config = batch_run_config([args.submission_id])
            result = job.execute_in_process(
                run_config=run_config,
                instance=instance,
                partition_key=args.round,
                asset_selection=selection,
                tags={"round": args.round, "reason": "benchmark"},
                raise_on_error=False,
            )
            report.update(run_id=result.run_id, success=result.success)
    with args.out.open("a") as out:
        out.write(json.dumps(report) + "\n")
    return 0 if report["success"] else 1


if __name__ == "__main__":
    sys.exit(main())
