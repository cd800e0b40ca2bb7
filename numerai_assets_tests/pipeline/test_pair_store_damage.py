"""The round's pair store is derived data: a part of it that does not hold what it says (a
block truncated or overwritten, an order torn, lost or outlived by a cache reset) is computed
again, never decided from, and never costs a participant an attempt. Each test was written by a
reviewer attacking the store and failed before blocks carried a manifest (keys, sizes, CRC-32)
and phase 2 completed what phase 1 left out."""

from __future__ import annotations

from datetime import timedelta

from numerai_assets.definitions import build_definitions
from numerai_assets.pipeline.jobs import batch_run_config
from numerai_assets_tests.daemon import evaluate_sensor, launch
from numerai_assets_tests.pipeline.test_scoring_job import outcome


def rescore_round(instance) -> bool:  # noqa: ANN001
    """The whole round 7 scored again in process (what ``rescore --in-process`` runs): success."""
    job = build_definitions().resolve_job_def("score_round")
    result = job.execute_in_process(
        run_config=batch_run_config([]), instance=instance, partition_key="7", raise_on_error=False
    )
    return result.success


def pairs_dir(seeded):
    (found,) = (seeded.deployment.settings.home / "prediction_cache").glob("round-7/*/pairs")
    return found


def test_a_late_upload_is_scored_despite_a_truncated_pair_block(seeded, instance, monkeypatch):
    monkeypatch.setenv("NUMERAI_PENDING_RETRY_SECONDS", "0")
    seeded.submit_demo(8)
    launch(instance, evaluate_sensor(instance))
    blocks = sorted(pairs_dir(seeded).glob("block-*"))
    assert blocks, "the first run stored its pairs"
    ks = blocks[0] / "ks.u32"
    ks.write_bytes(ks.read_bytes()[:8])  # the block's KS counts lost their tail

    deployment = seeded.deployment
    docs = seeded.by_user()
    data = deployment.buckets.read_bytes(
        deployment.settings.upload_bucket, docs["heidi"]["filename"]
    )
    filename = "7/ivan/predictions.csv"
    deployment.buckets.put_bytes(deployment.settings.upload_bucket, filename, data)
    late = deployment.store.insert_submission(
        username="ivan",
        round=7,
        filename=filename,
        created=docs["alice"]["created"] + timedelta(microseconds=1),
    )

    for _ in range(8):  # the sensor's recovery, as many ticks as it wants
        launch(instance, evaluate_sensor(instance), raise_on_error=False)
    refused = {
        user: doc["invalid"]["reason"][:40]
        for user, doc in seeded.by_user().items()
        if doc.get("invalid") and "could not be scored" in doc["invalid"]["reason"]
    }
    assert refused == {}
    after = seeded.by_user()
    assert after["ivan"]["original"]["value"] is True  # the earlier of two identical files
    assert after["heidi"]["original"]["value"] is False  # a byte copy of ivan's, after it
    assert deployment.store.get(late)["original"]["pending"] is False


def test_a_rescore_rebuilds_a_torn_pair_order(seeded, instance):
    """``order.json`` cut short (not valid JSON): every run of the round fails with
    ``JSONDecodeError`` in ``pair_shards``; a rescore must rebuild it and decide as before."""
    seeded.submit_demo(8)
    launch(instance, evaluate_sensor(instance))
    before = {user: outcome(doc) for user, doc in seeded.by_user().items()}
    order = pairs_dir(seeded) / "order.json"
    order.write_bytes(order.read_bytes()[:30])
    assert rescore_round(instance)
    assert {user: outcome(doc) for user, doc in seeded.by_user().items()} == before


def test_an_upload_after_the_cache_index_is_lost_is_scored(seeded, instance, monkeypatch):
    monkeypatch.setenv("NUMERAI_PENDING_RETRY_SECONDS", "0")
    seeded.submit_demo(8)
    launch(instance, evaluate_sensor(instance))
    (index,) = (seeded.deployment.settings.home / "prediction_cache").glob("round-7/*/index.json")
    index.unlink()  # the cache's index lost: the cache starts again, by design

    deployment = seeded.deployment
    data = deployment.buckets.read_bytes(
        deployment.settings.upload_bucket, seeded.by_user()["heidi"]["filename"]
    )
    late = seeded.submit("ivan", data)  # a byte copy of heidi's file, uploaded now
    for _ in range(6):
        launch(instance, evaluate_sensor(instance), raise_on_error=False)
    doc = deployment.store.get(late)
    assert not doc.get("invalid"), doc["invalid"]["reason"]
    assert doc["original"]["pending"] is False
    assert doc["original"]["value"] is False  # a copy of heidi's, uploaded after it


def test_a_rescore_after_the_pair_order_is_lost_decides_as_before(seeded, instance):
    seeded.submit_demo(8)
    launch(instance, evaluate_sensor(instance))
    deployment = seeded.deployment
    docs = seeded.by_user()
    data = deployment.buckets.read_bytes(
        deployment.settings.upload_bucket, docs["heidi"]["filename"]
    )
    filename = "7/ivan/predictions.csv"
    deployment.buckets.put_bytes(deployment.settings.upload_bucket, filename, data)
    deployment.store.insert_submission(  # a late upload: created just after alice's
        username="ivan",
        round=7,
        filename=filename,
        created=docs["alice"]["created"] + timedelta(microseconds=1),
    )
    launch(instance, evaluate_sensor(instance))
    before = {user: outcome(doc) for user, doc in seeded.by_user().items()}
    assert before["heidi"][2] is False  # a copy of ivan's file, after it

    (pairs,) = (deployment.settings.home / "prediction_cache").glob("round-7/*/pairs")
    (pairs / "order.json").unlink()  # derived data, lost
    assert rescore_round(instance)
    assert {user: outcome(doc) for user, doc in seeded.by_user().items()} == before


def test_a_rescore_never_decides_from_a_corrupted_block(seeded, instance):
    seeded.submit_demo(8)
    launch(instance, evaluate_sensor(instance))
    before = {user: outcome(doc) for user, doc in seeded.by_user().items()}
    (pairs,) = (seeded.deployment.settings.home / "prediction_cache").glob("round-7/*/pairs")
    (block,) = pairs.glob("block-*")
    ks = block / "ks.u32"
    ks.write_bytes(bytes(ks.stat().st_size))  # same size, every count 0

    assert rescore_round(instance)
    assert {user: outcome(doc) for user, doc in seeded.by_user().items()} == before
