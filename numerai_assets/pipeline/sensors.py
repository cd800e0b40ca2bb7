"""The ``new_submissions`` sensor: turns the submissions database into scoring runs per round.

Thin wiring: each tick checks the deployment's configuration (a setting that cannot work fails
the tick, naming the variable, before anything is claimed or marked), reads the state (unclaimed
work, claims and what became of their runs, the instance's rounds), lets
:func:`numerai_assets.batch.planning.plan_tick` decide, then carries the plan out: sets aside
malformed documents and submissions it gives up on, claims each run's submissions in the store
(so no later tick plans them again), and returns the run requests and new round partitions in
one ``SensorResult``. The cursor holds nothing: the queue is the store's.
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

import dagster as dg

from numerai_assets.batch.planning import PlannedRun, TickState, plan_tick
from numerai_assets.batch.run_shape import run_shape
from numerai_assets.files import dataset_key
from numerai_assets.pipeline.jobs import JOBS, ROUND_DATA_KEYS
from numerai_assets.pipeline.partitions import rounds
from numerai_assets.pipeline.resources import FilesResource, StoreResource
from numerai_assets.pipeline.round_lease import orphaned
from numerai_assets.pipeline.runs import claimed_runs, last_event_at
from numerai_assets.settings import Settings
from numerai_assets.store import SubmissionStore
from numerai_assets.store.documents import claim_of

_SHOWN = reprlib.Repr()  # a foreign _id in a log line: repr, long ones cut
_SHOWN.maxstring = _SHOWN.maxother = 64


def _round_has_data(instance: dg.DagsterInstance, round_key: str) -> bool:
    """Materialized, or being materialized by a queued or running run."""
    status = instance.get_status_by_partition(
        ROUND_DATA_KEYS[-1], partition_keys=[round_key], partitions_def=rounds
    )
    return bool(status) and status.get(round_key) in (
        dg.AssetPartitionStatus.MATERIALIZED,
        dg.AssetPartitionStatus.IN_PROGRESS,
    )


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


def fail_orphaned_runs(
    instance: dg.DagsterInstance,
    submissions: SubmissionStore,
    log: dg.DagsterLogManager,
    lease_length: timedelta,
) -> None:
    """Report failed every started scoring run whose process is gone (the daemon was killed
    with it) though Dagster still shows it started, which would also keep its round's queue
    blocked: it stopped renewing its round's lease, or it never took it and has logged nothing
    for a lease's length (:func:`orphaned`). Recovery then plans its submissions again."""
    now = datetime.now(timezone.utc)
    started = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    for record in started:
        run = record.dagster_run
        if run.job_name not in JOBS:
            continue
        round_key = run.tags.get("dagster/partition", "")
        if not round_key.isdigit():
            continue
        lease = submissions.lease_of(int(round_key))
        held = (lease or {}).get("owner") == run.run_id
        last_event = None if held else last_event_at(instance, run.run_id)
        why = orphaned(lease, run.run_id, now, last_event=last_event, lease_length=lease_length)
        if why is not None:
            message = f"{why}: its process is gone"
            log.warning(f"run {run.run_id} (round {round_key}): {message}; reported failed")
            instance.report_run_failed(run, message)


def _run_request(run: PlannedRun, settings: Settings) -> dg.RunRequest:
    shape = run_shape(run, settings)
    return dg.RunRequest(
        job_name=shape.job_name,
        run_key=run.run_key,
        partition_key=str(run.round),
        run_config=dg.RunConfig(**shape.run_config),
        tags=shape.tags,
        asset_selection=[dg.AssetKey(name) for name in shape.asset_names],
    )


