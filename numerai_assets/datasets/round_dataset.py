"""A round's dataset: the training and tournament rows, read from a folder or a zip and checked.

The original tournament shipped each round as ``<round>/numerai_datasets.zip`` holding
``numerai_training_data.csv`` and ``numerai_tournament_data.csv``; we also accept those files
compressed (``.csv.bz2``/``.csv.gz``) or as Parquet, in a folder or in the zip. Ids are kept as
strings so integer and string ids align with submission files the same way.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pandas is imported where a table is read: loading the code stays fast
    import pandas as pd

TRAINING = "numerai_training_data"
TOURNAMENT = "numerai_tournament_data"
SUFFIXES = (".csv", ".csv.bz2", ".csv.gz", ".parquet")
SPLITS = ("validation", "test", "live")
KEY_COLUMNS = ("id", "era", "data_type")


class DatasetError(ValueError):
    """The round's dataset is missing or malformed; the message names the round and the problem."""


@dataclass(frozen=True)
class RoundDataset:
    """A round's rows. ``tournament`` keeps the file's order: submissions are aligned to it."""

    training: pd.DataFrame
    tournament: pd.DataFrame
    features: tuple[str, ...]
    source: str

    @property
    def tournament_ids(self) -> np.ndarray:
        return self.tournament["id"].to_numpy()

    @property
    def data_types(self) -> np.ndarray:
        return self.tournament["data_type"].to_numpy()

    def all_features(self) -> np.ndarray:
        """Training + tournament features, the rows the round's clusters are fitted on."""
        columns = list(self.features)
        return np.vstack([self.training[columns].to_numpy(), self.tournament[columns].to_numpy()])

    def validation_rows(self) -> np.ndarray:
        """Positions (in tournament order) of the validation rows, which have targets."""
        return np.flatnonzero(self.data_types == "validation")

    def summary(self) -> dict[str, object]:
        """Counts people look for in the UI: rows per split, eras, features."""
        splits = self.tournament["data_type"].value_counts()
        return {
            "training_rows": len(self.training),
            **{f"{name}_rows": int(splits.get(name, 0)) for name in SPLITS},
            "training_eras": int(self.training["era"].nunique()),
            "validation_eras": int(
                self.tournament.loc[self.tournament["data_type"] == "validation", "era"].nunique()
            ),
            "features": len(self.features),
            "source": self.source,
        }


def _read_table(name: str, opener, suffix: str) -> pd.DataFrame:  # noqa: ANN001
    import pandas as pd

    with opener() as handle:
        if suffix == ".parquet":
            frame = pd.read_parquet(handle)
        else:
            compression = {".csv.bz2": "bz2", ".csv.gz": "gzip"}.get(suffix)
            frame = pd.read_csv(handle, compression=compression, dtype={"id": str, "era": str})
    if "id" in frame:
        frame["id"] = frame["id"].astype(str)
    return frame


def _find(names: list[str], stem: str) -> tuple[str, str] | None:
    for suffix in SUFFIXES:
        for name in names:
            if PurePosixPath(name).name == stem + suffix:
                return name, suffix
    return None


def _read_tables(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    if path.is_dir():
        names = [str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()]

        def opener_for(name: str):  # noqa: ANN202
            return lambda: open(path / name, "rb")

        archive = None
    elif zipfile.is_zipfile(path):
        archive = zipfile.ZipFile(path)
        names = archive.namelist()

        def opener_for(name: str):  # noqa: ANN202
            return lambda: archive.open(name)
    else:
        raise DatasetError(f"{path} is neither a folder nor a zip file")
    try:
        tables = []
        for stem in (TRAINING, TOURNAMENT):
            found = _find(names, stem)
            if found is None:
                raise DatasetError(
                    f"{stem}.csv (or .csv.bz2, .csv.gz, .parquet) not found in {path}"
                )
            tables.append(_read_table(found[0], opener_for(found[0]), found[1]))
        return tables[0], tables[1]
    finally:
        if archive is not None:
            archive.close()


def _check(training: pd.DataFrame, tournament: pd.DataFrame) -> tuple[str, ...]:
    """Every problem that would make scoring wrong, as one DatasetError."""
    import pandas as pd

    problems = []
    features: tuple[str, ...] = ()
    for name, frame in (("training", training), ("tournament", tournament)):
        missing = [c for c in (*KEY_COLUMNS, "target") if c not in frame.columns]
        if missing:
            problems.append(f"{name} data has no column {', '.join(missing)}")
    train_features = tuple(c for c in training.columns if c.startswith("feature"))
    tournament_features = tuple(c for c in tournament.columns if c.startswith("feature"))
    if not train_features:
        problems.append("training data has no feature columns (feature1, feature2, ...)")
    elif train_features != tournament_features:
        problems.append(
            f"training and tournament data have different feature columns "
            f"({len(train_features)} vs {len(tournament_features)})"
        )
    else:
        features = train_features
    if problems:
        raise DatasetError("; ".join(problems))

    train_types = set(training["data_type"].astype(str).unique()) - {"train"}
    if train_types:
        problems.append(f"training data has data_type {sorted(train_types)}; expected 'train'")
    tournament_types = set(tournament["data_type"].astype(str).unique()) - set(SPLITS)
    if tournament_types:
        problems.append(
            f"tournament data has data_type {sorted(tournament_types)}; expected one of {SPLITS}"
        )
    ids = pd.concat([training["id"], tournament["id"]], ignore_index=True)
    repeated = ids[ids.duplicated()].unique()
    if len(repeated):
        problems.append(
            f"{len(repeated)} ids appear more than once (e.g. {', '.join(repeated[:5])})"
        )
    for name, frame in (("training", training), ("tournament", tournament)):
        values = frame[list(features)].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        bad_columns = [
            f for f, ok in zip(features, np.isfinite(values).all(axis=0), strict=True) if not ok
        ]
        if bad_columns:
            problems.append(
                f"{name} features {', '.join(bad_columns[:5])} have non-numeric or missing values"
            )
        else:
            frame[list(features)] = values
        targets = pd.to_numeric(frame["target"], errors="coerce")
        needs_target = (frame["data_type"] != "live") & (frame["data_type"] != "test")
        present = frame["target"].notna() & (frame["target"].astype(str).str.strip() != "")
        bad = present & ~targets.isin([0, 1])
        if bad.any():
            problems.append(f"{name} data has {int(bad.sum())} targets that are not 0 or 1")
        absent = needs_target & ~present
        if absent.any():
            problems.append(
                f"{name} data has {int(absent.sum())} train/validation rows without a target"
            )
        frame["target"] = targets
    if problems:
        raise DatasetError("; ".join(problems))
    return features


def load_round_dataset(path: str | Path, *, round: int | str | None = None) -> RoundDataset:
    """Read and check a round's dataset from a folder or a zip file.

    Raises :class:`DatasetError` naming the round (when given) and every problem found.
    """
    path = Path(path)
    label = f"round {round}: " if round is not None else ""
    if not path.exists():
        raise DatasetError(f"{label}dataset {path} does not exist")
    try:
        training, tournament = _read_tables(path)
        features = _check(training, tournament)
    except DatasetError as error:
        raise DatasetError(f"{label}{error}") from None
    except (ValueError, OSError, zipfile.BadZipFile, KeyError) as error:
        raise DatasetError(f"{label}cannot read dataset {path}: {error}") from None
    for frame in (training, tournament):
        frame["era"] = frame["era"].astype(str)
        frame["data_type"] = frame["data_type"].astype(str)
    return RoundDataset(
        training.reset_index(drop=True), tournament.reset_index(drop=True), features, str(path)
    )
