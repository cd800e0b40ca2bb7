"""Burst: 1,000 submissions of one round arrive at once; time until every score is written.

The real ``new_submissions`` sensor and ``score_round`` job, in this process: a tick is evaluated
with ``dg.build_sensor_context`` (the deployment's store and files resources), its new partitions
are added and each ``RunRequest`` is executed with ``execute_in_process`` (its asset selection,
partition, run config and tags, run key included), as the daemon would, until no submission is
pending. Round: 45,000 tournament rows (18,000 validation, 18,000 test, 9,000 live) and 45,000
training rows. Submissions: one per user mostly (a few users submit twice), most of them
original model outputs of varied skill and spread, plus shuffled copies, near-copies and a few
files missing an id, so every outcome occurs.

Fast path: the pipeline as deployed (per-round prediction cache on).
Baseline: the same burst with ``NUMERAI_PREDICTION_CACHE=off``, in a fresh home with the same files
and documents. Both must write identical scores (exit 1 otherwise).

Setup (not timed): the files are rendered by two worker processes and hard-linked into each home's
uploads folder; the documents are inserted into each home's store with the same ``created``
times; a small warm-up burst loads numba's cache and Dagster's code paths first.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

import numerai_assets.batch.originality as originality_module
import numerai_assets.batch.prepare as prepare_module
import numerai_assets.pipeline.round_assets as round_assets_module
import numerai_assets.pipeline.scoring as scoring_module
import numerai_assets.scoring.round_decisions as decisions_module
from benchmarks._deploy import (
    SubmissionCsv,
    deployment,
    environment,
    link_tree,
    local_environ,
    scratch,
    sensor_tick,
    store_label,
    tournament_round,
    write_file,
)
from benchmarks._meter import Meter
from benchmarks._timing import Checks, header, line, ratio, run_one, seconds
from numerai_assets.batch import SubmissionFiles
from numerai_assets.datasets.synthetic import model_probabilities, write_round_zip
from numerai_assets.definitions import build_definitions
from numerai_assets.files import dataset_key
from numerai_assets.prediction_cache import RoundPredictionCache
from numerai_assets.scoring.comparison import Frontier
from numerai_assets.settings import Settings
from numerai_assets.store import SubmissionStore

ROUND = 1
SIZES = {"submissions": 1000, "tournament_rows": 45_000, "training_rows": 45_000}
QUICK_SIZES = {"submissions": 200, "tournament_rows": 10_000, "training_rows": 10_000}
WARMUP_SIZES = {"submissions": 6, "tournament_rows": 1_000, "training_rows": 1_000}
GOAL_SECONDS = 180
WORKERS = 2

# What the submissions are: shares of a burst (the rest are originals of new users).
SHUFFLED, NEAR_COPY, INVALID, RESUBMISSION = 0.07, 0.07, 0.01, 0.03

IO = (
    "files: read + parse (SubmissionFiles.load)",
    "store reads (get, round_submissions, ...)",
    "store writes (mark_pending, write_scores, ...)",
    "cache: append (sort + write + fsync)",
    "cache: open index + map",
    "round dataset: download + parse",
)
COMPUTE = (
    "concordance (score_concordance)",
    "originality (correlations, ks_counts)",
    "KMeans fit (cluster_round)",
)
OTHER = (
    "consistency",
    "comparison sets (Frontier.candidates)",
    "decide_originality",
)
STORE_READS = (
    "get",
    "unclaimed",
    "claimed",
    "mistyped_submissions",
    "round_submissions",
    "rounds",
    "leaderboard",
    "lease_of",
)
STORE_WRITES = (
    "insert_submission",
    "mark_pending",
    "write_scores",
    "mark_invalid",
    "mark_malformed",
    "request_scoring",
    "reconcile_leaderboard",
    "sync_leaderboard",
    "claim",
    "acquire_round",
    "renew_round",
    "release_round",
)
PREPARE_READ, CACHE_FILL_READ = "read by prepare_batch", "read by fill_cache"


def metered_functions() -> list[tuple[str, object, str]]:
    io_files, reads, writes, append, cache_open, dataset = IO
    concord, kernels, kmeans = COMPUTE
    consist, comparable, decide = OTHER
    return [
        (io_files, SubmissionFiles, "load"),
        *((reads, SubmissionStore, name) for name in STORE_READS),
        *((writes, SubmissionStore, name) for name in STORE_WRITES),
        (append, RoundPredictionCache, "add"),
        (cache_open, RoundPredictionCache, "__init__"),
        (cache_open, RoundPredictionCache, "matrices"),
        (dataset, round_assets_module, "fetch_round_dataset"),
        (dataset, round_assets_module, "load_round_dataset"),
        (concord, scoring_module, "score_concordance"),
        (kernels, originality_module, "correlations"),
        (kernels, originality_module, "ks_counts"),
        (kmeans, round_assets_module, "cluster_round"),
        (consist, prepare_module, "consistency"),
        (comparable, Frontier, "candidates"),
        (decide, decisions_module, "decide_originality"),
    ]


def observed_functions() -> list:
    def reader_and_created(files: object, submission: dict) -> tuple[str, datetime]:
        frame = sys._getframe(1)  # the nearest step on the stack is the reader
        while frame is not None and frame.f_code.co_name not in ("prepare_batch", "fill_cache"):
            frame = frame.f_back
        reader = (
            PREPARE_READ if frame and frame.f_code.co_name == "prepare_batch" else (CACHE_FILL_READ)
        )
        return reader, submission["created"]

    return [("file reads", SubmissionFiles, "load", reader_and_created)]


# The burst's submissions


@dataclass(frozen=True)
class Spec:
    index: int
    user: str
    kind: str  # original, shuffled, near-copy, invalid
    seed: int
    skill: float
    gamma: float  # predictions ** gamma: spreads the shapes apart
    source: int | None = None  # the original a copy is made from

    @property
    def key(self) -> str:
        return f"{ROUND}/{self.user}/{self.index:04d}-predictions.csv"


def plan(count: int, seed: int = 0) -> list[Spec]:
    """The burst, oldest first; copies only copy earlier originals."""
    rng = np.random.default_rng(seed)
    specs: list[Spec] = []
    originals: list[int] = []
    users: list[str] = []
    for k in range(count):
        u = rng.random()
        skill, gamma = float(rng.uniform(0.2, 3.0)), float(rng.uniform(0.6, 1.6))
        kind, source, user = "original", None, f"user{k:04d}"
        if len(originals) >= 5 and u < SHUFFLED + NEAR_COPY:
            kind = "shuffled" if u < SHUFFLED else "near-copy"
            source = originals[int(rng.integers(len(originals)))]
        elif u < SHUFFLED + NEAR_COPY + INVALID:
            kind = "invalid"
        elif users and u > 1.0 - RESUBMISSION:
            user = users[int(rng.integers(len(users)))]  # a second submission of that user
        if user not in users:
            users.append(user)
        specs.append(Spec(k, user, kind, 1000 + k, skill, gamma, source))
        if kind == "original":
            originals.append(k)
    return specs


def predictions_of(spec: Spec, specs: list[Spec], tournament: pd.DataFrame) -> np.ndarray:
    if spec.source is None:
        return model_probabilities(tournament, seed=spec.seed, skill=spec.skill) ** spec.gamma
    source = predictions_of(specs[spec.source], specs, tournament)
    rng = np.random.default_rng(10_000 + spec.index)
    if spec.kind == "shuffled":
        return rng.permutation(source)
    return np.clip(source + rng.normal(0.0, 0.05 * source.std(), source.shape), 0.0, 1.0)


_WORKER: dict = {}  # set before forking the writers


def _write_share(worker: int) -> int:
    specs, tournament, root = _WORKER["specs"], _WORKER["tournament"], _WORKER["root"]
    render = SubmissionCsv(tournament["id"].to_numpy())
    written = 0
    for spec in specs[worker::WORKERS]:
        data = render.render(predictions_of(spec, specs, tournament))
        if spec.kind == "invalid":  # drop the first row: one id of the round is missing
            first = data.index(b"\n", len(SubmissionCsv.HEADER))
            data = SubmissionCsv.HEADER + data[first + 1 :]
        write_file(root / spec.key, data)
        written += 1
    return written


def write_files(specs: list[Spec], tournament: pd.DataFrame, root: Path) -> int:
    """Every submission file under ``root/<key>``, in two forked worker processes."""
    _WORKER.update(specs=specs, tournament=tournament, root=root)
    pool = multiprocessing.get_context("fork").Pool(WORKERS)
    try:
        return sum(pool.map(_write_share, range(WORKERS)))
    finally:
        pool.close()  # not terminate(): Dagster's SIGTERM handler would print tracebacks
        pool.join()


def prepare_home(
    home: Path, uploads: Path, zip_path: Path, specs: list[Spec], cache: str | None
) -> dict[str, str]:
    """A fresh deployment holding the round's dataset, the files and the pending documents."""
    env = local_environ(home, **({"NUMERAI_PREDICTION_CACHE": cache} if cache else {}))
    deploy = deployment(env)
    settings = deploy.settings
    link_tree(uploads, settings.local_buckets_dir / settings.upload_bucket)
    deploy.buckets.upload_file(zip_path, settings.dataset_bucket, dataset_key(settings, ROUND))
    start = datetime.now(timezone.utc) - timedelta(seconds=5)
    for spec in specs:  # created 1 ms apart: the same order in every home
        deploy.store.insert_submission(
            username=spec.user,
            round=ROUND,
            filename=spec.key,
            created=start + timedelta(milliseconds=spec.index),
        )
    return env