def new_submissions_tick(
    context: dg.SensorEvaluationContext, store: StoreResource, files: FilesResource
) -> dg.SensorResult | dg.SkipReason:
    """One tick (see the module docstring)."""
    settings = Settings.from_env()
    settings.policy()  # a policy that cannot work fails the tick, before anything is claimed
    submissions = store.get_store()
    now = datetime.now(timezone.utc)
    instance = context.instance

    work, set_aside = submissions.set_aside_malformed(
        [
            *submissions.mistyped_submissions(),
            *submissions.unclaimed(limit=settings.max_submissions_per_tick),
        ],
        at=now,
    )
    fail_orphaned_runs(
        instance, submissions, context.log, timedelta(seconds=settings.round_lease_seconds)
    )
    claimed, more = submissions.set_aside_malformed(submissions.claimed(), at=now)
    claims = [claim for claim in map(claim_of, claimed) if claim is not None]
    known = {int(r) for r in instance.get_dynamic_partitions(rounds.name) if r.isdigit()}
    rounds_of_work = {d["competition_id"] for d in [*work, *claimed]}
    plan = plan_tick(
        TickState(
            work=work,
            claimed=claimed,
            runs=claimed_runs(instance, claims),
            known_rounds=known,
            rounds_with_data={r for r in rounds_of_work if _round_has_data(instance, str(r))},
            missing_datasets=_missing_datasets(files, {d["competition_id"] for d in work} - known),
            now=now,
        ),
        batch_size=settings.batch_size,
        max_attempts=settings.max_scoring_attempts,
        retry_seconds=settings.pending_retry_seconds,
    )
    for doc, reason in plan.invalid:
        submissions.mark_invalid(doc["_id"], reason=reason, at=now, run_id=None)
        submissions.answer_request(doc)  # a request it carried is answered: refused
    # A document in both reads is compared as the planner took it: as work (read first). Read
    # again as claimed, it was claimed since (an upload asking for its run between the reads),
    # and comparing with that claim would take it over: two runs for one submission.
    by_id: Mapping = {str(d["_id"]): d for d in [*claimed, *work]}
    runs: list[PlannedRun] = []
    data_due: set[int] = set()  # the round's data, planned with a run that took nothing
    for run in plan.runs:
        # Only what is still as this tick read it: an upload may have claimed its own since.
        taken = submissions.claim([by_id[i] for i in run.submission_ids], run.claim(now))
        if not taken:
            data_due.update([run.round] if run.with_data else [])
            continue
        with_data = run.with_data or run.round in data_due
        data_due.discard(run.round)
        ids = [str(d["_id"]) for d in taken]
        runs.append(dataclasses.replace(run, submission_ids=ids, with_data=with_data))

    for raw_id, reason in [*set_aside, *more]:
        context.log.warning(f"not scored: {_SHOWN.repr(raw_id)}: {reason}")
    for doc, reason in plan.invalid:
        context.log.warning(f"not scored: {doc['_id']}: {reason}")
    if not runs:
        waiting = f"; {plan.waiting} waiting to be retried" if plan.waiting else ""
        held = f"; {plan.held} held for the run after the queued one" if plan.held else ""
        return dg.SkipReason(f"no new submissions{waiting}{held}")
    kinds = [run.kind for run in runs]
    context.log.info(
        f"{len(runs)} runs ("
        + ", ".join(f"{kinds.count(k)} {k}" for k in dict.fromkeys(kinds))
        + ")"
        + (f"; new rounds {', '.join(map(str, plan.new_rounds))}" if plan.new_rounds else "")
    )
    return dg.SensorResult(
        run_requests=[_run_request(run, settings) for run in runs],
        dynamic_partitions_requests=(
            [rounds.build_add_request([str(r) for r in plan.new_rounds])] if plan.new_rounds else []
        ),
    )


def build_sensor(
    settings: Settings, jobs: list[dg.UnresolvedAssetJobDefinition]
) -> dg.SensorDefinition:
    """The sensor, polling every ``NUMERAI_SENSOR_INTERVAL_SECONDS`` (read when the definitions
    are built, the only moment Dagster takes it), requesting runs of ``jobs``."""

    @dg.sensor(
        name="new_submissions",
        jobs=jobs,
        minimum_interval_seconds=settings.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Polls the submissions database and launches round-partitioned scoring runs.",
    )
    def new_submissions(
        context: dg.SensorEvaluationContext, store: StoreResource, files: FilesResource
    ) -> dg.SensorResult | dg.SkipReason:
        return new_submissions_tick(context, store, files)

    return new_submissions
