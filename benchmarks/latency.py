"""Latency: one new submission into an idle deployment, until its scores are written.

What ``make run`` starts: ``dg dev -w workspace.yaml`` (webserver, daemon: sensor, queued run
coordinator, default run launcher, code servers) on a SQLite instance made from
``deploy/local/dagster.yaml``, with the product's defaults (the sensor every 1 s, an upload
asking the webserver for its run at once: ``NUMERAI_LAUNCH_ON_UPLOAD``), in its own process
group, always ended (SIGTERM to the group, SIGKILL after a timeout). A round of 45,000
tournament rows is seeded with ``numerai-assets demo seed`` and scored first (warm-up: the
round's data and clusters are materialized then). Each sample does what ``numerai-assets
submit`` does once its modules are loaded (``upload_submission`` then ``launch_on_upload``),
polls the store every 0.1 s until the submission is no longer pending, and splits the time with
the run's record: asking (created → run created, by the upload or by the sensor's tick), queue
(run created → run started: dequeue and launching the run's process), run (started → ended)
and the rest (run ended → scores seen). ``--sensor`` measures with the upload's request off
(``NUMERAI_LAUNCH_ON_UPLOAD=off``): the sensor's tick alone, the reference. ``--cli`` runs
``numerai-assets submit FILE`` itself for each sample and times from the command's start (its
interpreter, imports, upload and request included).

Reference, not a goal: the sensor daemon's 5-s loop, the period at which an idle deployment
that polls looks (a submission waits up to one loop, 2.5 s on average, for the next tick).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg
import pandas as pd

from benchmarks._deploy import REPO, deployment, local_environ, scratch, store_label
from benchmarks._timing import Checks, header, line, run_one, seconds
from numerai_assets.cli.context import Deployment
from numerai_assets.cli.submissions import upload_submission
from numerai_assets.datasets import load_round_dataset
from numerai_assets.datasets.synthetic import model_probabilities, submission_csv
from numerai_assets.files import dataset_key
from numerai_assets.pipeline.launch import launch_on_upload
from numerai_assets.settings import WHOLE_NUMBERS, Settings

ROUND = 1
ROWS = 45_000  # a round's tournament rows (issue 17: "a warm round of 45,000 rows")
SAMPLES, QUICK_SAMPLES = 10, 3
INTERVAL_SECONDS = WHOLE_NUMBERS["sensor_interval_seconds"][0]  # the product's default
# How often Dagster's sensor daemon evaluates sensors at most (dagster._daemon.sensor
# .MIN_INTERVAL_LOOP_TIME, a constant): an interval below it is evaluated on every pass.
DAEMON_LOOP_SECONDS = 5
PERIOD_SECONDS = max(INTERVAL_SECONDS, DAEMON_LOOP_SECONDS)
GOAL_MEDIAN_SECONDS, GOAL_WORST_SECONDS = 4, 8  # issue 17
POLL_SECONDS = 0.1
WAIT_LIMIT = 60  # per sample
WARMUP_LIMIT = 300  # seeding + the round's first run (data, clusters, three scores)
PAUSES = (1.3, 2.9, 0.7, 2.1, 3.7, 1.9, 0.4, 3.1, 2.5, 1.1)  # idle time before each sample
BIN = Path(sys.executable).parent


@dataclass
class Sample:
    latency: float  # upload started → scores seen
    upload: float  # upload_submission's duration (file + document)
    by: str  # who asked for the run: "upload" or "sensor"
    next_tick: float  # document created → what asked for the run started (the tick; 0: upload)
    tick: float  # that started → run created (the tick, or the upload's request)
    dequeue: float  # run created → RUN_STARTING (the queued run coordinator took it)
    launch: float  # RUN_STARTING → run started (the run's own process booted)
    run: float  # run started → run ended (or scores seen, if earlier)
    rest: float  # run ended → scores seen (0 when seen before the run ended)
    seen_before_end: float  # how long before the run's end the scores were seen (>= 0)

    @property
    def sensor(self) -> float:
        return self.next_tick + self.tick

    @property
    def queue(self) -> float:
        return self.dequeue + self.launch


@contextmanager
def dagster_dev(env: dict[str, str], log: Path, port: int) -> Iterator[subprocess.Popen]:
    """``dg dev`` as ``make run`` starts it, in its own process group; the group ended after."""
    command = [str(BIN / "dg"), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            end_group(process)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def end_group(process: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM the daemon's process group (code server and run processes included), wait until
    every member is gone, SIGKILL whatever is left after ``grace`` seconds."""
    pgid = process.pid  # start_new_session: the daemon leads its own group
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if process.poll() is not None and not group_alive(pgid):
                break
            time.sleep(0.2)
        else:
            continue
        break
    process.wait()