# Scoring the burst as the daemon would


@dataclass
class RunTimes:
    submissions: int
    wall: float
    steps: dict[str, float]  # step key -> STEP_START..STEP_SUCCESS seconds
    prepared: list[datetime] = field(default_factory=list)  # files read by prepare_batch
    filled: list[datetime] = field(default_factory=list)  # files read by fill_cache


@dataclass
class BurstResult:
    total: float = 0.0
    ticks: list[tuple[float, float]] = field(default_factory=list)  # (wall, metered inside)
    runs: list[RunTimes] = field(default_factory=list)
    meter: Meter = field(default_factory=Meter)
    scores: dict[str, tuple] = field(default_factory=dict)  # file key -> what was written
    pending: int = 0


@contextmanager
def stderr_to(path: Path) -> Iterator[None]:
    """Send file descriptor 2 to ``path``; on an error, show its last lines before raising."""
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 2)
    try:
        yield
    except BaseException:
        sys.stderr.flush()
        os.dup2(saved, 2)
        tail = path.read_text(errors="replace").splitlines()[-40:]
        print("\n".join(["  Dagster's log, last lines:", *tail]), flush=True)
        raise
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def step_windows(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    """Each step's STEP_START → STEP_SUCCESS (or FAILURE) time, from the run's event log."""
    start_types = {dg.DagsterEventType.STEP_START}
    end_types = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    started: dict[str, float] = {}
    windows: dict[str, float] = {}
    for entry in instance.all_logs(run_id, of_type=start_types | end_types):
        key = entry.step_key or "?"
        if entry.dagster_event.event_type in start_types:
            started[key] = entry.timestamp
        elif key in started:
            windows[key] = windows.get(key, 0.0) + entry.timestamp - started.pop(key)
    return windows


def score_burst(env: dict[str, str], instance_dir: Path) -> BurstResult:
    """Tick the sensor and run what it requests until nothing is pending; time only that.

    Dagster's console log (every event, at DEBUG) goes to ``instance_dir/dagster.log``.
    """
    out = BurstResult()
    defs = build_definitions(env)
    job = defs.resolve_job_def("score_round")
    store = deployment(env).store
    instance_dir.mkdir(parents=True, exist_ok=True)
    with (
        environment(env),
        stderr_to(instance_dir / "dagster.log"),
        dg.instance_for_test(temp_dir=str(instance_dir)) as instance,
        out.meter.patched(metered_functions(), observed_functions()),
    ):
        cursor = None
        for _ in range(10):  # a tick, its runs; again while anything is pending
            started = time.perf_counter()
            metered = out.meter.total()
            requests, cursor = sensor_tick(instance, defs, cursor)
            out.ticks.append((time.perf_counter() - started, out.meter.total() - metered))
            for request in requests:
                seen = dg.RunsFilter(tags={"dagster/run_key": request.run_key})
                if instance.get_run_records(seen):
                    continue
                events = len(out.meter.events)
                run_start = time.perf_counter()
                run = job.execute_in_process(
                    run_config=request.run_config,
                    instance=instance,
                    partition_key=request.partition_key,
                    asset_selection=request.asset_selection,
                    tags={**request.tags, "dagster/run_key": request.run_key},
                )
                times = RunTimes(
                    int(request.tags["submissions"]),
                    time.perf_counter() - run_start,
                    step_windows(instance, run.run_id),
                )
                for _, (reader, created) in out.meter.events[events:]:
                    (times.prepared if reader == PREPARE_READ else times.filled).append(created)
                out.runs.append(times)
            out.total += time.perf_counter() - started
            out.pending = sum(  # not timed: the benchmark's check
                1
                for d in store.round_submissions(ROUND)
                if not d.get("invalid") and (d.get("original") or {}).get("pending")
            )
            if not out.pending:
                break
    out.scores = written_scores(store)
    return out


def written_scores(store: SubmissionStore) -> dict[str, tuple]:
    """Per file key: what the pipeline wrote (ids of matches replaced by their file keys)."""
    docs = store.round_submissions(ROUND)
    key_of = {str(d["_id"]): d["filename"] for d in docs}
    scores = {}
    for doc in docs:
        concordant, original = doc.get("concordant") or {}, doc.get("original") or {}
        matches = tuple(
            (key_of.get(m["submission_id"]), m["username"], m["correlation"], m["ks"])
            for m in original.get("matches") or []
        )
        scores[doc["filename"]] = (
            (doc.get("invalid") or {}).get("reason"),
            doc.get("consistency"),
            concordant.get("pending"),
            concordant.get("value"),
            concordant.get("score"),
            original.get("pending"),
            original.get("value"),
            original.get("reason"),
            matches,
        )
    return scores


def outcomes(scores: dict[str, tuple]) -> str:
    counts: Counter = Counter()
    for invalid, _, _, concordant, _, _, _, reason, _ in scores.values():
        counts["invalid" if invalid else (reason or "original")] += 1
        counts["not concordant"] += concordant is False and not invalid
    order = ("original", "correlated", "duplicate", "similar", "invalid", "not concordant")
    return ", ".join(f"{name} {counts[name]}" for name in order)


# Output


def report(result: BurstResult, label: str) -> None:
    meter, count = result.meter, len(result.scores)
    steps_total = sum(sum(r.steps.values()) for r in result.runs)
    tick_wall = sum(w for w, _ in result.ticks)
    tick_metered = sum(m for _, m in result.ticks)
    metered = meter.total()
    outside = result.total - steps_total - tick_wall
    line(
        f"{label}: {count:,} submissions, first tick → last score",
        seconds(result.total),
        f"goal <= {GOAL_SECONDS // 60} min on this 2-core machine",
    )
    line(
        "runs (batch size)",
        f"{len(result.runs):8d}  ",
        f"({Settings.from_env().batch_size}); {len(result.ticks)} sensor tick(s), "
        f"{seconds(tick_wall).strip()} in ticks",
    )
    for k, run in enumerate(result.runs, 1):
        later = sum(c > max(run.prepared, default=c) for c in run.filled)
        line(
            f"  run {k}: {run.submissions} submissions, wall",
            seconds(run.wall),
            f"files parsed: {len(run.prepared)} by prepare_batch, {len(run.filled)} by "
            f"fill_cache ({later} of them newer than the whole batch)",
        )
    print("  step windows (STEP_START → STEP_SUCCESS, summed over runs):")
    windows: Counter = Counter()
    for run in result.runs:
        windows.update(run.steps)
    for key, value in windows.most_common():
        line(f"    {key}", seconds(value))

    def share(value: float) -> str:
        return f"{100 * value / result.total:5.1f}% of total"

    groups = [("I/O", IO), ("compute", COMPUTE), ("other scoring Python (metered)", OTHER)]
    for name, categories in groups:
        total = meter.total(categories)
        line(name, seconds(total), share(total))
        for category in categories:
            if meter.calls.get(category):
                calls = meter.calls[category]
                each = meter.seconds[category] / calls
                line(
                    f"  {category}",
                    seconds(meter.seconds[category]),
                    f"{calls:,} calls, {seconds(each).strip()} each",
                )
    overhead_out = outside + tick_wall - tick_metered
    overhead_in = steps_total - (metered - tick_metered)
    line("Dagster overhead", seconds(overhead_out + overhead_in), share(overhead_out + overhead_in))
    line("  outside steps: ticks, run start/finish, events", seconds(overhead_out))
    line("  inside steps, not metered: inputs/outputs, logs", seconds(overhead_in))
    line("outcomes", "", outcomes(result.scores))


METHOD = """\
  method: each I/O and compute function named below is wrapped (monkeypatched) for the burst and
  its wall time summed (outermost metered call only, so nothing counts twice). Dagster's event
  log gives each step's STEP_START → STEP_SUCCESS window. Dagster overhead = the wall time
  outside step windows (sensor ticks less their metered store reads, run start and finish, event
  writes between steps) + the time inside step windows that no metered call covers (loading
  inputs and handling outputs through the IO managers, event logging, op glue)."""


def main(quick: bool = False) -> bool:
    sizes = QUICK_SIZES if quick else SIZES
    count, rows = sizes["submissions"], sizes["tournament_rows"]
    header(
        f"burst: {count:,} submissions of one round ({rows:,} tournament rows, "
        f"{sizes['training_rows']:,} training), real sensor + scoring job in-process"
    )
    check = Checks()
    with scratch("burst") as tmp:
        warmup_home = tmp / "warmup"
        stage(warmup_home, WARMUP_SIZES, tmp / "warmup-files")
        score_burst(local_environ(warmup_home / "home"), tmp / "warmup-dagster")
        line("warm-up burst (numba cache, Dagster code paths)", "", "not timed")

        start = time.perf_counter()
        specs, uploads, zip_path = stage(None, sizes, tmp / "files")
        line(
            f"setup: round zip + {count:,} files ({WORKERS} processes)",
            seconds(time.perf_counter() - start),
            "not timed",
        )
        start = time.perf_counter()
        fast_env = prepare_home(tmp / "cached", uploads, zip_path, specs, cache=None)
        line("store", "", store_label(fast_env))
        slow_env = prepare_home(tmp / "uncached", uploads, zip_path, specs, cache="off")
        line(
            f"setup: {count:,} documents into each of 2 homes",
            seconds(time.perf_counter() - start),
            "not timed",
        )

        print(METHOD)
        print("  -- prediction cache on (as deployed)")
        fast = score_burst(fast_env, tmp / "dagster-cached")
        report(fast, "total")
        print("  -- baseline: NUMERAI_PREDICTION_CACHE=off, fresh home, same files")
        slow = score_burst(slow_env, tmp / "dagster-uncached")
        report(slow, "total")
        ratio(slow.total, fast.total, "(cache off / cache on)")

        check(len(fast.scores) == len(slow.scores) == count, f"{count:,} submissions in each store")
        check(fast.pending == 0 and slow.pending == 0, "no submission pending after either burst")
        differ = [k for k in fast.scores if fast.scores[k] != slow.scores.get(k)]
        check(
            not differ,
            "identical scores per submission (reasons, consistency, concordance, originality, "
            "matched users and correlations/KS)"
            + (f": {len(differ)} differ, e.g. {differ[0]}" if differ else ""),
        )
    return check.ok


def stage(home: Path | None, sizes: dict, uploads: Path) -> tuple[list[Spec], Path, Path]:
    """The round's zip and every submission file (and, with ``home``, a home holding them)."""
    training, tournament = tournament_round(sizes["tournament_rows"], sizes["training_rows"])
    specs = plan(sizes["submissions"])
    write_files(specs, tournament, uploads)
    zip_path = write_round_zip(training, tournament, uploads.parent / f"{uploads.name}.zip")
    if home is not None:
        prepare_home(home / "home", uploads, zip_path, specs, cache=None)
    return specs, uploads, zip_path


if __name__ == "__main__":
    run_one(main, __doc__.splitlines()[0])
