"""Memory: peak RSS of one scoring run of 1 new submission against N = 5,000 earlier ones.

The round has 45,000 tournament rows (18,000 validation, 18,000 test, 9,000 live) and, kept
modest, 45,000 training rows (only the clustering reads them). Setup, not measured: N earlier
submissions, all original, one per user, inserted as scored documents in one batch; their
predictions (varied model outputs) appended straight to the round's prediction cache in chunks,
in the dataset's id order, so the run reads none of their files (their files are not written: the
cache is pre-filled, as after the runs that scored them); the round's data and clusters
materialized by a setup run; the new submission uploaded (file + pending document).

Measured: the run that scores the new submission (``submission_scores`` alone, the batch's run
config, ``execute_in_process`` against a ``DAGSTER_HOME`` instance) in a child process, started by
a fresh launcher process that waits for nothing else and reports
``getrusage(RUSAGE_CHILDREN).ru_maxrss``. For context: the same for a child that only imports the
package and loads the round's data and clusters (the fixed cost), and for the setup run.

Baseline for the ratio: the bytes of the earlier predictions the run compares against, both
matrices (N x 45,000 float64, values and sorted copy). The run's decision is checked against
``originality`` computed here over the same matrices (exit 1 if they disagree).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from bson import ObjectId

from benchmarks._deploy import (
    REPO,
    deployment,
    local_environ,
    publish_dataset,
    scratch,
    store_label,
    tournament_round,
)
from benchmarks._timing import Checks, header, line, run_one, seconds
from numerai_assets.cli.context import Deployment
from numerai_assets.cli.submissions import upload_submission
from numerai_assets.datasets.synthetic import _true_weights, model_probabilities, submission_csv
from numerai_assets.prediction_cache import RoundPredictionCache
from numerai_assets.scoring.originality import originality
from numerai_assets.scoring.submission import read_submission
from numerai_assets.store import open_database, write_lock
from numerai_assets.store.documents import (
    SUBMISSIONS,
    concordant_status,
    new_submission,
    original_status,
    to_storage,
)

ROUND = 1
ROWS, TRAINING_ROWS = 45_000, 45_000
EARLIER, QUICK_EARLIER = 5_000, 1_000
CHUNK = 250  # earlier predictions generated and appended to the cache at a time
GOAL_BYTES = 1 << 30
KIB = 1024

# The launcher: run the child, then report the peak RSS of the children it waited for (only
# that one), in KiB on Linux, and the child's exit code.
LAUNCHER = """\
import resource, subprocess, sys, time
start = time.perf_counter()
with open(sys.argv[1], "ab") as log:
    code = subprocess.run(sys.argv[2:], stdout=log, stderr=log).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code, time.perf_counter() - start)
"""


def measured_child(env: dict[str, str], log: Path, *args: str) -> tuple[int, int, float]:
    """(peak RSS in bytes, exit code, seconds) of ``python -m benchmarks._memory_child ARGS``."""
    child = [sys.executable, "-m", "benchmarks._memory_child", *args]
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(log), *child],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    peak_kib, code, elapsed = done.stdout.split()[-3:]
    return int(peak_kib) * KIB, int(code), float(elapsed)


def earlier_predictions(tournament: pd.DataFrame, first: int, count: int) -> np.ndarray:
    """``count`` participants' predictions, shape (count, rows): ``model_probabilities``'s model
    (a noisy linear guess of the hidden weights, through a logistic), vectorized over users, with
    each user's own skill and a power that spreads the shapes apart."""
    rng = np.random.default_rng(first)
    x = tournament[[c for c in tournament.columns if c.startswith("feature")]].to_numpy() - 0.5
    guess = _true_weights(x.shape[1])[:, None] + rng.normal(0.0, 0.5, (x.shape[1], count))
    skill = rng.uniform(0.2, 3.0, count)
    gamma = rng.uniform(0.6, 1.6, count)
    logits = (x @ guess + rng.normal(0.0, 0.2, (len(x), count))) * skill
    p = (1.0 / (1.0 + np.exp(-logits))) ** gamma
    return np.ascontiguousarray(p.T.round(6))


def insert_earlier(env: dict[str, str], count: int, start: datetime) -> list[str]:
    """``count`` scored, original documents of different users, in one ``insert_many``."""
    settings = deployment(env).settings
    database = open_database(settings)
    docs, ids = [], []
    for k in range(count):
        doc = new_submission(
            ObjectId(),
            f"early{k:05d}",
            ROUND,
            f"{ROUND}/early{k:05d}/predictions.csv",  # never written: the cache has them
            start + timedelta(milliseconds=k),
        )
        doc["concordant"] = concordant_status(
            {"value": True, "score": 0.05, "clusters": []}, start, "setup"
        )
        doc["original"] = original_status(
            {"value": True, "reason": None, "matches": []}, start, "setup"
        )
        docs.append(to_storage(doc))
        ids.append(str(doc["_id"]))
    with write_lock(database):
        database[SUBMISSIONS].insert_many(docs)
    return ids


