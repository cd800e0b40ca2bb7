"""``plan_tick`` and ``run_outcome`` as plain functions: new work, and what recovery makes of each
way a run can end. Only a run that has ended counts as dead; a fault of the deployment never
costs a submission an attempt; a dead run is followed by at most one retry run."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from bson import ObjectId

from numerai_assets.batch.planning import (
    RunFacts,
    RunOutcome,
    TickState,
    plan_tick,
    plan_upload,
    retry_delay,
    run_outcome,
)
from numerai_assets.store.documents import Claim

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)
RETRY = 60


def doc(user: str, seconds: int, *, round: int = 7, claim: Claim | None = None, **extra) -> dict:
    created = NOW - timedelta(hours=1) + timedelta(seconds=seconds)
    d = {
        "_id": ObjectId.from_datetime(created),
        "username": user,
        "competition_id": round,
        "created": created,
        "original": {"pending": True, "value": None},
        **extra,
    }
    if claim is not None:
        d["queued"] = claim.record()
    return d


def claimed(user, seconds, run_key="k1", *, run_id=None, at=None, attempt=0, retries=0, **kw):
    return doc(user, seconds, claim=Claim(run_key, run_id, at or NOW, attempt, retries), **kw)


def tick(work=(), claims=(), runs=None, *, known=frozenset({7}), now=NOW, **options):
    state = TickState(
        work=list(work),
        claimed=list(claims),
        runs=runs or {},
        known_rounds=set(known),
        rounds_with_data={7},
        missing_datasets={},
        now=now,
    )
    settings = {"batch_size": 3, "max_attempts": 3, "retry_seconds": RETRY, **options}
    return plan_tick(state, **settings)


def ids(run) -> list[str]:
    return run.submission_ids


# New work


def test_new_work_in_created_order_in_batches_only_the_first_run_of_a_new_round_with_data():
    docs = [doc(u, s, round=r) for u, s, r in [("a", 5, 8), ("b", 1, 8), ("c", 3, 8), ("d", 2, 8)]]
    plan = tick(docs, known=set())
    assert plan.new_rounds == [8]
    assert [ids(r) for r in plan.runs] == [
        [str(docs[1]["_id"]), str(docs[3]["_id"]), str(docs[2]["_id"])],
        [str(docs[0]["_id"])],
    ]
    assert [r.with_data for r in plan.runs] == [True, False]
    assert {r.kind for r in plan.runs} == {"new"} and len({r.run_key for r in plan.runs}) == 2


def test_a_round_without_a_dataset_refuses_its_work_with_the_reason():
    state = TickState([doc("a", 1, round=9)], [], {}, set(), set(), {9: "no dataset"}, NOW)
    plan = plan_tick(state, batch_size=3, max_attempts=3, retry_seconds=RETRY)
    assert plan.runs == [] and [reason for _, reason in plan.invalid] == ["no dataset"]


def test_a_request_on_a_claimed_submission_is_planned_once_as_work():
    requested = claimed("a", 1, rescore_requested=NOW)
    dead = {"k1": RunFacts("r1", RunOutcome.LOST, NOW - timedelta(minutes=5))}
    plan = tick([requested], [requested], dead)
    assert [r.kind for r in plan.runs] == ["requested"]


# Recovery: only a run that has ended counts as dead


@pytest.mark.parametrize("age", [timedelta(seconds=1), timedelta(hours=5), timedelta(days=3)])
def test_a_claim_whose_run_is_alive_is_waited_for_whatever_its_age(age):
    """The measured fault: runs queued behind the one-run-per-round limit were taken for dead
    because they were old; every claimed submission got a retry run of its own, in waves."""
    claims = [claimed(u, s, at=NOW - age) for u, s in (("a", 1), ("b", 2), ("c", 3))]
    plan = tick(claims=claims, runs={"k1": RunFacts("r1", RunOutcome.ALIVE)})
    assert plan.runs == [] and plan.invalid == []


def test_a_claim_taken_up_by_a_live_run_is_waited_for_even_if_the_planned_one_ended():
    claim = claimed("a", 1, run_key="k1", run_id="r2")
    runs = {
        "k1": RunFacts("r1", RunOutcome.DIED, NOW - timedelta(minutes=1)),
        "r2": RunFacts("r2", RunOutcome.ALIVE),
    }
    assert tick(claims=[claim], runs=runs).runs == []


def test_a_claim_with_no_run_is_planned_again_once_it_is_old_enough():
    """The tick that claimed it died before the daemon created its run."""
    young = claimed("a", 1, at=NOW - timedelta(seconds=RETRY - 1))
    old = claimed("b", 2, at=NOW - timedelta(seconds=RETRY))
    plan = tick(claims=[young, old])
    (run,) = plan.runs
    assert ids(run) == [str(old["_id"])]
    assert (run.kind, run.attempt, run.retries) == ("retry", 0, 1)


def test_a_lost_run_is_retried_as_one_run_with_no_attempt_counted_then_later_and_later():
    """Dagster's storage, the store or S3 down; a configuration error; the round held: the
    deployment's fault. One run again for the whole batch, at once the first time."""
    ended = NOW - timedelta(seconds=1)
    claims = [claimed(u, s, attempt=1) for u, s in (("a", 1), ("b", 2))]
    plan = tick(claims=claims, runs={"k1": RunFacts("r1", RunOutcome.LOST, ended)})
    (run,) = plan.runs
    assert len(ids(run)) == 2 and (run.attempt, run.retries) == (1, 1)
    assert plan.invalid == []
    again = [claimed(u, s, attempt=1, retries=3) for u, s in (("a", 1), ("b", 2))]
    waiting = tick(claims=again, runs={"k1": RunFacts("r1", RunOutcome.LOST, ended)})
    assert waiting.runs == [] and waiting.waiting == 2
    due = ended + retry_delay(3, RETRY)
    later = tick(claims=again, runs={"k1": RunFacts("r1", RunOutcome.LOST, ended)}, now=due)
    assert [r.retries for r in later.runs] == [4]


