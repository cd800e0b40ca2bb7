import zipfile

import numpy as np
import pytest

from numerai_assets.datasets import DatasetError, load_round_dataset
from numerai_assets.datasets.synthetic import make_round, write_round_zip


@pytest.fixture(scope="module")
def frames():
    return make_round(
        training_rows=200, validation_rows=100, test_rows=100, live_rows=50, eras=4, seed=3
    )


def write_dir(folder, training, tournament, suffix=".csv"):
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in (
        ("numerai_training_data", training),
        ("numerai_tournament_data", tournament),
    ):
        path = folder / f"{name}{suffix}"
        if suffix == ".parquet":
            frame.to_parquet(path)
        else:
            frame.to_csv(path, index=False)
    return folder


@pytest.mark.parametrize("suffix", [".csv", ".csv.bz2", ".csv.gz", ".parquet"])
def test_reads_a_folder_in_every_format(tmp_path, frames, suffix):
    data = load_round_dataset(write_dir(tmp_path / "round", *frames, suffix=suffix))
    training, tournament = frames
    assert data.features == tuple(f"feature{k}" for k in range(1, 22))
    assert list(data.tournament_ids) == list(tournament["id"])  # file order is kept
    assert data.summary()["validation_rows"] == 100 and data.summary()["live_rows"] == 50
    np.testing.assert_allclose(data.all_features()[:200], training[list(data.features)])


def test_reads_the_original_zip_and_the_sample_rows(tmp_path, frames, sample_round):
    data = load_round_dataset(write_round_zip(*frames, tmp_path / "numerai_datasets.zip"))
    assert len(data.tournament) == 250
    assert sample_round.summary()["test_rows"] == 500 and len(sample_round.training) == 1499
    assert sample_round.tournament["target"][sample_round.data_types == "live"].isna().all()


def test_zip_may_hold_parquet_in_a_subfolder(tmp_path, frames):
    path = tmp_path / "r.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, frame in zip(
            ("numerai_training_data", "numerai_tournament_data"), frames, strict=True
        ):
            archive.writestr(f"round9/{name}.parquet", frame.to_parquet())
    assert len(load_round_dataset(path).training) == 200


def drop(column, which):
    def change(training, tournament):
        frames = {"training": training, "tournament": tournament}
        frames[which] = frames[which].drop(columns=[column])
        return frames["training"], frames["tournament"]

    return change


def set_value(which, column, value, rows=slice(None)):
    def change(training, tournament):
        frame = (training if which == "training" else tournament).copy()
        frame[column] = frame[column].astype(object)
        frame.loc[frame.index[rows], column] = value
        return (frame, tournament) if which == "training" else (training, frame)

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (drop("era", "tournament"), "tournament data has no column era"),
        (drop("target", "training"), "training data has no column target"),
        (drop("feature3", "tournament"), "different feature columns"),
        (set_value("tournament", "id", "n0", slice(5, 8)), "1 ids appear more than once (e.g. n0)"),
        (set_value("training", "feature2", "x", slice(0, 2)), "features feature2 have non-numeric"),
        (
            set_value("tournament", "data_type", "tournament", slice(0, 1)),
            "tournament data has data_type ['tournament']",
        ),
        (set_value("training", "target", 0.5, slice(0, 4)), "4 targets that are not 0 or 1"),
        (set_value("tournament", "target", np.nan), "train/validation rows without a target"),
    ],
)
def test_problems_name_the_round_and_the_problem(tmp_path, frames, change, message):
    folder = write_dir(tmp_path / "round", *change(*frames))
    with pytest.raises(DatasetError) as error:
        load_round_dataset(folder, round=42)
    assert str(error.value).startswith("round 42: ")
    assert message in str(error.value)


def test_missing_files_and_wrong_kinds(tmp_path, frames):
    with pytest.raises(DatasetError, match="round 3: dataset .* does not exist"):
        load_round_dataset(tmp_path / "nope", round=3)
    folder = tmp_path / "half"
    folder.mkdir()
    frames[0].to_csv(folder / "numerai_training_data.csv", index=False)
    with pytest.raises(DatasetError, match="numerai_tournament_data.csv .* not found"):
        load_round_dataset(folder)
    not_zip = tmp_path / "data.zip"
    not_zip.write_bytes(b"hello")
    with pytest.raises(DatasetError, match="neither a folder nor a zip file"):
        load_round_dataset(not_zip)
