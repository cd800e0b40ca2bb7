"""A submission that leaves its round after later ones were compared against it (pending, it
counts as original) must not leave those decisions behind: once quiet, the round equals one
clean scoring of what the round holds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from numerai_assets.datasets.synthetic import submission_csv
from numerai_assets.store.connection import open_database
from numerai_assets.store.documents import SUBMISSIONS
from numerai_assets_tests.pipeline.conftest import evaluate_sensor, launch, seed_round
from numerai_assets_tests.pipeline.test_interleavings import Schedule


@pytest.mark.parametrize("how", ["deleted", "moved"])
def test_a_claimed_submission_that_leaves_the_round_leaves_no_decision_behind(
    deployment,
    instance,
    quick_recovery,
    monkeypatch,
    how,  # noqa: F811
):
    seeded = seed_round(deployment, 51, rows=300, seed=4)
    schedule = Schedule(seeded, instance, seed=4)
    store, bucket = deployment.store, deployment.settings.upload_bucket
    data = submission_csv(seeded.ids, schedule.pool[0])
    deployment.buckets.put_bytes(bucket, "51/cat/l.csv", data)
    deployment.buckets.put_bytes(bucket, "51/ben/x.csv", data)  # the same predictions
    later = store.insert_submission(username="cat", round=51, filename="51/cat/l.csv")
    schedule.tick()  # cat's run is planned
    late = store.insert_submission(  # ben's upload, stamped by a clock a minute behind
        username="ben",
        round=51,
        filename="51/ben/x.csv",
        created=datetime.now(timezone.utc) - timedelta(seconds=60),
    )
    schedule.run(may_die=False)  # cat is compared against ben's (pending) upload
    schedule.tick()  # ben's run is planned: ben's upload is claimed
    raw = open_database()[SUBMISSIONS]
    if how == "deleted":
        raw.delete_one({"_id": late})
    else:
        raw.update_one({"_id": late}, {"$set": {"competition_id": 52}})
    seed_round(deployment, 52, rows=300, seed=5)
    schedule.run(may_die=False)  # ben's run, planned for round 51: ben's upload is gone
    for _ in range(6):  # to quiet, each run in its own round's partition
        if not launch(instance, evaluate_sensor(instance)):
            break
    quiet = store.get(later)["original"]
    with monkeypatch.context() as clean:
        clean.setenv("NUMERAI_PREDICTION_CACHE", "off")
        schedule.rescore()
    assert store.get(later)["original"]["value"] is True  # alone in the round: original
    assert quiet["value"] is True, (
        f"cat's decision still names the {how} submission: {quiet.get('matches')}"
    )