def test_retry_delays_double_from_nothing_and_stop_at_an_hour():
    delays = [retry_delay(r, 60).total_seconds() for r in range(10)]
    assert delays[:5] == [0, 60, 120, 240, 480] and max(delays) == 3600


def test_a_batch_that_died_is_run_again_once_as_a_batch_then_split():
    claims = [claimed(u, s) for u, s in (("a", 1), ("b", 2), ("c", 3))]
    died = {"k1": RunFacts("r1", RunOutcome.DIED, NOW)}
    (run,) = tick(claims=claims, runs=died).runs
    assert len(ids(run)) == 3 and (run.attempt, run.retries) == (0, 1)
    again = [claimed(u, s, run_key="k2", retries=1) for u, s in (("a", 1), ("b", 2), ("c", 3))]
    split = tick(claims=again, runs={"k2": RunFacts("r2", RunOutcome.DIED, NOW)}).runs
    assert [len(ids(r)) for r in split] == [1, 1, 1]
    assert {r.attempt for r in split} == {0}  # nobody's fault yet: the culprit is unknown


def test_a_submission_whose_own_run_dies_is_given_up_after_its_attempts():
    died = {"k1": RunFacts("r1", RunOutcome.DIED, NOW, why="failure: ValueError")}
    (run,) = tick(claims=[claimed("a", 1)], runs=died).runs
    assert run.attempt == 1
    (run,) = tick(claims=[claimed("a", 1, attempt=1)], runs=died).runs
    assert run.attempt == 2
    plan = tick(claims=[claimed("a", 1, attempt=2)], runs=died)
    assert plan.runs == []
    ((_, reason),) = plan.invalid
    assert reason.startswith("could not be scored after 3 attempts") and "r1" in reason


def test_a_submission_a_successful_run_left_pending_counts_an_attempt_of_its_own():
    left = [claimed("a", 1), claimed("b", 2)]
    plan = tick(claims=left, runs={"k1": RunFacts("r1", RunOutcome.SUCCEEDED, NOW)})
    assert [(len(ids(r)), r.attempt) for r in plan.runs] == [(1, 1), (1, 1)]


def test_claims_of_one_dead_run_in_two_rounds_get_one_run_each():
    claims = [claimed("a", 1), claimed("b", 2, round=8)]
    plan = tick(claims=claims, runs={"k1": RunFacts("r1", RunOutcome.LOST, NOW)})
    assert sorted(r.round for r in plan.runs) == [7, 8]


# What ended a run