def scored(doc: dict) -> bool:
    return not (doc.get("original") or {}).get("pending") and not (
        (doc.get("concordant") or {}).get("pending")
    )


def run_of(instance: dg.DagsterInstance, submission_id: str) -> dg.RunRecord | None:
    """The scoring run whose batch holds ``submission_id``."""
    for record in instance.get_run_records(dg.RunsFilter(job_name="score_round"), limit=50):
        config = record.dagster_run.run_config or {}
        ops = config.get("ops", {}).get("submission_scores", {}).get("ops", {})
        ids = ops.get("prepare_submissions", {}).get("config", {}).get("submission_ids", [])
        if submission_id in ids:
            return record
    return None


def sensor_ticks(instance: dg.DagsterInstance) -> list:
    """The ``new_submissions`` sensor's ticks, oldest first."""
    ticks = []
    for state in instance.all_instigator_state():
        if state.instigator_name == "new_submissions":
            ticks += instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=5000)
    return sorted(ticks, key=lambda tick: tick.timestamp)


def starting_time(instance: dg.DagsterInstance, run_id: str) -> float | None:
    """When the coordinator dequeued the run and asked the launcher to start it."""
    entries = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_STARTING)
    return entries[0].timestamp if entries else None


def wait_idle(instance: dg.DagsterInstance, process: subprocess.Popen, limit: float) -> None:
    """Until no run is queued, starting or started (the deployment is idle)."""
    busy = [
        dg.DagsterRunStatus.QUEUED,
        dg.DagsterRunStatus.NOT_STARTED,
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
    ]
    deadline = time.monotonic() + limit
    while instance.get_run_records(dg.RunsFilter(statuses=busy)):
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("the deployment did not become idle")
        time.sleep(0.5)


