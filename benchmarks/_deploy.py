"""Shared by the pipeline benchmarks (burst, latency, memory): scratch space, a local deployment
on it, a synthetic round, and submission files written fast.

Every benchmark runs on local state (folders standing in for S3) under a scratch folder
``/tmp/bench-*`` that it removes at the end. The submissions go to the embedded store, or, when
this process's ``MONGO_URL`` names a MongoDB server (``.ci/mongo-server run -- python -m
benchmarks.burst``), to a fresh database on it per home, dropped at the end; every report names
the store that produced its figures.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from numerai_assets.cli.context import Deployment
from numerai_assets.datasets.synthetic import make_round, write_round_zip
from numerai_assets.files import buckets_from_settings, dataset_key
from numerai_assets.settings import DEPLOYMENT_VARIABLES, Settings
from numerai_assets.store import SubmissionStore, open_database, redact_url
from numerai_assets.store.connection import MONGO_SCHEMES, url_scheme

REPO = Path(__file__).resolve().parents[1]
_databases: list[Settings] = []  # MongoDB databases made by local_environ, dropped by scratch


@contextmanager
def scratch(name: str) -> Iterator[Path]:
    """A fresh ``/tmp/bench-<name>-*`` folder, removed afterwards whatever happens (with any
    MongoDB database the benchmark made)."""
    path = Path(tempfile.mkdtemp(prefix=f"bench-{name}-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        while _databases:
            settings = _databases.pop()
            open_database(settings).client.drop_database(settings.mongo_db_name)


def mongo_server_url() -> str | None:
    """This process's ``MONGO_URL`` when it names a MongoDB server (not the embedded store)."""
    url = Settings.from_env().mongo_url
    return url if url is not None and url_scheme(url) in MONGO_SCHEMES else None


def local_environ(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment, minus service settings, with ``NUMERAI_ASSETS_HOME=home``;
    with a MongoDB server at ``MONGO_URL``, a fresh database of its own there."""
    env = {k: v for k, v in os.environ.items() if k not in DEPLOYMENT_VARIABLES}
    env["NUMERAI_ASSETS_HOME"] = str(home)
    url = mongo_server_url()
    if url is not None:
        env["MONGO_URL"] = url
        env["MONGO_DB_NAME"] = f"bench_{uuid.uuid4().hex[:12]}"
        _databases.append(Settings.from_env(env))
    env.update(extra)
    return env


@contextmanager
def environment(environ: Mapping[str, str]) -> Iterator[None]:
    """``environ`` as this process's environment meanwhile: a resource given as ``dg.EnvVar``
    (every setting that is set, ``MONGO_URL`` among them) reads it from ``os.environ``."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def store_label(environ: Mapping[str, str]) -> str:
    """Which store a deployment on ``environ`` keeps its submissions in, for the report."""
    settings = Settings.from_env(environ)
    if settings.mongo_url is None:
        return f"embedded (montydb on SQLite) in {settings.embedded_store_dir}"
    info = open_database(settings).client.server_info()
    server = f"MongoDB {info.get('version', '?')}"
    if "secantusVersion" in info:
        server = f"SecantusDB {info['secantusVersion']} (reports MongoDB {info.get('version')})"
    return f"{server} over the wire at {redact_url(settings.mongo_url)}"


def deployment(environ: Mapping[str, str]) -> Deployment:
    """The store and buckets ``environ`` names (what ``Deployment.from_env`` builds)."""
    settings = Settings.from_env(environ)
    store = SubmissionStore(open_database(settings))
    store.ensure_indexes()
    return Deployment(settings, store, buckets_from_settings(settings))


def tournament_round(tournament_rows: int, training_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A synthetic round split 40% validation, 40% test, 20% live."""
    return make_round(
        training_rows=training_rows,
        validation_rows=tournament_rows * 2 // 5,
        test_rows=tournament_rows * 2 // 5,
        live_rows=tournament_rows - 2 * (tournament_rows * 2 // 5),
    )


def publish_dataset(
    deployment: Deployment, round: int, training: pd.DataFrame, tournament: pd.DataFrame
) -> Path:
    """Put the round's zip where the pipeline downloads it from; returns the stored file."""
    settings = deployment.settings
    key = dataset_key(settings, round)
    with tempfile.TemporaryDirectory(dir=settings.home.parent) as tmp:
        path = write_round_zip(training, tournament, Path(tmp) / "numerai_datasets.zip")
        deployment.buckets.upload_file(path, settings.dataset_bucket, key)
    return Path(deployment.buckets.describe(settings.dataset_bucket, key))


class SubmissionCsv:
    """``id,probability`` files for one round's ids, rendered with numpy instead of ``to_csv``.

    The ids, commas and newlines are laid out once; each file only scatters the digits of its
    probabilities (printed as ``d.dddddd``: the synthetic predictions carry 6 decimals) into a
    copy of that template. About 100x faster than ``DataFrame.to_csv`` for a 45,000-row file.
    """

    HEADER = b"id,probability\n"
    DIGITS = 8  # "0.123456"

    def __init__(self, ids: np.ndarray) -> None:
        rows = [f"{i},0.000000\n".encode() for i in ids]
        self.template = np.frombuffer(self.HEADER + b"".join(rows), dtype=np.uint8)
        ends = len(self.HEADER) + np.cumsum([len(r) for r in rows])
        first = ends - 1 - self.DIGITS  # where each row's "0.000000" starts
        self.units = first
        self.decimals = first[:, None] + 2 + np.arange(6)
        self.powers = 10 ** np.arange(5, -1, -1)

    def render(self, probabilities: np.ndarray) -> bytes:
        micro = np.rint(np.clip(probabilities, 0.0, 1.0) * 1e6).astype(np.int64)
        out = self.template.copy()
        out[self.units] = 48 + micro // 1_000_000
        out[self.decimals] = 48 + (micro % 1_000_000)[:, None] // self.powers % 10
        return out.tobytes()


def write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def link_tree(source: Path, dest: Path) -> int:
    """Hard-link every file under ``source`` into ``dest`` (same layout); returns the count."""
    count = 0
    for directory, _, names in os.walk(source):
        target = dest / Path(directory).relative_to(source)
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            os.link(Path(directory) / name, target / name)
            count += 1
    return count


def sensor_tick(
    instance: dg.DagsterInstance, defs: dg.Definitions, cursor: str | None
) -> tuple[list[dg.RunRequest], str | None]:
    """One tick of ``new_submissions`` evaluated here, as the daemon would, with the partitions
    it asks for added: its run requests and the cursor to pass to the next tick."""
    resources = {"store": defs.resources["store"], "files": defs.resources["files"]}
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources=resources
    ) as context:
        result = defs.resolve_sensor_def("new_submissions")(context)
    if isinstance(result, dg.SkipReason):
        return [], cursor
    for partitions in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(partitions.partitions_def_name, partitions.partition_keys)
    return list(result.run_requests), result.cursor or cursor
