"""Behaviour both ``Buckets`` implementations share, run against local folders and moto's S3."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from numerai_assets.files import Buckets, ObjectNotFound, ObjectTooLarge, StorageError
from numerai_assets_tests.s3_server import Store

MiB = 1024 * 1024


def leftovers(directory: Path) -> list[str]:
    """Files in ``directory`` that are not the given final names (i.e. stray temp files)."""
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_implements_the_protocol(store: Store) -> None:
    assert isinstance(store.buckets, Buckets)


def test_put_then_read_bytes(store: Store) -> None:
    store.buckets.put_bytes(store.bucket, "greeting.txt", b"hello\x00world")
    assert store.buckets.read_bytes(store.bucket, "greeting.txt") == b"hello\x00world"


def test_put_replaces_previous_content(store: Store) -> None:
    store.buckets.put_bytes(store.bucket, "k", b"first version, longer")
    store.buckets.put_bytes(store.bucket, "k", b"second")
    assert store.buckets.read_bytes(store.bucket, "k") == b"second"
    assert store.buckets.size(store.bucket, "k") == len(b"second")


def test_empty_object_round_trip(store: Store, tmp_path: Path) -> None:
    store.buckets.put_bytes(store.bucket, "empty", b"")
    assert store.buckets.read_bytes(store.bucket, "empty") == b""
    dest = store.buckets.download(store.bucket, "empty", tmp_path / "out" / "empty")
    assert dest.read_bytes() == b""


def test_upload_file_then_download(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "submission.csv"
    src.write_text("id,prediction\nn1,0.25\nn2,0.75\n")
    store.buckets.upload_file(src, store.bucket, "uploads/user/submission.csv")

    dest = tmp_path / "downloads" / "copy.csv"
    returned = store.buckets.download(store.bucket, "uploads/user/submission.csv", dest)

    assert returned == dest
    assert dest.read_text() == "id,prediction\nn1,0.25\nn2,0.75\n"
    assert leftovers(dest.parent) == ["copy.csv"]


def test_nested_keys(store: Store, tmp_path: Path) -> None:
    store.buckets.put_bytes(store.bucket, "42/numerai_datasets.zip", b"round 42")
    store.buckets.put_bytes(store.bucket, "43/numerai_datasets.zip", b"round 43")

    assert store.buckets.exists(store.bucket, "42/numerai_datasets.zip")
    assert not store.buckets.exists(store.bucket, "42")  # a "directory" is not an object
    assert store.buckets.read_bytes(store.bucket, "43/numerai_datasets.zip") == b"round 43"
    dest = store.buckets.download(store.bucket, "42/numerai_datasets.zip", tmp_path / "d.zip")
    assert dest.read_bytes() == b"round 42"


def test_exists_and_size(store: Store) -> None:
    assert not store.buckets.exists(store.bucket, "data.bin")
    store.buckets.put_bytes(store.bucket, "data.bin", bytes(range(256)) * 10)
    assert store.buckets.exists(store.bucket, "data.bin")
    assert store.buckets.size(store.bucket, "data.bin") == 2560


def test_missing_key_names_bucket_and_key(store: Store) -> None:
    with pytest.raises(ObjectNotFound) as info:
        store.buckets.read_bytes(store.bucket, "no/such/key.zip")
    err = info.value
    assert (err.bucket, err.key, err.bucket_missing) == (store.bucket, "no/such/key.zip", False)
    assert store.bucket in str(err) and "no/such/key.zip" in str(err)
    assert isinstance(err, FileNotFoundError) and isinstance(err, StorageError)

    with pytest.raises(ObjectNotFound, match="no/such/key.zip"):
        store.buckets.size(store.bucket, "no/such/key.zip")


def test_missing_bucket_is_reported_as_such(store: Store, tmp_path: Path) -> None:
    bucket = "no-such-bucket-anywhere"
    for call in (
        lambda: store.buckets.read_bytes(bucket, "k.zip"),
        lambda: store.buckets.size(bucket, "k.zip"),
        lambda: store.buckets.exists(bucket, "k.zip"),
        lambda: store.buckets.download(bucket, "k.zip", tmp_path / "k.zip"),
    ):
        with pytest.raises(ObjectNotFound, match="does not exist") as info:
            call()
        assert info.value.bucket_missing
        assert bucket in str(info.value) and "k.zip" in str(info.value)
    assert not (tmp_path / "k.zip").exists()


def test_failed_download_leaves_dest_untouched(store: Store, tmp_path: Path) -> None:
    existing = tmp_path / "existing" / "numerai_datasets.zip"
    existing.parent.mkdir()
    existing.write_bytes(b"last week's dataset")
    fresh = tmp_path / "fresh" / "numerai_datasets.zip"

    for dest in (existing, fresh):
        with pytest.raises(ObjectNotFound):
            store.buckets.download(store.bucket, "missing.zip", dest)

    assert existing.read_bytes() == b"last week's dataset"
    assert leftovers(existing.parent) == ["numerai_datasets.zip"]
    assert not fresh.exists()
    assert leftovers(fresh.parent) == []


def test_download_replaces_existing_file(store: Store, tmp_path: Path) -> None:
    dest = tmp_path / "dl" / "data.zip"
    dest.parent.mkdir()
    dest.write_bytes(b"stale content that is longer than the new one")
    store.buckets.put_bytes(store.bucket, "data.zip", b"new")
    store.buckets.download(store.bucket, "data.zip", dest)
    assert dest.read_bytes() == b"new"
    assert leftovers(dest.parent) == ["data.zip"]


def test_read_bytes_within_limit(store: Store) -> None:
    store.buckets.put_bytes(store.bucket, "small", b"x" * 100)
    assert store.buckets.read_bytes(store.bucket, "small", max_bytes=100) == b"x" * 100


@pytest.fixture
def content_reads(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records every read of object *content*: GetObject requests sent to S3, or files opened."""
    reads: list[str] = []
    if store.kind == "s3":
        # The hook only observes each request on its way to the real server.
        def on_get(request: Any, **_: Any) -> None:
            reads.append(request.url)

        events = store.buckets.client.meta.events
        events.register("before-send.s3.GetObject", on_get)
        yield reads
        events.unregister("before-send.s3.GetObject", on_get)
        return

    real_open, real_read_bytes = Path.open, Path.read_bytes

    def open_spy(self: Path, *args: Any, **kwargs: Any) -> Any:
        reads.append(str(self))
        return real_open(self, *args, **kwargs)

    def read_bytes_spy(self: Path) -> bytes:
        reads.append(str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "open", open_spy)
    monkeypatch.setattr(Path, "read_bytes", read_bytes_spy)
    yield reads


