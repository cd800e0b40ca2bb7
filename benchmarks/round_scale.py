"""Round scale: a whole round of N submissions × 45,000 rows scored through the real sensor and
jobs, each run in a process of its own on the deployment's executor; then one ordinary and one
late upload into the scored round.

How: the files are rendered by two processes (not timed) and their documents inserted pending.
A tick of the real ``new_submissions`` sensor is evaluated here (``dg.build_sensor_context``);
each run it requests is executed as a run worker executes it, ``dagster job execute`` of the
requested job (``score_round`` or ``score_round_sharded``) loaded from the code location in a
process of its own, with the product's settings (so ``score_round_sharded`` runs its pair
shards on the multiprocess executor, a process per shard, at most one per core); ticks and runs
alternate until nothing is pending. Measured: wall from the first tick to the last run's end;
CPU and peak memory (summed proportional set size) of every process of each run, sampled from
``/proc`` every 0.2 s
(the benchmark's own process, which evaluates the ticks, is counted apart); the share of the
round's pairs whose KS count was pruned (stored as a bound, not merged), from the pair store;
phase 1's parallelism (its shards' summed step time over the span of the shards).

Then one **ordinary** upload (created now) and one **late** upload (created before every other
submission, which re-decides the whole round after it) are each scored alone the same way.

Check (exit 1 otherwise): nothing is pending, and a sample of decisions equals the rule written
plainly: for each sampled submission, the comparison rule over what the store holds
(``latest_comparable_per_user``) and ``originality`` on those predictions, exact, no pairs
stored, no pruning.

The submissions go to ``MONGO_URL`` when it names a server (``.ci/mongo-server run --``): the
embedded store writes one document at a time and is not meant for rounds of thousands.

    .ci/mongo-server run -- .venv/bin/python -m benchmarks.round_scale --sizes 1000,2000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import numpy as np

from benchmarks._deploy import (
    REPO,
    SubmissionCsv,
    deployment,
    environment,
    local_environ,
    scratch,
    sensor_tick,
    store_label,
    tournament_round,
    write_file,
)
from benchmarks._timing import Checks, header, line
from benchmarks.burst import ROUND, plan, predictions_of, prepare_home, stage, step_windows
from numerai_assets.batch.files import cache_key
from numerai_assets.definitions import build_definitions
from numerai_assets.prediction_cache.round_cache import CacheLocation, RoundPredictionCache
from numerai_assets.scoring.comparison import latest_comparable_per_user
from numerai_assets.scoring.originality import originality
from numerai_assets.settings import Settings
from numerai_assets.store.documents import member_of

ROWS = 45_000
SIZES = (1000, 2000, 5000, 10_000)
QUICK_SIZES = (200,)
SAMPLED = 12  # decisions checked against the plain rule
SHOW_STEPS = False  # --steps: print each run's step lines
SAMPLE_SECONDS = 0.2
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# Processes of a run: CPU and resident memory from /proc


def _session_of(pid: int) -> tuple[int, float, int] | None:
    """(session id, CPU seconds, resident bytes) of ``pid``; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
    return int(fields[3]), cpu, int(fields[21]) * PAGE  # session, cpu, rss


def _proportional_set(pid: int) -> tuple[int, int]:
    """``pid``'s proportional set size (bytes) as (anonymous, file-backed): its resident pages,
    each shared page divided among the processes sharing it, so a session's sum is the memory
    it really holds (forked step processes share their imports; RSS would count them once per
    process). File-backed pages are the prediction cache's and pair store's mapped files: clean
    page cache the kernel takes back under pressure; anonymous memory is what a run needs."""
    sizes = {b"Pss_Anon:": 0, b"Pss_File:": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            for text in rollup:
                name = text.split(b" ", 1)[0]
                if name in sizes:
                    sizes[name] = int(text.split()[1]) * 1024
    except OSError:
        pass
    return sizes[b"Pss_Anon:"], sizes[b"Pss_File:"]


@dataclass
class Usage:
    cpu: dict[int, float] = field(default_factory=dict)  # pid -> last CPU seconds seen
    peak_rss: int = 0  # bytes: the session's summed proportional set sizes, at one sample
    peak_anon: int = 0  # bytes: the anonymous part of it

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())