def main(quick: bool = False, sensor_only: bool = False, cli: bool = False) -> bool:
    count = QUICK_SAMPLES if quick else SAMPLES
    asker = "the sensor alone (launch on upload off)" if sensor_only else "the upload asks"
    asker += ", `numerai-assets submit` timed from its start" if cli else ""
    header(
        f"latency: 1 submission into an idle deployment (dg dev, {asker}, sensor interval "
        f"{INTERVAL_SECONDS} s, {ROWS:,} tournament rows), median of {count}"
    )
    check = Checks()
    with scratch("latency") as tmp:
        dagster_home = tmp / "dagster_home"
        dagster_home.mkdir()
        shutil.copy(REPO / "deploy/local/dagster.yaml", dagster_home / "dagster.yaml")
        port = free_port()
        env = local_environ(
            tmp / "home",
            DAGSTER_HOME=str(dagster_home),
            DAGSTER_WEBSERVER_URL=f"http://127.0.0.1:{port}",
        )
        for name in ("NUMERAI_SENSOR_INTERVAL_SECONDS", "NUMERAI_LAUNCH_ON_UPLOAD"):
            env.pop(name, None)  # the product's defaults
        if sensor_only:
            env["NUMERAI_LAUNCH_ON_UPLOAD"] = "off"
        line("store", "", store_label(env))
        log = tmp / "dagster-dev.log"
        try:
            samples = measure(env, dagster_home, log, port, count, check, cli=cli)
        except Exception:
            tail = log.read_text(errors="replace").splitlines()[-40:] if log.exists() else []
            print("\n".join(["  dg dev log, last lines:", *tail]), flush=True)
            raise
    if not samples:
        return check.ok
    latencies = [s.latency for s in samples]
    median = statistics.median(latencies)
    middle = min(samples, key=lambda s: abs(s.latency - median))
    line(
        f"median latency, upload → scores written ({len(samples)})",
        seconds(median),
        f"goal <= {GOAL_MEDIAN_SECONDS} s",
    )
    line(
        "min / max",
        seconds(min(latencies)),
        f"/ {seconds(max(latencies)).strip()} (goal: max <= {GOAL_WORST_SECONDS} s)",
    )
    print(
        f"  where the time goes, for the sample nearest the median ({middle.latency:.2f} s; "
        "run record, event log, sensor ticks):"
    )
    what = "the whole `submit` command" if cli else "file + document (upload_submission)"
    line(f"  upload: {what}", seconds(middle.upload))
    asked = sum(s.by == "upload" for s in samples)
    line("runs asked for by the upload / by the sensor", f"{asked:8d}", f"/ {len(samples) - asked}")
    line(f"  asking ({middle.by}): created → run created", seconds(middle.sensor))
    line("    until the next tick starts (0: the upload asked)", seconds(middle.next_tick))
    line("    the tick or the upload's request: plan, claim, create", seconds(middle.tick))
    line("  queue: run created → run started", seconds(middle.queue))
    line("    dequeued (coordinator polls every 1 s)", seconds(middle.dequeue))
    line("    launch: the run's process boots (RUN_STARTING →)", seconds(middle.launch))
    line("  run: started → ended", seconds(middle.run))
    line(
        "  rest: run ended → scores seen",
        seconds(middle.rest),
        f"(scores seen {middle.seen_before_end:.2f} s before the run ended)"
        if middle.seen_before_end
        else "",
    )
    line(
        f"median / sensor period ({PERIOD_SECONDS} s)",
        f"{median / PERIOD_SECONDS:8.1f}x",
        "a reference (how often the daemon looks), not a goal",
    )
    return check.ok