def test_read_bytes_over_limit_refused_before_reading(store: Store, request: Any) -> None:
    store.buckets.put_bytes(store.bucket, "big.csv", b"y" * 1001)
    reads = request.getfixturevalue("content_reads")  # only from here on

    with pytest.raises(ObjectTooLarge) as info:
        store.buckets.read_bytes(store.bucket, "big.csv", max_bytes=1000)

    err = info.value
    assert (err.bucket, err.key, err.size, err.limit) == (store.bucket, "big.csv", 1001, 1000)
    for part in (store.bucket, "big.csv", "1001", "1000"):
        assert part in str(err)
    assert reads == []


def test_content_reads_sees_reads(store: Store, request: Any) -> None:
    """The spy used above does notice a read, so its empty list means something."""
    store.buckets.put_bytes(store.bucket, "small.csv", b"z")
    reads = request.getfixturevalue("content_reads")
    assert store.buckets.read_bytes(store.bucket, "small.csv", max_bytes=1) == b"z"
    assert len(reads) == 1


def test_large_object_streams_intact(store: Store, tmp_path: Path) -> None:
    """20 MiB: over boto3's multipart threshold, so S3 transfers go in concurrent parts."""
    src = tmp_path / "big.parquet"
    with src.open("wb") as f:
        for _ in range(20):
            f.write(os.urandom(MiB))
    expected = hashlib.sha256(src.read_bytes()).hexdigest()

    store.buckets.upload_file(src, store.bucket, "7/numerai_dataset.parquet")
    assert store.buckets.size(store.bucket, "7/numerai_dataset.parquet") == 20 * MiB

    dest = store.buckets.download(
        store.bucket, "7/numerai_dataset.parquet", tmp_path / "out" / "dataset.parquet"
    )
    digest = hashlib.sha256()
    with dest.open("rb") as f:
        while chunk := f.read(MiB):
            digest.update(chunk)
    assert digest.hexdigest() == expected
    assert leftovers(dest.parent) == ["dataset.parquet"]


def test_describe(store: Store) -> None:
    location = store.buckets.describe(store.bucket, "42/numerai_datasets.zip")
    if store.kind == "s3":
        assert location == f"s3://{store.bucket}/42/numerai_datasets.zip"
    else:
        assert Path(location) == store.buckets.root / store.bucket / "42" / "numerai_datasets.zip"
