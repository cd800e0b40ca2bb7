"""What a planned run is asked for as, in plain data, whoever asks: the sensor (a Dagster
``RunRequest``, :mod:`numerai_assets.pipeline.sensors`) or an upload (the webserver's GraphQL
``launchRun``, :mod:`numerai_assets.pipeline.launch`). No Dagster import: ``numerai-assets
submit`` asks for its run without loading Dagster (0.5 s of a 3-s budget).

The names here are the Dagster layer's: the jobs (:mod:`numerai_assets.pipeline.jobs` defines
them under these names), the assets' keys, the scoring graph's op path in run config, the tags
Dagster reads. A test checks them against the definitions.
"""

from __future__ import annotations

from dataclasses import dataclass

from numerai_assets.batch.planning import PlannedRun
from numerai_assets.batch.select import check_batch_ids
from numerai_assets.settings import Settings

IN_PROCESS_JOB = "score_round"
SHARDED_JOB = "score_round_sharded"
ROUND_DATA_ASSETS = ("competition_data", "kmeans_clusters")  # the round's data, then clusters
SCORES_ASSET = "submission_scores"
RUN_KEY_TAG = "dagster/run_key"
PARTITION_TAG = "dagster/partition"
# Runs that catch up go ahead of the round's queued new runs (the queue takes higher priorities
# first, in order within one): a run materializing the round's data, which the queued runs load
# (when the run planned to materialize it died, its retry carries the data; behind them, each
# queued run would fail in turn on data that is not there), and a retry, whose submissions come
# before the queued ones (run after them, it would make the round score them again).
CATCHING_UP = {"dagster/priority": "1"}


@dataclass(frozen=True)
class RunShape:
    """A run as asked for: its job, run config (a plain dict), tags (without the partition and
    run key, which each asker passes its own way) and asset names (one-part keys)."""

    job_name: str
    run_config: dict
    tags: dict[str, str]
    asset_names: list[str]


def job_for(batch_size: int, settings: Settings) -> str:
    """The job that scores a batch of ``batch_size`` submissions (0: the whole round): small
    batches in one process (fastest start), larger ones on the deployment's executor."""
    if 0 < batch_size <= settings.in_process_max_submissions:
        return IN_PROCESS_JOB
    return SHARDED_JOB


def batch_config(submission_ids: list[str]) -> dict:
    """Run config that hands ``submission_ids`` to the scoring graph's first op (none: the whole
    round, a rescore). Raises :class:`ValueError` for ids the op would refuse
    (:func:`~numerai_assets.batch.check_batch_ids`)."""
    checked = check_batch_ids(submission_ids)
    config = {"config": {"submission_ids": checked}}
    return {"ops": {SCORES_ASSET: {"ops": {"prepare_submissions": config}}}}


def run_shape(run: PlannedRun, settings: Settings) -> RunShape:
    """The job, config, tags and assets of ``run``: its batch's scores, after the round's data
    and clusters when the plan says the round has none."""
    return RunShape(
        job_name=job_for(len(run.submission_ids), settings),
        run_config=batch_config(run.submission_ids),
        tags={
            "round": str(run.round),
            "submissions": str(len(run.submission_ids)),
            "reason": run.kind,
            **(CATCHING_UP if run.with_data or run.kind == "retry" else {}),
        },
        asset_names=[*(ROUND_DATA_ASSETS if run.with_data else ()), SCORES_ASSET],
    )