def measure(
    env: dict[str, str],
    dagster_home: Path,
    log: Path,
    port: int,
    count: int,
    check: Checks,
    *,
    cli: bool = False,
) -> list[Sample]:
    deploy = deployment(env)
    start = time.monotonic()
    subprocess.run(
        [str(BIN / "numerai-assets"), "demo", "seed", "--rows", str(ROWS), "--submissions", "3"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    tournament = seeded_tournament(deploy)
    ids = tournament["id"].to_numpy()
    samples: list[Sample] = []
    with (
        dagster_dev(env, log, port) as process,
        dg.DagsterInstance.from_config(str(dagster_home)) as inst,
    ):
        deadline = time.monotonic() + WARMUP_LIMIT
        while not (docs := deploy.store.round_submissions(ROUND)) or not all(map(scored, docs)):
            if time.monotonic() > deadline or process.poll() is not None:
                check(False, f"warm-up: the seeded round scored within {WARMUP_LIMIT} s")
                return samples
            time.sleep(0.5)
        wait_idle(inst, process, 60)
        line(
            "warm-up: daemon up, seeded round scored (3 subs)",
            seconds(time.monotonic() - start),
            "not timed",
        )
        for k in range(count):
            time.sleep(PAUSES[k % len(PAUSES)])
            p = model_probabilities(tournament, seed=500 + k, skill=0.3 + 0.2 * k)
            data = submission_csv(ids, p)
            if cli:
                path = dagster_home.parent / f"late{k:02d}.csv"
                path.write_bytes(data)
                began = time.time()
                submission_id, asked_run = submit_command(env, f"late{k:02d}", path)
                uploaded = time.time() - began
            else:
                began = time.time()
                submission_id = str(
                    upload_submission(deploy, round=ROUND, user=f"late{k:02d}", data=data)
                )
                uploaded = time.time() - began
                settings = Settings.from_env(env)
                launch = launch_on_upload(settings, deploy.store, submission_id, round=ROUND)
                asked_run = launch.run_id
            while True:
                doc = deploy.store.get(submission_id)
                if scored(doc):
                    seen = time.time()
                    break
                if time.time() - began > WAIT_LIMIT or process.poll() is not None:
                    seen = None
                    break
                time.sleep(POLL_SECONDS)
            if seen is None:
                check(False, f"sample {k + 1}: scored within {WAIT_LIMIT} s")
                continue
            wait_idle(inst, process, 60)  # the run has ended: its record is complete
            record = run_of(inst, submission_id)
            if record is None or record.dagster_run.status != dg.DagsterRunStatus.SUCCESS:
                check(False, f"sample {k + 1}: its run succeeded")
                continue
            created = doc["created"].timestamp()
            run_id = record.dagster_run.run_id
            run_created = record.create_timestamp.timestamp()
            run_started, run_ended = record.start_time, record.end_time
            tick = next((t for t in sensor_ticks(inst) if run_id in t.run_ids), None)
            by = "upload" if asked_run == run_id else "sensor"
            tick_started = created if by == "upload" else tick.timestamp if tick else float("nan")
            starting = starting_time(inst, run_id) or float("nan")
            sample = Sample(
                latency=seen - began,
                upload=uploaded,
                by=by,
                next_tick=tick_started - created,
                tick=run_created - tick_started,
                dequeue=starting - run_created,
                launch=run_started - starting,
                run=min(run_ended, seen) - run_started,
                rest=max(0.0, seen - run_ended),
                seen_before_end=max(0.0, run_ended - seen),
            )
            samples.append(sample)
            line(
                f"sample {k + 1}: latency",
                seconds(sample.latency),
                f"asking ({by}) {sample.sensor:.2f} + queue {sample.queue:.2f}"
                f" + run {sample.run:.2f} + rest {sample.rest:.2f} s",
            )
        check(len(samples) == count, f"{len(samples)}/{count} submissions scored by their runs")
        gaps = tick_gaps(log)
        if gaps:
            line(
                f"sensor ticks, start to start (daemon log, {len(gaps)} gaps)",
                seconds(statistics.median(gaps)),
                f"min {min(gaps):.0f} s, max {max(gaps):.0f} s; "
                f"{sum(g >= 1.5 * PERIOD_SECONDS for g in gaps)} gaps of ~2 periods",
            )
    return samples


SUBMITTED = re.compile(
    r"submitted ([0-9a-f]{24}) .*?(?:its scoring run ([0-9a-f-]{36}) is queued)?$"
)


def submit_command(env: dict[str, str], user: str, path: Path) -> tuple[str, str | None]:
    """``numerai-assets submit`` as a participant's upload service runs it: the submission's id
    and the run it asked for (None: left to the sensor)."""
    done = subprocess.run(
        [str(BIN / "numerai-assets"), "submit", "--round", str(ROUND), "--user", user, str(path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = SUBMITTED.search(done.stdout.strip())
    if found is None:
        raise RuntimeError(f"submit printed {done.stdout!r}")
    return found.group(1), found.group(2)


COLOUR = re.compile(r"\x1b\[[0-9;]*m")
TICK_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) .*Checking for new runs for sensor: new_submissions"
)


def tick_gaps(log: Path) -> list[float]:
    """Seconds between the daemon's evaluations of the sensor (its log has whole seconds)."""
    times = [
        datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
        for text in COLOUR.sub("", log.read_text(errors="replace")).splitlines()
        if (match := TICK_LINE.match(text))
    ]
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def seeded_tournament(deploy: Deployment) -> pd.DataFrame:
    """The seeded round's tournament rows, read back from its dataset (local folders)."""
    settings = deploy.settings
    where = deploy.buckets.describe(settings.dataset_bucket, dataset_key(settings, ROUND))
    return load_round_dataset(Path(where), round=ROUND).tournament


if __name__ == "__main__":
    modes = {flag: flag in sys.argv for flag in ("--sensor", "--cli")}
    sys.argv = [arg for arg in sys.argv if arg not in modes]
    run_one(
        lambda quick=False: main(quick, sensor_only=modes["--sensor"], cli=modes["--cli"]),
        __doc__.splitlines()[0],
    )
