"""``score_round_sharded`` with ``NUMERAI_EXECUTOR=celery``, for real: RabbitMQ (the
deployment's default broker, guest at 127.0.0.1:5672, or ``NUMERAI_TEST_CELERY_BROKER``), two
Celery worker processes started as a deployment starts them (``celery -A
numerai_assets.pipeline.celery_app worker --concurrency=1``), the run in a process of its own.

Each run of this test sends its steps to a queue of its own (``NUMERAI_CELERY_QUEUE``), deleted
afterwards, so runs at the same time on one broker (other checkouts, CI) never take each other's
steps. Without a broker the test is skipped, and fails in CI (``unavailable``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from numerai_assets.cli.context import Deployment
from numerai_assets.pipeline.jobs import celery_config
from numerai_assets.settings import Settings
from numerai_assets_tests.conftest import REPO, unavailable
from numerai_assets_tests.pipeline.conftest import seed_round
from numerai_assets_tests.pipeline.sharded import (
    PAIR_STEP,
    ROUND,
    SHARDED_ENV,
    SHARDS,
    SUBMISSIONS,
    dagster_home,
    decisions,
    in_process_decisions,
    run_environment,
    run_sharded,
)

WORKERS = 2
READY_SECONDS = 60


def celery_app(settings: Settings):  # noqa: ANN201 - celery.Celery
    """An app on the executor's config, to ask the workers (ping, inspect) and manage the queue."""
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app

    return make_app(CeleryExecutor.for_cli(**celery_config(settings)).app_args())


def broker_or_unavailable(app) -> None:  # noqa: ANN001
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=3)
    except Exception as error:  # noqa: BLE001 - any failure to connect means no broker
        unavailable(f"no RabbitMQ at NUMERAI_CELERY_BROKER ({type(error).__name__}: {error})")


def stop(process: subprocess.Popen) -> None:
    """A worker's process group: a warm shutdown, then killed if it lingers."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def celery_env(local_env, tmp_path, monkeypatch) -> Iterator[str]:
    """The test's queue and settings (yields the queue), the queue deleted afterwards."""
    queue = f"numerai-test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("NUMERAI_CELERY_QUEUE", queue)
    # The default broker (guest on 127.0.0.1:5672), or another for the tests.
    if os.environ.get("NUMERAI_TEST_CELERY_BROKER"):
        monkeypatch.setenv("NUMERAI_CELERY_BROKER", os.environ["NUMERAI_TEST_CELERY_BROKER"])
    app = celery_app(Settings.from_env())
    broker_or_unavailable(app)
    try:
        yield queue
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)


def start_workers(env: dict[str, str], logs: Path) -> tuple[list[str], list[subprocess.Popen]]:
    """``WORKERS`` workers of one process each, named uniquely; their node names and processes."""
    token = uuid.uuid4().hex[:8]
    names = [f"shards{k}-{token}@{socket.gethostname()}" for k in range(1, WORKERS + 1)]
    processes = []
    for name in names:
        command = [
            *(sys.executable, "-m", "celery", "-A", "numerai_assets.pipeline.celery_app"),
            *("worker", "--concurrency=1", "--loglevel=INFO", "-n", name),
            # No start-up exchange with the broker's other workers (other checkouts' ones).
            *("--without-mingle", "--without-gossip"),
        ]
        log = (logs / f"{name.split('@')[0]}.log").open("w")
        processes.append(
            subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return names, processes


def wait_until_ready(app, names: list[str], processes: list[subprocess.Popen], logs: Path):  # noqa: ANN001, ANN201
    """Every worker answers a ping: then both take tasks."""
    deadline = time.monotonic() + READY_SECONDS
    answered: set[str] = set()
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                pytest.fail(f"a worker exited ({process.returncode}):\n{worker_logs(logs)}")
        replies = app.control.ping(destination=names, timeout=1.0)
        answered |= {name for reply in replies for name in reply}
        if answered >= set(names):
            return
    pytest.fail(f"workers not ready in {READY_SECONDS} s:\n{worker_logs(logs)}")


def worker_logs(logs: Path) -> str:
    return "\n".join(f"== {p.name}\n{p.read_text()[-2000:]}" for p in sorted(logs.glob("*.log")))


@pytest.mark.celery
@pytest.mark.slow
def test_sharded_job_on_two_celery_workers(celery_env, local_env, tmp_path, monkeypatch):
    queue = celery_env
    for name, value in SHARDED_ENV.items():
        monkeypatch.setenv(name, value)
    reference = in_process_decisions(tmp_path / "reference", monkeypatch)

    monkeypatch.setenv("NUMERAI_ASSETS_HOME", str(local_env))
    monkeypatch.setenv("NUMERAI_EXECUTOR", "celery")
    monkeypatch.setenv("NUMERAI_IN_PROCESS_MAX_SUBMISSIONS", "0")  # every batch: the sharded job
    deployment = Deployment.from_env()
    seed_round(deployment, ROUND).submit_demo(SUBMISSIONS)
    home = tmp_path / "dagster_home"
    logs = tmp_path / "workers"
    logs.mkdir()
    app = celery_app(Settings.from_env())
    with dagster_home(home) as instance:  # created before a worker may open it
        env = run_environment(home)
        started = time.monotonic()
        names, workers = start_workers(env, logs)
        try:
            wait_until_ready(app, names, workers, logs)
            ready = time.monotonic() - started
            # The workers run as the executor's config says: late acks, one task at a time,
            # from this test's queue only.
            inspect = app.control.inspect(destination=names, timeout=3.0)
            stats, active_queues = inspect.stats(), inspect.active_queues()
            conf = inspect.conf(with_defaults=True)
            run = run_sharded(instance, home, tmp_path / "run.log", env, timeout=120)
            ran_on = {
                e.step_key: e.dagster_event.event_specific_data.metadata["Celery worker"].value
                for e in run.events(dg.DagsterEventType.ENGINE_EVENT)
                if e.dagster_event.event_specific_data
                and "Celery worker" in e.dagster_event.event_specific_data.metadata
            }
            pids = run.step_pids("")
        finally:
            for worker in workers:
                stop(worker)

    assert decisions(deployment) == reference
    for name in names:
        assert stats[name]["prefetch_count"] == 1
        assert stats[name]["pool"]["max-concurrency"] == 1
        assert conf[name]["task_acks_late"] is True
        assert [q["name"] for q in active_queues[name]] == [queue]
    # Every step went through a worker, and both workers ran some.
    assert set(ran_on) == set(pids) and set(ran_on.values()) == set(names), ran_on
    shards = {key: ran_on[key] for key in pids if key.startswith(PAIR_STEP)}
    assert len(shards) == SHARDS
    assert run.pid not in pids.values()
    # One process per worker (--concurrency=1): the steps ran in exactly two processes.
    assert len(set(pids.values())) == WORKERS
    print(
        f"workers ready in {ready:.1f} s; score_round_sharded (celery): {run.seconds:.1f} s; "
        f"shards on {sorted(shards.values())}"
    )
