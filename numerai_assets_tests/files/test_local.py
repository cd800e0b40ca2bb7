"""What only the folder implementation does: path safety and bucket folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from numerai_assets.files import LocalBuckets, ObjectNotFound


@pytest.fixture
def local(tmp_path: Path) -> LocalBuckets:
    return LocalBuckets(tmp_path / "root")


def test_layout_is_root_bucket_key(local: LocalBuckets) -> None:
    local.put_bytes("datasets", "42/numerai_datasets.zip", b"zip")
    assert (local.root / "datasets" / "42" / "numerai_datasets.zip").read_bytes() == b"zip"


@pytest.mark.parametrize(
    "key",
    [
        "../outside.txt",
        "a/../../outside.txt",
        "a/..",
        "./a",
        "/etc/passwd",
        "a\\..\\..\\outside.txt",
        "a//b",
        "a/",
        "",
    ],
)
def test_keys_that_could_escape_the_root_are_refused(local: LocalBuckets, key: str) -> None:
    for call in (
        lambda: local.put_bytes("bucket", key, b"x"),
        lambda: local.read_bytes("bucket", key),
        lambda: local.exists("bucket", key),
        lambda: local.describe("bucket", key),
    ):
        with pytest.raises(ValueError, match="refusing object key"):
            call()
    assert not local.root.exists()  # nothing was written anywhere under (or beside) the root


@pytest.mark.parametrize("bucket", ["", "..", ".", "a/b", "a\\b"])
def test_bad_bucket_names_are_refused(local: LocalBuckets, bucket: str) -> None:
    with pytest.raises(ValueError, match="invalid bucket name"):
        local.put_bytes(bucket, "k", b"x")


def test_writing_creates_the_bucket_folder(local: LocalBuckets, tmp_path: Path) -> None:
    """Unlike S3, a fresh local home needs no setup before the first upload."""
    src = tmp_path / "sub.csv"
    src.write_text("id,prediction\n")
    local.upload_file(src, "numerai-submissions", "u1/sub.csv")
    assert local.read_bytes("numerai-submissions", "u1/sub.csv") == b"id,prediction\n"


def test_writes_leave_no_temp_files(local: LocalBuckets) -> None:
    local.put_bytes("b", "dir/k", b"1")
    local.put_bytes("b", "dir/k", b"2")
    assert [p.name for p in (local.root / "b" / "dir").iterdir()] == ["k"]


def test_a_directory_is_not_an_object(local: LocalBuckets) -> None:
    (local.root / "b" / "folder").mkdir(parents=True)
    assert not local.exists("b", "folder")
    with pytest.raises(ObjectNotFound):
        local.read_bytes("b", "folder")
