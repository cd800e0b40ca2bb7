"""What became of the runs the store's claims name, read from the Dagster instance.

Thin: Dagster's records are turned into plain facts here; what they mean for a claim is
:func:`numerai_assets.batch.planning.run_outcome` and :func:`~numerai_assets.batch.planning.
plan_tick`'s to decide.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

import dagster as dg

from numerai_assets.batch.planning import ALIVE_STATUSES, RunFacts, RunOutcome, run_outcome
from numerai_assets.batch.run_shape import RUN_KEY_TAG
from numerai_assets.store.documents import Claim

FAILURE_REASON_TAG = "dagster/failure_reason"
# The statuses of a run that has not ended, as Dagster's enum (one home: the planning's names).
ALIVE = [status for status in dg.DagsterRunStatus if status.value in ALIVE_STATUSES]
# Dagster wraps a step's exception in these; the participant's or the deployment's is inside.
_WRAPPERS = {
    "DagsterExecutionStepExecutionError",
    "DagsterExecutionLoadInputError",
    "RetryRequested",
    "RetryRequestedFromPolicy",
    "DagsterUserCodeExecutionError",
}


def claimed_runs(instance: dg.DagsterInstance, claims: Iterable[Claim]) -> dict[str, RunFacts]:
    """The facts of every run the claims name, by run key and by run id (two queries, plus one
    event read per failed run). Newest first when a key names several runs (retries)."""
    claims = list(claims)
    keys = sorted({c.run_key for c in claims if c.run_key})
    ids = sorted({c.run_id for c in claims if c.run_id})
    records = []
    if keys:
        records += instance.get_run_records(dg.RunsFilter(tags={RUN_KEY_TAG: keys}))
    if ids:
        records += instance.get_run_records(dg.RunsFilter(run_ids=ids))
    facts: dict[str, RunFacts] = {}
    for record in records:
        run = record.dagster_run
        if run.run_id in facts:
            continue
        found = run_facts(instance, record)
        facts[run.run_id] = found
        key = run.tags.get(RUN_KEY_TAG)
        if key and key not in facts:  # newest first: the first one seen is the latest run
            facts[key] = found
    return facts


def run_facts(instance: dg.DagsterInstance, record: dg.RunRecord) -> RunFacts:
    run = record.dagster_run
    reason = run.tags.get(FAILURE_REASON_TAG)
    exceptions: list[str] = []
    error_source = None
    message = ""
    if run.status == dg.DagsterRunStatus.FAILURE:
        exceptions, error_source, message = _failure(instance, run.run_id)
    outcome = run_outcome(
        run.status.value,
        started=record.start_time is not None,
        failure_reason=reason,
        exceptions=exceptions,
        error_source=error_source,
    )
    ended = (
        datetime.fromtimestamp(record.end_time, timezone.utc)
        if record.end_time is not None
        else record.update_timestamp.astimezone(timezone.utc)
    )
    why = run.status.value.lower() + (f" ({reason})" if reason else "")
    if exceptions:
        why += f": {next((e for e in exceptions if e not in _WRAPPERS), exceptions[0])}"
    elif message:
        why += f": {message[:200]}"
    return RunFacts(run.run_id, outcome, None if outcome is RunOutcome.ALIVE else ended, why=why)


def _failure(instance: dg.DagsterInstance, run_id: str) -> tuple[list[str], str | None, str]:
    """The class names of a failed run's error and its causes, the error's source and the
    failure's message: the first step failure, which the run's RUN_FAILURE carries (one event
    read). A run failed from outside carries none; for it, what was logged just before (its
    last few engine events, one more read): Dagster's machinery failing in its run worker (an
    engine event carrying an error: "likely a framework error", "Could not load job
    definition"), or its code server finding the run worker gone: exited on its own with a
    code (Dagster's machinery gave up, e.g. its storage was down) or killed by a signal (the
    operating system's out-of-memory killer, a crash, a kill). All but the last are the
    deployment's (source ``FRAMEWORK_ERROR``)."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.RUN_FAILURE, limit=1, ascending=False
    ).records
    if not records:
        return [], None, ""
    event = records[0].event_log_entry.dagster_event
    message = event.message or ""
    data = event.event_specific_data
    first = getattr(data, "first_step_failure_event", None)
    error, source = getattr(data, "error", None), None
    if first is not None:
        failure = first.step_failure_data
        error = failure.error
        source = failure.error_source.value if failure.error_source is not None else None
    elif error is None:
        error, source, message = _before_failure(instance, run_id, message)
    names = []
    while error is not None and len(names) < 20:
        names.append(error.cls_name)
        error = error.cause
    return names, source, message


# The code server's words for a run worker that ended without finishing its run
# (``dagster._utils.get_run_crash_explanation``): on its own, or killed by a signal.
_EXITED = "unexpectedly exited with code"
_KILLED = "was terminated by signal"


def _before_failure(instance: dg.DagsterInstance, run_id: str, message: str):
    """For a run failed from outside: (error, source, message) from its last engine events."""
    engine_events = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=5, ascending=False
    ).records
    for record in engine_events:
        engine_event = record.event_log_entry.dagster_event
        data = engine_event.event_specific_data
        if getattr(data, "error", None) is not None:
            return data.error, "FRAMEWORK_ERROR", engine_event.message or message
        said = engine_event.message or ""
        if _EXITED in said:
            return None, "FRAMEWORK_ERROR", said
        if _KILLED in said:
            return None, None, said
    return None, None, message


def last_event_at(instance: dg.DagsterInstance, run_id: str) -> datetime | None:
    """When ``run_id`` last logged anything (one event read), or None if it never did."""
    records = instance.get_records_for_run(run_id, limit=1, ascending=False).records
    if not records:
        return None
    return datetime.fromtimestamp(records[0].event_log_entry.timestamp, timezone.utc)