@pytest.mark.parametrize(
    ("status", "facts", "outcome"),
    [
        ("QUEUED", {}, RunOutcome.ALIVE),
        ("STARTING", {}, RunOutcome.ALIVE),
        ("STARTED", {"started": True}, RunOutcome.ALIVE),
        ("CANCELING", {"started": True}, RunOutcome.ALIVE),
        ("SUCCESS", {"started": True}, RunOutcome.SUCCEEDED),
        ("CANCELED", {"started": True}, RunOutcome.LOST),
        ("FAILURE", {"started": False}, RunOutcome.LOST),  # dropped from the queue
        ("FAILURE", {"started": True, "failure_reason": "START_TIMEOUT"}, RunOutcome.LOST),
        ("FAILURE", {"started": True, "failure_reason": "RUN_EXCEPTION"}, RunOutcome.LOST),
        ("FAILURE", {"started": True}, RunOutcome.DIED),  # its process died
        # Failed from outside after its worker logged a framework error (its storage down).
        ("FAILURE", {"started": True, "error_source": "FRAMEWORK_ERROR"}, RunOutcome.LOST),
        (
            "FAILURE",
            {
                "started": True,
                "failure_reason": "STEP_FAILURE",
                "exceptions": ["DagsterExecutionStepExecutionError", "RoundBusy"],
                "error_source": "USER_CODE_ERROR",
            },
            RunOutcome.LOST,
        ),
        (
            "FAILURE",
            {
                "started": True,
                "failure_reason": "STEP_FAILURE",
                "exceptions": ["DagsterExecutionStepExecutionError", "ServerSelectionTimeoutError"],
                "error_source": "USER_CODE_ERROR",
            },
            RunOutcome.LOST,
        ),
        (  # a queued run's round data never written: the run materializing it died first
            "FAILURE",
            {
                "started": True,
                "failure_reason": "STEP_FAILURE",
                "exceptions": ["RetryRequestedFromPolicy", "FileNotFoundError"],
                "error_source": "USER_CODE_ERROR",
            },
            RunOutcome.LOST,
        ),
        (
            "FAILURE",
            {
                "started": True,
                "failure_reason": "STEP_FAILURE",
                "exceptions": ["DagsterPostgresException", "OperationalError"],
                "error_source": "UNEXPECTED_ERROR",
            },
            RunOutcome.LOST,
        ),
        (
            "FAILURE",
            {
                "started": True,
                "failure_reason": "STEP_FAILURE",
                "exceptions": ["DagsterExecutionStepExecutionError", "ValueError"],
                "error_source": "USER_CODE_ERROR",
            },
            RunOutcome.DIED,
        ),
    ],
)
def test_what_ended_a_run(status, facts, outcome):
    assert run_outcome(status, **{"started": False, **facts}) is outcome


# An upload asking for its own run (pipeline/launch.py): only when nothing could share its run.


def test_an_upload_alone_in_a_round_with_data_gets_the_run_the_sensor_would_plan_for_it():
    upload = doc("ann", 5)
    run = plan_upload(upload, round_has_data=True, other_work_waiting=False, now=NOW)
    (sensor,) = tick([upload], batch_size=2000).runs
    assert run == sensor  # kind, round, batch, key, data, attempt: one planning rule
    assert (run.kind, run.submission_ids, run.with_data) == ("new", [str(upload["_id"])], False)


@pytest.mark.parametrize(
    ("has_data", "waiting"),
    [(False, False), (True, True), (False, True)],
    ids=["round without data: the sensor materializes it", "work waiting: batched", "both"],
)
def test_an_upload_is_left_to_the_sensor_when_its_run_could_be_shared_or_needs_data(
    has_data, waiting
):
    assert (
        plan_upload(doc("ann", 5), round_has_data=has_data, other_work_waiting=waiting, now=NOW)
        is None
    )


# A round with a run queued holds its new uploads for the next batch


def test_new_uploads_wait_while_their_round_has_a_run_queued():
    queued = claimed("q", 1, run_key="k1")  # planned, its run not started: no run id yet
    runs = {"k1": RunFacts("k1", RunOutcome.ALIVE)}
    arrivals = [doc("a", 5), doc("b", 6)]
    other_round = doc("c", 7, round=8)
    plan = tick([*arrivals, other_round], [queued], runs, known={7, 8})
    assert [ids(r) for r in plan.runs] == [[str(other_round["_id"])]]
    assert plan.held == 2


def test_a_request_is_never_held():
    queued = claimed("q", 1, run_key="k1")
    request = doc("a", 5, rescore_requested=NOW)
    plan = tick([request, doc("b", 6)], [queued], {"k1": RunFacts("k1", RunOutcome.ALIVE)})
    assert [r.kind for r in plan.runs] == ["requested"] and plan.held == 0


@pytest.mark.parametrize(
    ("claim", "facts"),
    [
        # the queued run has taken its submissions up: it runs, the next batch queues behind it
        (dict(run_key="k1", run_id="r1"), RunFacts("r1", RunOutcome.ALIVE)),
        # the run ended (lost, succeeded, or the tick that claimed died): nothing is queued
        (dict(run_key="k1"), RunFacts("k1", RunOutcome.LOST, NOW)),
        (dict(run_key="k1"), RunFacts("k1", RunOutcome.SUCCEEDED, NOW)),
        (dict(run_key="k1"), None),
    ],
)
def test_new_uploads_are_planned_when_no_run_of_the_round_is_queued(claim, facts):
    runs = {} if facts is None else {facts.run_id: facts}
    arrivals = [doc("a", 5), doc("b", 6)]
    plan = tick(arrivals, [claimed("q", 1, **claim)], runs)
    assert [ids(r) for r in plan.runs if r.kind == "new"] == [[str(d["_id"]) for d in arrivals]]
    assert plan.held == 0
