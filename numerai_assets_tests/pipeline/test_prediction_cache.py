"""The per-round prediction cache in the pipeline: only new files are read, and a rebuilt cache
(deleted, or stale after the dataset changed) gives identical scores."""

import shutil

import dagster as dg
import pytest

from numerai_assets.files import LocalBuckets
from numerai_assets.pipeline.jobs import batch_run_config

from .conftest import evaluate_sensor, launch
from .test_scoring_job import outcome


@pytest.fixture
def file_reads(monkeypatch):
    """Keys read from the buckets, as the pipeline reads them."""
    reads = []
    original = LocalBuckets.read_bytes

    def counting(self, bucket, key, **kwargs):
        reads.append(key)
        return original(self, bucket, key, **kwargs)

    monkeypatch.setattr(LocalBuckets, "read_bytes", counting)
    return reads


@pytest.mark.parametrize("cache", ["on", "off"])
def test_a_run_reads_only_the_new_files(seeded, instance, file_reads, monkeypatch, cache):
    if cache == "off":
        monkeypatch.setenv("NUMERAI_PREDICTION_CACHE", "off")
    seeded.submit_demo(8)
    first = evaluate_sensor(instance)
    launch(instance, first)
    file_reads.clear()
    late = [
        seeded.submit(
            f"late{k}",
            seeded.deployment.buckets.read_bytes(
                seeded.deployment.settings.upload_bucket, seeded.by_user()["heidi"]["filename"]
            ),
        )
        for k in range(2)
    ]
    file_reads.clear()
    launch(instance, evaluate_sensor(instance, first.cursor))
    read_ids = {key.split("/")[1] for key in file_reads}
    if cache == "on":
        assert sorted(file_reads) == sorted(
            seeded.deployment.store.get(i)["filename"] for i in late
        )
    else:  # every earlier original (or pending) submission is read again; invalid ones not
        assert {"alice", "bob", "heidi"} <= read_ids
        assert not {"erin", "frank", "grace"} & read_ids


def test_a_rebuilt_cache_gives_identical_scores(seeded, instance):
    seeded.submit_demo(8)
    launch(instance, evaluate_sensor(instance))
    before = {user: outcome(doc) for user, doc in seeded.by_user().items()}
    cache_root = seeded.deployment.settings.home / "prediction_cache"
    assert list(cache_root.glob("round-7/*/index.json"))
    shutil.rmtree(cache_root)
    from numerai_assets.definitions import build_definitions

    job = build_definitions().resolve_job_def("score_round")
    assert job.execute_in_process(
        run_config=batch_run_config([]), instance=instance, partition_key="7"
    ).success
    assert {user: outcome(doc) for user, doc in seeded.by_user().items()} == before
    assert list(cache_root.glob("round-7/*/index.json"))


def test_a_stale_cache_is_rebuilt_after_the_dataset_changes(seeded, instance):
    """A new dataset with the rows in another order: the old cache no longer fits, so a fresh
    one is filled from the files and originality comes out the same."""
    from numerai_assets.datasets.synthetic import write_round_zip
    from numerai_assets.definitions import build_definitions
    from numerai_assets.files import dataset_key

    seeded.submit_demo(8)
    launch(instance, evaluate_sensor(instance))
    before = {u: outcome(d)[2:] for u, d in seeded.by_user().items() if not d.get("invalid")}

    deployment = seeded.deployment
    training, _ = (None, None)
    zip_path = deployment.settings.home / "reordered.zip"
    import zipfile

    import pandas as pd

    key = dataset_key(deployment.settings, 7)
    original = deployment.settings.local_buckets_dir / deployment.settings.dataset_bucket / key
    with zipfile.ZipFile(original) as archive:
        training = pd.read_csv(archive.open("numerai_training_data.csv"))
        tournament = pd.read_csv(archive.open("numerai_tournament_data.csv"))
    write_round_zip(training, tournament.iloc[::-1], zip_path)
    deployment.buckets.upload_file(zip_path, deployment.settings.dataset_bucket, key)

    job = build_definitions().resolve_job_def("score_round")
    assert job.execute_in_process(
        run_config=batch_run_config([]), instance=instance, partition_key="7"
    ).success
    caches = list((deployment.settings.home / "prediction_cache" / "round-7").iterdir())
    assert len(caches) == 2  # the stale one is left alone, a fresh one was filled
    after = {u: outcome(d)[2:] for u, d in seeded.by_user().items() if not d.get("invalid")}
    assert after == before