def watch(session: int, usage: Usage, done: threading.Event) -> None:
    """Sample every process of ``session`` until ``done``."""
    while not done.wait(SAMPLE_SECONDS):
        anon = file = 0
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                seen = _session_of(int(entry.name))
                if seen is not None and seen[0] == session:
                    usage.cpu[int(entry.name)] = max(seen[1], usage.cpu.get(int(entry.name), 0))
                    pss = _proportional_set(int(entry.name))
                    anon, file = anon + pss[0], file + pss[1]
        usage.peak_rss = max(usage.peak_rss, anon + file)
        usage.peak_anon = max(usage.peak_anon, anon)


# Ticks and runs


@dataclass
class Scoring:
    wall: float = 0.0
    tick_seconds: float = 0.0
    runs: list[tuple[str, int, float, Usage]] = field(default_factory=list)  # job, n, wall, use
    windows: dict[str, float] = field(default_factory=dict)  # step -> seconds, every run
    phase1_span: float = 0.0  # first pair shard started → last ended, summed over runs
    tick_cpu: float = 0.0

    @property
    def cpu(self) -> float:
        return self.tick_cpu + sum(u.cpu_seconds for *_, u in self.runs)

    @property
    def peak_rss(self) -> int:
        return max((u.peak_rss for *_, u in self.runs), default=0)

    @property
    def peak_anon(self) -> int:
        return max((u.peak_anon for *_, u in self.runs), default=0)


def execute_run(request: dg.RunRequest, env: dict[str, str], folder: Path) -> tuple[float, Usage]:
    """``dagster job execute`` of the request, as a run worker; its wall time and usage."""
    config = folder / f"{request.run_key}.json"
    config.write_text(json.dumps(request.run_config))
    tags = {
        **request.tags,
        "dagster/partition": request.partition_key,
        "dagster/run_key": request.run_key,
    }
    command = [
        str(Path(sys.executable).parent / "dagster"),
        *("job", "execute", "-m", "numerai_assets.definitions", "-j", request.job_name),
        *("-c", str(config), "--tags", json.dumps(tags)),
    ]
    usage, done = Usage(), threading.Event()
    started = time.perf_counter()
    with (folder / "runs.log").open("ab") as log:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        sampler = threading.Thread(target=watch, args=(process.pid, usage, done), daemon=True)
        sampler.start()
        code = process.wait()
        done.set()
        sampler.join()
    if code:
        tail = (folder / "runs.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"run {request.run_key} exited {code}:\n{tail}")
    return time.perf_counter() - started, usage


def score_until_done(env: dict[str, str], dagster_home: Path, store) -> Scoring:  # noqa: ANN001
    """Tick and run until nothing of the round is pending."""
    out = Scoring()
    run_env = {**env, "DAGSTER_HOME": str(dagster_home), "PYTHONPATH": str(REPO)}
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    started = time.perf_counter()
    cpu_before = time.process_time()
    with environment(env):
        defs = build_definitions(env)
        cursor = None
        for _ in range(200):
            tick = time.perf_counter()
            requests, cursor = sensor_tick(instance, defs, cursor)
            out.tick_seconds += time.perf_counter() - tick
            for request in requests:
                seen = dg.RunsFilter(tags={"dagster/run_key": request.run_key})
                if instance.get_run_records(seen):
                    continue
                wall, usage = execute_run(request, run_env, dagster_home)
                out.runs.append((request.job_name, int(request.tags["submissions"]), wall, usage))
                (record,) = instance.get_run_records(seen)
                windows = step_windows(instance, record.dagster_run.run_id)
                for key, value in windows.items():
                    name = key.split("[")[0]
                    out.windows[name] = out.windows.get(name, 0.0) + value
                out.phase1_span += shard_span(instance, record.dagster_run.run_id)
            if not requests and not pending(store):
                break
    out.wall = time.perf_counter() - started
    out.tick_cpu = time.process_time() - cpu_before
    return out


def shard_span(instance: dg.DagsterInstance, run_id: str) -> float:
    """First pair shard's start to the last one's end, in one run (0 without shards)."""
    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}
    times = [
        e.timestamp
        for e in instance.all_logs(run_id, of_type=kinds)
        if (e.step_key or "").startswith("submission_scores.pair_statistics")
    ]
    return max(times) - min(times) if times else 0.0


