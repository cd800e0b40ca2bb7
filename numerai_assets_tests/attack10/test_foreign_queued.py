"""A ``queued`` field written by another system, with a type this pipeline does not write.

README: "no document's content can make a sensor tick fail", and every submission ends either
scored or marked invalid with a reason; none stays pending.
"""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
import pytest

from numerai_assets.datasets.synthetic import submission_csv
from numerai_assets.store.connection import open_database
from numerai_assets.store.documents import SUBMISSIONS
from numerai_assets_tests.pipeline.conftest import evaluate_sensor, seed_round
from numerai_assets_tests.pipeline.test_interleavings import Schedule

LONG_AGO = datetime(2020, 1, 1, tzinfo=timezone.utc)


def _upload(deployment, seeded, schedule, user: str, k: int) -> str:
    key = f"{seeded.round}/{user}/{k}.csv"
    data = submission_csv(seeded.ids, schedule.pool[k % len(schedule.pool)])
    deployment.buckets.put_bytes(deployment.settings.upload_bucket, key, data)
    return deployment.store.insert_submission(username=user, round=seeded.round, filename=key)


def _set_raw(oid, **fields) -> None:
    open_database()[SUBMISSIONS].update_one({"_id": oid}, {"$set": fields})


@pytest.mark.parametrize(
    "queued",
    [
        "legacy",  # a flag from the original system
        None,
        {"run_key": "elsewhere"},  # a claim without a time
    ],
    ids=["string", "null", "no-at"],
)
def test_a_new_upload_with_a_foreign_queued_field_is_not_left_pending(
    deployment,
    instance,
    quick_recovery,
    queued,  # noqa: F811
):
    seeded = seed_round(deployment, 41, rows=300, seed=2)
    schedule = Schedule(seeded, instance, seed=2)
    oid = _upload(deployment, seeded, schedule, "ann", 0)
    _set_raw(oid, queued=queued)
    schedule.quiesce()
    doc = deployment.store.get(oid)
    assert doc.get("invalid") or doc["original"]["pending"] is False, (
        "never scored nor set aside: the queue (unclaimed) and recovery (stuck) both skip it"
    )


@pytest.mark.parametrize(
    "queued",
    [
        {"at": LONG_AGO, "attempt": "two"},
        {"at": LONG_AGO, "attempt": float("nan")},
        {"at": LONG_AGO, "attempt": {"n": 1}},
        [{"at": LONG_AGO, "attempt": 1}],
    ],
    ids=["attempt-text", "attempt-nan", "attempt-document", "array"],
)
def test_a_stuck_claim_with_odd_types_does_not_fail_the_tick(
    deployment,
    instance,
    quick_recovery,
    queued,  # noqa: F811
):
    seeded = seed_round(deployment, 42, rows=300, seed=2)
    schedule = Schedule(seeded, instance, seed=2)
    odd = _upload(deployment, seeded, schedule, "ann", 0)
    _set_raw(odd, queued=queued)
    fresh = _upload(deployment, seeded, schedule, "ben", 1)
    result = evaluate_sensor(instance)  # must not raise
    assert isinstance(result, dg.SensorResult)
    planned = {i for r in result.run_requests for i in _ids(r)}
    assert str(fresh) in planned


def _ids(request: dg.RunRequest) -> list[str]:
    ops = request.run_config["ops"]["submission_scores"]["ops"]
    return ops["prepare_submissions"]["config"]["submission_ids"]


def test_a_foreign_queued_field_does_not_fail_a_rescore_of_the_round(
    deployment,
    instance,
    quick_recovery,  # noqa: F811
):
    """A scored submission whose ``queued`` another system set to text: the next run that
    re-pends it (a whole-round rescore, or a late arrival's suffix) must still score the round."""
    seeded = seed_round(deployment, 43, rows=300, seed=2)
    schedule = Schedule(seeded, instance, seed=2)
    first = _upload(deployment, seeded, schedule, "ann", 0)
    second = _upload(deployment, seeded, schedule, "ben", 1)
    schedule.quiesce()
    _set_raw(first, queued="legacy")
    schedule.rescore()  # asserts the run succeeded
    assert deployment.store.get(second)["original"]["pending"] is False