def test_workers_share_the_cache_through_its_s3_mirror(
    s3_server, s3_client, tmp_path, monkeypatch, instance
):
    """Runs on two machines: the second, with an empty local cache, reads no earlier CSV file."""
    from numerai_assets.cli.context import Deployment
    from numerai_assets.files import S3Buckets

    from .conftest import seed_round

    for bucket in ("datasets-m", "uploads-m", "io-m"):
        s3_client.create_bucket(Bucket=bucket)
    for name, value in {
        "S3_ENDPOINT_URL": s3_server,
        "S3_DATASET_BUCKET": "datasets-m",
        "S3_UPLOAD_BUCKET": "uploads-m",
        "DAGSTER_IO_BUCKET": "io-m",
        "S3_ACCESS_KEY": "testing",
        "S3_SECRET_KEY": "testing",
        "S3_REGION": "us-east-1",
        "NUMERAI_ASSETS_HOME": str(tmp_path / "home"),
        "NUMERAI_PREDICTION_CACHE": str(tmp_path / "worker-a"),
    }.items():
        monkeypatch.setenv(name, value)
    seeded = seed_round(Deployment.from_env(), 7)
    seeded.submit_demo(8)
    first = evaluate_sensor(instance)
    assert all(r.success for r in launch(instance, first))
    mirrored = s3_client.list_objects_v2(Bucket="io-m", Prefix="prediction_cache/round-7/")
    assert mirrored["KeyCount"] == 5  # every valid submission (the two constant ones are not)
    assert s3_client.list_objects_v2(Bucket="io-m", Prefix="numerai-assets/")["KeyCount"] >= 3

    monkeypatch.setenv("NUMERAI_PREDICTION_CACHE", str(tmp_path / "worker-b"))
    reads = []
    original = S3Buckets.read_bytes
    monkeypatch.setattr(
        S3Buckets,
        "read_bytes",
        lambda self, bucket, key, **kw: reads.append(key) or original(self, bucket, key, **kw),
    )
    late = seeded.submit(
        "late",
        s3_client.get_object(Bucket="uploads-m", Key=seeded.by_user()["heidi"]["filename"])[
            "Body"
        ].read(),
    )
    assert all(r.success for r in launch(instance, evaluate_sensor(instance, first.cursor)))
    csv_reads = [k for k in reads if not k.endswith(".f64")]
    assert csv_reads == [seeded.deployment.store.get(late)["filename"]]
    assert len([k for k in reads if k.endswith(".f64")]) == 3  # alice, bob and heidi
    assert seeded.by_user()["late"]["original"]["reason"] == "correlated"  # a copy of heidi


def test_a_batch_reads_no_file_of_a_later_batch(seeded, instance, file_reads, monkeypatch):
    """In a burst split into batches, the first run must not read the files the next batch
    will read anyway (they are pending, but created after everything in the first batch)."""

    monkeypatch.setenv("NUMERAI_BATCH_SIZE", "4")
    ids = seeded.submit_demo(8)
    tick = evaluate_sensor(instance)
    assert len(tick.run_requests) == 2
    first_batch = list(ids)[:4]
    file_reads.clear()
    first_run_only = dg.SensorResult(
        run_requests=tick.run_requests[:1],
        dynamic_partitions_requests=tick.dynamic_partitions_requests,
    )
    assert all(r.success for r in launch(instance, first_run_only))
    assert sorted(k.split("/")[1] for k in file_reads) == sorted(first_batch)
