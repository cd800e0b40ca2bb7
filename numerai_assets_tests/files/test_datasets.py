"""Round dataset keys and fetching, on both implementations."""

from __future__ import annotations

from pathlib import Path

import pytest

from numerai_assets.files import ObjectNotFound, dataset_key, fetch_round_dataset
from numerai_assets.settings import Settings
from numerai_assets_tests.s3_server import Store


def test_dataset_key_from_default_settings() -> None:
    settings = Settings.from_env({})
    assert dataset_key(settings, 42) == "42/numerai_datasets.zip"


def test_dataset_key_from_configured_template() -> None:
    settings = Settings.from_env({"S3_DATASET_KEY_TEMPLATE": "v5/round_{round:04d}.parquet"})
    assert dataset_key(settings, 7) == "v5/round_0007.parquet"
    assert dataset_key("{round}/{round}.zip", 3) == "3/3.zip"


@pytest.mark.parametrize(
    "template", ["numerai_datasets.zip", "{{round}}/x.zip", "{rnd}/x.zip", "{round}/{name}", "{"]
)
def test_dataset_key_rejects_templates_without_just_round(template: str) -> None:
    with pytest.raises(ValueError) as info:
        dataset_key(template, 1)
    assert repr(template) in str(info.value)


@pytest.mark.parametrize("key", ["42/numerai_datasets.zip", "v5/42/train.parquet", "flat.zip"])
def test_fetch_keeps_the_file_name(store: Store, tmp_path: Path, key: str) -> None:
    store.buckets.put_bytes(store.bucket, key, b"dataset for " + key.encode())
    dest_dir = tmp_path / "round-42"

    path = fetch_round_dataset(store.buckets, store.bucket, key, dest_dir)

    assert path == dest_dir / key.rsplit("/", 1)[-1]
    assert path.read_bytes() == b"dataset for " + key.encode()
    assert sorted(p.name for p in dest_dir.iterdir()) == [path.name]


def test_fetch_missing_dataset(store: Store, tmp_path: Path) -> None:
    dest_dir = tmp_path / "round-99"
    with pytest.raises(ObjectNotFound) as info:
        fetch_round_dataset(store.buckets, store.bucket, "99/numerai_datasets.zip", dest_dir)
    err = info.value
    assert (err.bucket, err.key, err.bucket_missing) == (
        store.bucket,
        "99/numerai_datasets.zip",
        False,
    )
    message = str(err)
    assert "round's dataset" in message
    assert store.bucket in message and "99/numerai_datasets.zip" in message
    assert not dest_dir.exists() or list(dest_dir.iterdir()) == []


def test_fetch_from_missing_bucket(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound, match="does not exist") as info:
        fetch_round_dataset(store.buckets, "no-such-datasets", "1/numerai_datasets.zip", tmp_path)
    assert info.value.bucket_missing
    assert "round's dataset" in str(info.value) and "no-such-datasets" in str(info.value)


def test_fetch_refuses_key_without_file_name(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no file name"):
        fetch_round_dataset(store.buckets, store.bucket, "", tmp_path)