def pending(store) -> int:  # noqa: ANN001
    return sum(
        1
        for d in store.round_submissions(ROUND)
        if not d.get("invalid")
        and ((d.get("original") or {}).get("pending") or (d.get("concordant") or {}).get("pending"))
    )


# What the round holds afterwards


def cache_of(settings: Settings) -> RoundPredictionCache:
    (directory,) = (settings.home / "prediction_cache" / f"round-{ROUND}").iterdir()
    return RoundPredictionCache.at(
        CacheLocation(str(directory.parent.parent), ROUND, directory.name, ROWS)
    )


def pruned_share(cache: RoundPredictionCache) -> tuple[int, float]:
    """(pairs stored, share of them stored as a bound rather than exactly)."""
    pairs = exact = 0
    for block in cache.directory.glob("pairs/block-*/exact.u8"):
        flags = np.fromfile(block, dtype=np.uint8)
        pairs, exact = pairs + flags.size, exact + int(flags.sum())
    return pairs, (1 - exact / pairs) if pairs else 0.0


def plain_rule_agrees(store, cache: RoundPredictionCache, sampled: list) -> list[str]:  # noqa: ANN001
    """The sampled decisions that differ from the rule written plainly (ids)."""
    docs = store.round_submissions(ROUND)
    members = {str(d["_id"]): member_of(d) for d in docs if not d.get("invalid")}
    key = {d["_id"]: cache_key(d["_id"], d.get("file_digest")) for d in docs}
    matrix, _ = cache.matrices()
    differ = []
    for doc in sampled:
        member = members[str(doc["_id"])]
        picked = latest_comparable_per_user(members.values(), member)
        rows = cache.rows_of(key[m.id] for m in picked)
        earlier = matrix[rows] if picked else np.empty((0, ROWS))
        result = originality(np.asarray(matrix[cache.row_of(key[doc["_id"]])]), earlier)
        stored = doc.get("original") or {}
        if (stored.get("value"), stored.get("reason")) != (result.original, result.reason):
            differ.append(str(doc["_id"]))
    cache.release()
    return differ


# One size


def one_arrival(env, dagster_home, tournament, created, name, seed):  # noqa: ANN001
    """Upload one more file (an original of a new user, from ``seed``) created at ``created``;
    score it alone."""
    deploy = deployment(env)
    settings = deploy.settings
    spec = plan(1, seed=seed)[0]
    key = f"{ROUND}/{name}/{name}-predictions.csv"
    data = SubmissionCsv(tournament["id"].to_numpy()).render(
        predictions_of(spec, [spec], tournament)
    )
    write_file(settings.local_buckets_dir / settings.upload_bucket / key, data)
    deploy.store.insert_submission(username=name, round=ROUND, filename=key, created=created)
    return score_until_done(env, dagster_home, deploy.store)