def main(quick: bool = False) -> bool:
    count = QUICK_EARLIER if quick else EARLIER
    compared_bytes = count * ROWS * 8 * 2
    header(
        f"memory: peak RSS of one scoring run, 1 new submission against N = {count:,} earlier "
        f"({ROWS:,} tournament rows, {TRAINING_ROWS:,} training rows)"
    )
    check = Checks()
    with scratch("memory") as tmp:
        free = shutil.disk_usage(tmp).free
        if free < compared_bytes * 1.5:
            print(f"  not enough space in /tmp: {free / 1e9:.1f} GB free", flush=True)
            return False
        dagster_home = tmp / "dagster_home"
        dagster_home.mkdir()
        shutil.copy(REPO / "deploy/local/dagster.yaml", dagster_home / "dagster.yaml")
        env = local_environ(tmp / "home", DAGSTER_HOME=str(dagster_home))
        line("store", "", store_label(env))
        log, out = tmp / "children.log", tmp / "children.jsonl"
        try:
            measure(env, count, log, out, check)
        except Exception:
            tail = log.read_text(errors="replace").splitlines()[-40:] if log.exists() else []
            print("\n".join(["  children's log, last lines:", *tail]), flush=True)
            raise
    return check.ok


def measure(env: dict[str, str], count: int, log: Path, out: Path, check: Checks) -> None:
    compared_bytes = count * ROWS * 8 * 2
    start = time.perf_counter()
    training, tournament = tournament_round(ROWS, TRAINING_ROWS)
    deploy = deployment(env)
    publish_dataset(deploy, ROUND, training, tournament)
    ids = tournament["id"].to_numpy()
    created = datetime.now(timezone.utc) - timedelta(hours=1)
    earlier_ids = insert_earlier(env, count, created)
    cache = RoundPredictionCache(deploy.settings.home / "prediction_cache", ROUND, ids)
    for first in range(0, count, CHUNK):
        block = earlier_predictions(tournament, first, min(CHUNK, count - first))
        cache.add(zip(earlier_ids[first : first + len(block)], block, strict=True))
    new = model_probabilities(tournament, seed=424242, skill=1.7)
    data = submission_csv(ids, new)
    new_id = str(upload_submission(deploy, round=ROUND, user="newcomer", data=data))
    line(
        f"setup: round, {count:,} documents, cache of {compared_bytes / 1e9:.2f} GB",
        seconds(time.perf_counter() - start),
        "not measured",
    )
    setup_rss, setup_code, elapsed = measured_child(env, log, "setup", "--out", str(out))
    line("setup run: data + clusters, peak RSS", mib(setup_rss), f"{elapsed:.1f} s; context")
    fixed_rss, fixed_code, elapsed = measured_child(env, log, "fixed", "--out", str(out))
    line("fixed cost: import + load data and clusters", mib(fixed_rss), f"{elapsed:.1f} s")
    run_rss, run_code, elapsed = measured_child(env, log, "score", new_id, "--out", str(out))
    line(
        f"scoring run: 1 new vs {count:,} earlier, peak RSS",
        mib(run_rss),
        f"{elapsed:.1f} s; goal < 1 GiB ({100 * run_rss / GOAL_BYTES:.0f}% of it)",
    )
    line("  of which above the fixed cost", mib(run_rss - fixed_rss))
    line(
        f"baseline: earlier predictions, {count:,} x {ROWS:,} x 8 B x 2",
        mib(compared_bytes),
        "both matrices, as if held in memory",
    )
    line("ratio (peak RSS / baseline bytes)", f"{run_rss / compared_bytes:8.3f}x", "lower: better")
    check(setup_code == 0, "setup run (data + clusters) succeeded")
    check(fixed_code == 0, "fixed-cost child loaded the round's data and clusters")
    check(run_code == 0, "scoring run succeeded")

    run_id = json.loads(out.read_text().splitlines()[-1])["run_id"]
    verify(env, deploy, run_id, new_id, earlier_ids, cache, ids, check)


def verify(
    env: dict[str, str],
    deploy: Deployment,
    run_id: str,
    new_id: str,
    earlier_ids: list[str],
    cache: RoundPredictionCache,
    tournament_ids: np.ndarray,
    check: Checks,
) -> None:
    """The run compared with all N, read no earlier file, and decided as ``originality`` does."""
    count = len(earlier_ids)
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        messages = [e.user_message for e in instance.all_logs(run_id)]
    check(
        any(f"last compared with {count})" in m for m in messages),
        f"the run compared the new submission with all {count:,} earlier ones",
    )
    check(
        not any(m.startswith("prediction cache:") for m in messages),
        "no earlier file was read (the cache was pre-filled)",
    )
    doc = deploy.store.get(new_id)
    raw = deploy.buckets.read_bytes(deploy.settings.upload_bucket, doc["filename"])
    new = read_submission(raw, tournament_ids)
    predictions, sorted_rows = cache.matrices()
    want = originality(
        new, predictions, earlier_sorted_rows=sorted_rows, rows=cache.rows_of(earlier_ids)
    )
    got = doc.get("original") or {}
    want_matches = sorted(earlier_ids[m.index] for m in want.matches)
    got_matches = sorted(m["submission_id"] for m in got.get("matches") or [])
    check(
        not got.get("pending")
        and got.get("value") == want.original
        and got.get("reason") == want.reason
        and got_matches == want_matches,
        f"decision equal to originality() here: original={want.original}, reason={want.reason}, "
        f"{len(want_matches)} matches",
    )


def mib(value: float) -> str:
    return f"{value / 2**20:8.0f} MiB"


if __name__ == "__main__":
    run_one(main, __doc__.splitlines()[0])
