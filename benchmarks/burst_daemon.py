"""Burst through the daemon: 1,000 submissions of one round arrive at once into a running
deployment; time until every decision is stored.

What ``make run`` starts: ``dg dev -w workspace.yaml`` (the webserver; the daemon with the
``new_submissions`` sensor, the queued run coordinator with the one-run-per-round limit, the
default run launcher, the code servers) on an instance made from ``deploy/local/dagster.yaml``,
with the product's default settings. The round (45,000 tournament rows) is seeded and scored
first (warm-up: its data and clusters materialized); then the burst's files are put in the
uploads bucket and their documents inserted, all created within a few milliseconds, each
followed by the upload's request for its run as ``numerai-assets submit`` makes it
(``launch_on_upload``: the first asks, the others find work waiting and leave it to the sensor),
and the clock runs from the first insert until no submission is pending. Split, from the run
records: the sensor (first insert → first run created), each run's queue wait (created →
started: dequeue and the run process booting) and its run time, and the rest (the gaps between
runs: waiting for the next tick, the round's limit).

Reference, in the same process: ``benchmarks.burst``'s in-process figure (no daemon, no queue,
no run processes) is what the same work costs without them.

Then, into the round now decided, one ordinary upload and one late upload (created before
every other, so every later submission is decided again), each stored and asking for its run,
timed until the whole round is decided again. ``--submissions N`` sets the burst's size (issue
16's round of 2,000 under ``dg dev``: ``--submissions 2000``).

Check (exit 1 otherwise): every submission decided, none left pending, every run succeeded.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import dagster as dg

from benchmarks._deploy import REPO, deployment, link_tree, local_environ, scratch, store_label
from benchmarks._timing import Checks, header, line, run_one, seconds
from benchmarks.burst import QUICK_SIZES, ROUND, SIZES, stage
from benchmarks.latency import dagster_dev, free_port, scored, wait_idle
from numerai_assets.files import dataset_key
from numerai_assets.pipeline.launch import launch_on_upload

# Goals in seconds by burst size (issue 17: 1,000; issue 16: a round of 2,000 under dg dev).
GOALS = {
    1_000: {"burst": 60},
    2_000: {"burst": 150, "ordinary": 15, "late": 30},
}
WARMUP_LIMIT = 300
BURST_LIMIT = 900


def main(quick: bool = False, submissions: int | None = None) -> bool:
    sizes = dict(QUICK_SIZES if quick else SIZES)
    if submissions is not None:
        sizes["submissions"] = submissions
    count, rows = sizes["submissions"], sizes["tournament_rows"]
    header(
        f"burst through the daemon: {count:,} submissions × {rows:,} rows into a running "
        "deployment (dg dev, product defaults)"
    )
    check = Checks()
    with scratch("burst-daemon") as tmp:
        # Three more than the burst: the warm-up submission first, then two arrivals after it.
        specs, uploads, zip_path = stage(None, {**sizes, "submissions": count + 3}, tmp / "files")
        warm_spec, specs, arrivals = specs[0], specs[1:-2], specs[-2:]
        dagster_home = tmp / "dagster_home"
        dagster_home.mkdir()
        shutil.copy(REPO / "deploy/local/dagster.yaml", dagster_home / "dagster.yaml")
        port = free_port()
        env = local_environ(
            tmp / "home",
            DAGSTER_HOME=str(dagster_home),
            DAGSTER_WEBSERVER_URL=f"http://127.0.0.1:{port}",
        )
        line("store", "", store_label(env))
        deploy = deployment(env)
        settings = deploy.settings
        deploy.buckets.upload_file(zip_path, settings.dataset_bucket, dataset_key(settings, ROUND))
        link_tree(uploads, settings.local_buckets_dir / settings.upload_bucket)
        log = tmp / "dagster-dev.log"
        with (
            dagster_dev(env, log, port) as process,
            dg.DagsterInstance.from_config(str(dagster_home)) as inst,
        ):
            started = time.monotonic()
            warm = warm_up(deploy, warm_spec, process)
            check(warm, f"warm-up: one submission scored within {WARMUP_LIMIT} s")
            if not warm:
                print(log.read_text(errors="replace")[-3000:])
                return check.ok
            wait_idle(inst, process, 120)
            line(
                "warm-up: daemon up, round data and clusters made",
                seconds(time.monotonic() - started),
                "not timed",
            )
            before = {r.dagster_run.run_id for r in inst.get_run_records()}
            began = time.time()
            now = datetime.now(timezone.utc)
            asked = 0
            for spec in specs:
                submission_id = deploy.store.insert_submission(
                    username=spec.user,
                    round=ROUND,
                    filename=spec.key,
                    created=now + timedelta(microseconds=spec.index),
                )
                launch = launch_on_upload(settings, deploy.store, submission_id, round=ROUND)
                asked += bool(launch.run_id)
            inserted = time.time() - began
            done = None
            while time.time() - began < BURST_LIMIT and process.poll() is None:
                docs = deploy.store.round_submissions(ROUND)
                if len(docs) > count and all(scored(d) or d.get("invalid") for d in docs):
                    done = time.time()
                    break
                time.sleep(0.5)
            check(done is not None, f"every submission decided within {BURST_LIMIT} s")
            if done is None:
                return check.ok
            wait_idle(inst, process, 120)
            runs = [r for r in inst.get_run_records() if r.dagster_run.run_id not in before]
            runs.sort(key=lambda r: r.create_timestamp)
            check(
                all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in runs),
                f"all {len(runs)} runs succeeded",
            )
            # Then, into the round now decided, an ordinary upload and a late one (created
            # before every other: every later submission is decided again), each asking.
            after = {}
            for name, spec, created in (
                ("ordinary", arrivals[0], datetime.now(timezone.utc)),
                ("late", arrivals[1], now - timedelta(hours=2)),
            ):
                after[name] = arrival(deploy, settings, spec, created, process)
                check(after[name] is not None, f"the {name} upload decided within {BURST_LIMIT} s")
                wait_idle(inst, process, 120)
    total = done - began
    goals = GOALS.get(count, {})
    line("burst: first insert → every decision stored", seconds(total), goal(goals, "burst"))
    line(f"  inserting the {count:,} documents, each asking", seconds(inserted))
    line("  runs asked for by the uploads", f"{asked:8d}", "the sensor batched the others")
    if runs:
        first_created = runs[0].create_timestamp.timestamp()
        line("  sensor: first insert → first run created", seconds(first_created - began))
        queued = sum(r.start_time - r.create_timestamp.timestamp() for r in runs)
        running = sum(r.end_time - r.start_time for r in runs)
        for r in runs:
            line(
                f"  run {r.dagster_run.job_name} ({r.dagster_run.tags.get('submissions')} subs)",
                seconds(r.end_time - r.start_time),
                f"waited {r.start_time - r.create_timestamp.timestamp():.1f} s created → started",
            )
        line(
            "  runs: summed run time / summed wait in the queue",
            seconds(running),
            f"/ {queued:.1f} s",
        )
    for name, taken in after.items():
        if taken is not None:
            line(f"then one {name} upload: stored → decided", seconds(taken), goal(goals, name))
    return check.ok


def goal(goals: dict[str, int], name: str) -> str:
    return f"goal <= {goals[name]} s" if name in goals else "no goal at this size"


def arrival(deploy, settings, spec, created: datetime, process) -> float | None:  # noqa: ANN001
    """One upload (stored, then its run asked for as ``submit`` asks), until it and every
    submission of the round are decided: seconds, or None past the limit."""
    began = time.time()
    submission_id = deploy.store.insert_submission(
        username=spec.user, round=ROUND, filename=spec.key, created=created
    )
    launch_on_upload(settings, deploy.store, submission_id, round=ROUND)
    while time.time() - began < BURST_LIMIT and process.poll() is None:
        docs = deploy.store.round_submissions(ROUND)
        if all(scored(d) or d.get("invalid") for d in docs):
            return time.time() - began
        time.sleep(0.2)
    return None


def warm_up(deploy, spec, process: subprocess.Popen) -> bool:  # noqa: ANN001
    """One submission, created an hour before the burst, scored by the daemon: the round's
    data and clusters exist after it."""
    submission_id = deploy.store.insert_submission(
        username=spec.user,
        round=ROUND,
        filename=spec.key,
        created=datetime.now(timezone.utc) - timedelta(hours=1),
    )
    deadline = time.monotonic() + WARMUP_LIMIT
    while time.monotonic() < deadline and process.poll() is None:
        if scored(deploy.store.get(submission_id)):
            return True
        time.sleep(0.5)
    return False


if __name__ == "__main__":
    # --submissions N: a burst of N (issue 16: a round of 2,000 under dg dev).
    chosen = None
    if "--submissions" in sys.argv:
        at = sys.argv.index("--submissions")
        chosen = int(sys.argv[at + 1])
        del sys.argv[at : at + 2]
    run_one(lambda quick=False: main(quick, chosen), __doc__.splitlines()[0])
