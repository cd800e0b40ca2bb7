"""An accepted intake request must be scored, even when the run planned for it dies."""

from __future__ import annotations

from datetime import datetime, timezone

from numerai_assets.datasets.synthetic import submission_csv
from numerai_assets_tests.pipeline.conftest import seed_round
from numerai_assets_tests.pipeline.test_interleavings import Schedule, quick_recovery  # noqa: F401


def test_a_request_whose_run_dies_before_it_starts_is_still_scored(
    deployment,
    instance,
    quick_recovery,  # noqa: F811
):
    """A scored submission's file is replaced and a rescore requested (the intake answers 202).
    The sensor claims the request and plans a run; that run dies before its first op (killed,
    or it met the round's lease and ran out of retries). The submission is not pending, so
    recovery never sees it, and the request is gone: the old file's decision stays forever."""
    seeded = seed_round(deployment, 31, rows=300, seed=1)
    schedule = Schedule(seeded, instance, seed=1)
    store, bucket = deployment.store, deployment.settings.upload_bucket
    key = "31/ann/a.csv"
    deployment.buckets.put_bytes(bucket, key, submission_csv(seeded.ids, schedule.pool[0]))
    oid = store.insert_submission(username="ann", round=31, filename=key)
    schedule.quiesce()
    before = store.get(oid)["file_digest"]

    deployment.buckets.put_bytes(bucket, key, submission_csv(seeded.ids, schedule.pool[1]))
    store.request_scoring(oid, at=datetime.now(timezone.utc))
    schedule.tick()
    assert schedule.queue, "the request was planned"
    schedule.queue.clear()  # the planned run dies before prepare_submissions
    schedule.quiesce()

    after = store.get(oid)
    assert after["file_digest"] != before, "the requested rescore never read the new file"
