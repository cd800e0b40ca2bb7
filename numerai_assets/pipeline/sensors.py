"""The ``new_submissions`` sensor: turns the submissions database into scoring runs per round.

Thin wiring: each tick reads the state (unclaimed work, stuck claims, the instance's rounds and
runs), lets :func:`numerai_assets.batch.planning.plan_tick` decide, then carries the plan out:
sets aside malformed documents and submissions it gives up on, claims each run's submissions in
the store (so no later tick plans them again), and returns the run requests and new round
partitions in one ``SensorResult``. The cursor holds nothing: the queue is the store's.
"""

import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import dagster as dg

from numerai_assets.batch.planning import PlannedRun, TickState, plan_tick
from numerai_assets.files import dataset_key
from numerai_assets.pipeline.jobs import ROUND_ASSETS, batch_run_config, score_round
from numerai_assets.pipeline.partitions import rounds
from numerai_assets.pipeline.resources import FilesResource, StoreResource
from numerai_assets.pipeline.scoring import submission_scores
from numerai_assets.settings import Settings

_SHOWN = reprlib.Repr()  # a foreign _id in a log line: repr, long ones cut
_SHOWN.maxstring = _SHOWN.maxother = 64
ROUND_DATA_KEYS = [a.key for a in ROUND_ASSETS]
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def interval_seconds() -> int:
    return Settings.from_env().sensor_interval_seconds


@dataclass(frozen=True)
class RecoveryPolicy:
    """When a pending submission counts as stuck, and how often it is tried again."""

    pending_seconds: int
    max_attempts: int
    stale_run_seconds: int  # a queued/started run older than this is presumed dead

    @classmethod
    def from_env(cls) -> "RecoveryPolicy":
        settings = Settings.from_env()
        return cls(
            pending_seconds=settings.pending_retry_seconds,
            max_attempts=settings.max_scoring_attempts,
            stale_run_seconds=settings.run_stale_seconds,
        )


def _round_has_data(instance: dg.DagsterInstance, round_key: str) -> bool:
    """Materialized, or being materialized by a queued or running run."""
    status = instance.get_status_by_partition(
        ROUND_DATA_KEYS[-1], partition_keys=[round_key], partitions_def=rounds
    )
    return bool(status) and status.get(round_key) in (
        dg.AssetPartitionStatus.MATERIALIZED,
        dg.AssetPartitionStatus.IN_PROGRESS,
    )


def _rounds_in_flight(instance: dg.DagsterInstance, stale_after: timedelta) -> set[int]:
    now = datetime.now(timezone.utc)
    records = instance.get_run_records(
        dg.RunsFilter(job_name=score_round.name, statuses=IN_FLIGHT), limit=1000
    )
    keys = {
        record.dagster_run.tags.get("dagster/partition", "")
        for record in records
        if now - record.create_timestamp.astimezone(timezone.utc) < stale_after
    }
    return {int(key) for key in keys if key.isdigit()}


def _missing_datasets(files: FilesResource, rounds_to_check: set[int]) -> dict[int, str]:
    buckets = files.get_buckets()
    missing = {}
    for round in sorted(rounds_to_check):
        key = dataset_key(files.dataset_key_template, round)
        if not buckets.exists(files.dataset_bucket, key):
            missing[round] = (
                f"round {round} has no dataset ({buckets.describe(files.dataset_bucket, key)} "
                "does not exist)"
            )
    return missing


def _run_request(run: PlannedRun) -> dg.RunRequest:
    round_key = str(run.round)
    return dg.RunRequest(
        run_key=run.run_key,
        partition_key=round_key,
        run_config=batch_run_config(run.submission_ids),
        tags={"round": round_key, "submissions": str(len(run.submission_ids)), "reason": run.kind},
        asset_selection=[*(ROUND_DATA_KEYS if run.with_data else []), submission_scores.key],
    )


@dg.sensor(
    job=score_round,
    minimum_interval_seconds=interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Polls the submissions database and launches round-partitioned scoring runs.",
)
def new_submissions(
    context: dg.SensorEvaluationContext, store: StoreResource, files: FilesResource
) -> dg.SensorResult | dg.SkipReason:
    submissions = store.get_store()
    settings = Settings.from_env()
    policy = RecoveryPolicy.from_env()
    now = datetime.now(timezone.utc)
    instance = context.instance

    work, set_aside = submissions.set_aside_malformed(
        [
            *submissions.mistyped_submissions(),
            *submissions.unclaimed(limit=settings.max_submissions_per_tick),
        ],
        at=now,
    )
    claimed_before = now - timedelta(seconds=policy.pending_seconds)
    stuck, more = submissions.set_aside_malformed(
        submissions.stuck(claimed_before=claimed_before), at=now
    )
    known = {int(r) for r in instance.get_dynamic_partitions(rounds.name) if r.isdigit()}
    rounds_of_work = {d["competition_id"] for d in [*work, *stuck]}
    plan = plan_tick(
        TickState(
            work=work,
            stuck=stuck,
            known_rounds=known,
            rounds_with_data={r for r in rounds_of_work if _round_has_data(instance, str(r))},
            rounds_in_flight=_rounds_in_flight(
                instance, timedelta(seconds=policy.stale_run_seconds)
            ),
            missing_datasets=_missing_datasets(files, {d["competition_id"] for d in work} - known),
            now=now,
        ),
        batch_size=settings.batch_size,
        max_attempts=policy.max_attempts,
        give_up_reason=(
            f"could not be scored after {policy.max_attempts} attempts (the scoring runs "
            "failed; see the Dagster UI); an operator can rescore it"
        ),
    )
    for doc, reason in plan.invalid:
        submissions.mark_invalid(doc["_id"], reason=reason, at=now, run_id=None)
    by_id: Mapping = {str(d["_id"]): d for d in [*work, *stuck]}
    for run in plan.runs:
        submissions.claim(
            [by_id[i] for i in run.submission_ids], run_key=run.run_key, at=now, attempt=run.attempt
        )

    for raw_id, reason in [*set_aside, *more]:
        context.log.warning(f"not scored: {_SHOWN.repr(raw_id)}: {reason}")
    for doc, reason in plan.invalid:
        context.log.warning(f"not scored: {doc['_id']}: {reason}")
    if not plan.runs:
        return dg.SkipReason("no new submissions")
    kinds = [run.kind for run in plan.runs]
    context.log.info(
        f"{len(plan.runs)} runs ("
        + ", ".join(f"{kinds.count(k)} {k}" for k in dict.fromkeys(kinds))
        + ")"
        + (f"; new rounds {', '.join(map(str, plan.new_rounds))}" if plan.new_rounds else "")
    )
    return dg.SensorResult(
        run_requests=[_run_request(run) for run in plan.runs],
        dynamic_partitions_requests=(
            [rounds.build_add_request([str(r) for r in plan.new_rounds])] if plan.new_rounds else []
        ),
    )