def measure(count: int, folder: Path, check: Checks) -> dict:
    sizes = {"submissions": count, "tournament_rows": ROWS, "training_rows": ROWS}
    started = time.perf_counter()
    specs, uploads, zip_path = stage(None, sizes, folder / "files")
    env = prepare_home(folder / "home", uploads, zip_path, specs, cache=None)
    _, tournament = tournament_round(ROWS, ROWS)
    line(f"setup: {count:,} files and documents", f"{time.perf_counter() - started:8.1f} s ")
    dagster_home = folder / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    deploy = deployment(env)
    first = min(d["created"] for d in deploy.store.round_submissions(ROUND))

    whole = score_until_done(env, dagster_home, deploy.store)
    check(not pending(deploy.store), f"{count:,}: nothing pending after the round")
    jobs = sorted({job for job, *_ in whole.runs})
    line(
        f"{count:,}: whole round, {len(whole.runs)} runs ({', '.join(jobs)})",
        f"{whole.wall:8.1f} s ",
        f"CPU {whole.cpu:.0f} s, peak memory {whole.peak_rss / 2**30:.2f} GiB "
        f"({whole.peak_anon / 2**30:.2f} anonymous), "
        f"ticks {whole.tick_seconds:.1f} s",
    )
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in sorted(whole.windows.items()))
    line("  step time (summed over runs and shards)", "", steps)
    shards = whole.windows.get("submission_scores.pair_statistics", 0.0)
    parallel = shards / whole.phase1_span if whole.phase1_span else float("nan")
    line("  phase 1 parallelism (shard time / span)", f"{parallel:8.2f}x")
    if SHOW_STEPS:  # the runs' own log lines, for profiling
        for text in (dagster_home / "runs.log").read_text(errors="replace").splitlines():
            if any(word in text for word in ("phase 1:", "computed exactly", "STEP_SUCCESS")):
                print("   ", text[:220])
    cache = cache_of(deploy.settings)
    pairs, pruned = pruned_share(cache)
    line("  pairs stored, KS pruned (a bound kept)", f"{pairs:>10,}", f"{pruned:.2%} pruned")

    now = datetime.now(timezone.utc)
    ordinary = one_arrival(env, dagster_home, tournament, now, "ordinary", seed=101)
    late = one_arrival(
        env, dagster_home, tournament, first - timedelta(seconds=1), "late", seed=102
    )
    for label, result in (("ordinary upload", ordinary), ("late upload (re-decides all)", late)):
        line(
            f"  {label}",
            f"{result.wall:8.1f} s ",
            f"CPU {result.cpu:.0f} s, peak memory {result.peak_rss / 2**30:.2f} GiB "
            f"({result.peak_anon / 2**30:.2f} anonymous)",
        )
        if SHOW_STEPS:
            shown = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(result.windows.items()))
            line("    its steps", "", shown)
    check(not pending(deploy.store), f"{count:,}: nothing pending after the two arrivals")
    docs = [d for d in deploy.store.round_submissions(ROUND) if not d.get("invalid")]
    rng = np.random.default_rng(count)
    sampled = [docs[int(k)] for k in rng.choice(len(docs), min(SAMPLED, len(docs)), False)]
    sampled += [d for d in docs if d["username"] in ("late", "ordinary")]
    differ = plain_rule_agrees(deploy.store, cache_of(deploy.settings), sampled)
    check(
        not differ,
        f"{count:,}: {len(sampled)} sampled decisions equal the plain rule"
        + (f" ({len(differ)} differ: {differ[:3]})" if differ else ""),
    )
    return {
        "submissions": count,
        "wall": whole.wall,
        "cpu": whole.cpu,
        "peak_gib": whole.peak_rss / 2**30,
        "anon_gib": whole.peak_anon / 2**30,
        "pruned": pruned,
        "parallel": parallel,
        "ordinary": ordinary.wall,
        "late": late.wall,
    }


def main(quick: bool = False, sizes: tuple[int, ...] | None = None) -> bool:
    sizes = sizes or (QUICK_SIZES if quick else SIZES)
    header(f"round scale: rounds of {', '.join(f'{s:,}' for s in sizes)} × {ROWS:,} rows")
    check = Checks()
    rows = []
    for count in sizes:
        with scratch(f"round-scale-{count}") as folder:
            if count == sizes[0]:
                line("store", "", store_label(local_environ(folder / "probe")))
            rows.append(measure(count, folder, check))
    print(
        "\n| submissions | wall | CPU | peak memory | KS pruned | phase-1 parallelism "
        "| ordinary upload | late upload |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['submissions']:,} | {r['wall']:.0f} s | {r['cpu']:.0f} s | "
            f"{r['peak_gib']:.2f} GiB ({r['anon_gib']:.2f} anonymous) | {r['pruned']:.1%} | "
            f"{r['parallel']:.2f}× | "
            f"{r['ordinary']:.1f} s | {r['late']:.1f} s |"
        )
    return check.ok


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--steps", action="store_true", help="print each run's step lines")
    arguments = parser.parse_args()
    SHOW_STEPS = arguments.steps
    sizes = tuple(int(s) for s in arguments.sizes.split(","))
    sys.exit(0 if main(sizes=sizes) else 1)
