"""What every fault test checks once the pipeline is quiet: the stored decisions are a clean
scoring's, each written exactly once, and nothing is left pending, claimed or requested."""

from __future__ import annotations

import dagster as dg

from numerai_assets.store import SubmissionStore
from numerai_assets_tests.pipeline.test_scoring_job import outcome


def outcomes(seeded) -> dict:
    return {user: outcome(doc) for user, doc in seeded.by_user().items()}


def stale_flags(store: SubmissionStore) -> list[str]:
    """Every submission in the whole store (any round) left undecided: a score still pending,
    a claim (``queued``) or an intake request (``rescore_requested``) nobody answered. A
    decision clears the claim and the request; a quiet pipeline leaves none."""
    found = []
    for doc in store._submissions.find({}):
        left = [name for name in ("queued", "rescore_requested") if name in doc]
        if not doc.get("invalid"):
            left += [
                f"{name}.pending"
                for name in ("concordant", "original")
                if not isinstance(doc.get(name), dict) or doc[name].get("pending") is not False
            ]
        if left:
            found.append(
                f"{doc['_id']} (round {doc.get('competition_id')}, {doc.get('username')}): "
                + ", ".join(left)
            )
    return found


def assert_no_stale_flags(store: SubmissionStore) -> None:
    left = stale_flags(store)
    assert not left, "submissions left undecided:\n" + "\n".join(left)


def assert_scored_once_as_reference(seeded, reference, instance, *, rescored: bool = False):
    """The round's decisions equal the clean scoring's (``reference``: user -> outcome), every
    submission decided and nothing stale in the store, the leaderboard mirroring them, and each
    submission written by exactly one successful run, the one its decision names.

    ``rescored``: a run may have decided a submission again, as a retry of an earlier batch
    that ran after later ones does (it scores the round from its batch on:
    ``batch.select.with_later_decisions``); then each decision must be the last successful
    run's that reported it. Returns how many decisions were made again that way."""
    docs = seeded.by_user()
    scored = outcomes(seeded)
    wrongly_invalid = {
        user: scored[user]
        for user, expected in reference.items()
        if expected[0] != "invalid" and scored.get(user, ("",))[0] == "invalid"
    }
    assert not wrongly_invalid, f"invalid, though a clean scoring scores them: {wrongly_invalid}"
    assert scored == reference
    assert_no_stale_flags(seeded.deployment.store)
    # The leaderboard mirrors every user's latest valid submission, interrupted writes included.
    board = {e["username"]: e for e in seeded.deployment.store.leaderboard(seeded.round)}
    for user, doc in docs.items():
        if doc.get("invalid"):
            assert user not in board
        else:
            assert board[user]["submission_id"] == doc["_id"]
            assert board[user]["original"] == {"pending": False, "value": doc["original"]["value"]}
    # Exactly once: no submission appears in two successful runs' reports, and what each
    # report says is what the store holds (a crashed run's writes are in no report).
    reported = []  # (submission id, run id), runs in the order they ended
    succeeded = instance.get_run_records(
        dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS], tags={"round": str(seeded.round)})
    )
    for record in sorted(succeeded, key=lambda r: r.end_time or 0):
        run_id = record.dagster_run.run_id
        for event in instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records:
            materialization = event.event_log_entry.asset_materialization
            if materialization.asset_key == dg.AssetKey("submission_scores"):
                decided = materialization.metadata["decided"].value
                reported += [(sid, run_id) for sid in decided["scored"] + decided["invalid"]]
    again = len(reported) - len({sid for sid, _ in reported})
    assert rescored or again == 0
    last = dict(reported)  # the last run reporting each submission
    by_id = {str(d["_id"]): d for d in docs.values()}
    assert set(last) <= set(by_id)
    for sid, run_id in last.items():
        doc = by_id[sid]
        assert (doc.get("invalid") or doc["original"])["run_id"] == run_id
    return again
