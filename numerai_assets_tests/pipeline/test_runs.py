"""``run_facts`` on runs failed from outside, as Dagster records them: what its run worker or
its code server logged before the failure decides whether the run was lost or died."""

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData
from dagster._core.test_utils import create_run_for_test
from dagster._utils.error import SerializableErrorInfo

from numerai_assets.batch.planning import RunOutcome
from numerai_assets.pipeline.runs import run_facts

EXITED = "[DagsterApiServer] Run execution process for {} unexpectedly exited with code 0."
KILLED = "[DagsterApiServer] Run execution process for {} was terminated by signal 9 (SIGKILL)."
STORAGE_DOWN = SerializableErrorInfo(
    "dagster_postgres.utils.DagsterPostgresException: too many retries for DB connection",
    [],
    "DagsterPostgresException",
)


def failed_from_outside(instance, before) -> dg.RunRecord:
    run = create_run_for_test(instance, job_name="score_round")
    instance.report_dagster_event(  # started: Dagster records a start time
        DagsterEvent(DagsterEventType.RUN_START.value, job_name="score_round"), run.run_id
    )
    before(instance, run)
    instance.report_run_failed(run)
    (record,) = instance.get_run_records(dg.RunsFilter(run_ids=[run.run_id]))
    return record


@pytest.mark.parametrize(
    ("before", "outcome", "why"),
    [
        (  # its run worker's framework error: Dagster's storage was down
            lambda instance, run: instance.report_engine_event(
                "An exception was thrown during execution that is likely a framework error",
                run,
                EngineEventData.engine_error(STORAGE_DOWN),
            ),
            RunOutcome.LOST,
            "DagsterPostgresException",
        ),
        (  # its run worker exited on its own without finishing the run
            lambda instance, run: instance.report_engine_event(EXITED.format(run.run_id), run),
            RunOutcome.LOST,
            "exited with code 0",
        ),
        (  # killed (out of memory, kill -9): it may be the file's doing
            lambda instance, run: instance.report_engine_event(KILLED.format(run.run_id), run),
            RunOutcome.DIED,
            "signal 9",
        ),
        (lambda instance, run: None, RunOutcome.DIED, "failed from outside"),  # nothing said
    ],
)
def test_a_run_failed_from_outside_is_judged_by_what_was_logged_before(before, outcome, why):
    with dg.instance_for_test() as instance:
        facts = run_facts(instance, failed_from_outside(instance, before))
    assert facts.outcome is outcome
    assert why in facts.why
