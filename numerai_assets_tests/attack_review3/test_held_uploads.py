"""``plan_tick`` holds a round's new uploads while a run of the round is queued. Attacks: a run
that has started but not taken up every claim of its batch, and a run that never leaves
NOT_STARTED."""

from __future__ import annotations

from datetime import timedelta

from numerai_assets.batch.planning import RunFacts, RunOutcome
from numerai_assets_tests.batch.test_planning import NOW, claimed, doc, ids, tick


def test_a_started_run_with_a_refused_file_does_not_hold_the_round():
    """prepare_batch records its run id only on the readable files of its batch (a refused
    file's decision is written by the run's last step; a file unreadable for a reason of ours
    is never taken up): while such a run runs, one claim of its batch names no run id. The run
    has started, so nothing is queued: the round's new uploads are planned (to queue behind it)
    rather than held until it ends and the next tick after."""
    taken = claimed("t", 1, run_key="k1", run_id="r1")
    refused = claimed("r", 2, run_key="k1")  # same run, its file refused: no run id until the end
    runs = {"k1": RunFacts("r1", RunOutcome.ALIVE), "r1": RunFacts("r1", RunOutcome.ALIVE)}
    arrivals = [doc("a", 5), doc("b", 6)]
    plan = tick(arrivals, [taken, refused], runs)
    assert [ids(r) for r in plan.runs] == [[str(d["_id"]) for d in arrivals]]
    assert plan.held == 0


def test_a_queued_run_still_holds_beside_a_started_one():
    """The narrowing above keeps the hold where it belongs: a second run of the round, planned
    and not started, still holds (its key has no claim with a run id)."""
    running = claimed("t", 1, run_key="k1", run_id="r1")
    queued = claimed("q", 2, run_key="k2")
    runs = {
        "k1": RunFacts("r1", RunOutcome.ALIVE),
        "r1": RunFacts("r1", RunOutcome.ALIVE),
        "k2": RunFacts("r2", RunOutcome.ALIVE),
    }
    plan = tick([doc("a", 5)], [running, queued], runs)
    assert plan.runs == [] and plan.held == 1


def test_a_run_that_never_starts_does_not_hold_its_round_forever():
    stuck = claimed("q", 1, run_key="k1", at=NOW - timedelta(days=2))
    runs = {"k1": RunFacts("k1", RunOutcome.ALIVE)}  # NOT_STARTED is alive to the planner
    arrivals = [doc("a", 5), doc("b", 6)]
    plan = tick(arrivals, [stuck], runs)
    assert [ids(r) for r in plan.runs] == [[str(d["_id"]) for d in arrivals]]
