"""Servers a daemon fault test starts, breaks and starts again: a PostgreSQL cluster of its own
(never the machine's server at 5432), a SecantusDB server on a fixed port, and the real
``dagster-daemon`` in its own process group.

Every process started here is ended by its process id or process group, never by name.
"""

from __future__ import annotations

import calendar
import contextlib
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from numerai_assets_tests.conftest import REPO, unavailable

T = TypeVar("T")


def free_port() -> int:
    """A TCP port free on loopback now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.5,
    describe: Callable[[], str] = lambda: "",
) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``.

    An exception from ``check`` counts as "not yet" (a server of the test may be down)."""
    deadline = time.monotonic() + timeout
    error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            found = check()
        except Exception as exc:  # noqa: BLE001 - a server under test may be down right now
            error, found = exc, None
        if found:
            return found
        time.sleep(interval)
    last = f"; last error: {type(error).__name__}: {error}" if error else ""
    raise AssertionError(f"{what}: not within {timeout:.0f} s{last}\n{describe()}")


def _postgres_bin() -> Path | None:
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(folder, "initdb").exists():
            return Path(folder)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own on a free loopback port (trust authentication).

    ``initdb`` refuses to run as root, so as root the cluster belongs to the ``postgres`` user
    (``runuser``). :meth:`stop` is ``pg_ctl stop -m immediate`` (the server gone at once, as in a
    crash); :meth:`start` brings it back on the same port with the same data.
    """

    def __init__(self) -> None:
        bin_dir = _postgres_bin()
        if bin_dir is None:
            unavailable("no PostgreSQL server binaries (initdb, pg_ctl) for a private cluster")
        self.bin = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="numerai-private-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self._as_user, str(self.bin / tool), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c shared_buffers=32MB -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        """Gone at once: no checkpoint, every connection cut (``-m immediate``)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def create_database(self) -> dict[str, str]:
        """A fresh database; the ``DAGSTER_PG_*`` variables naming it."""
        import psycopg2

        name = f"numerai_faults_{uuid.uuid4().hex[:10]}"
        connection = psycopg2.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres"
        )
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": name,
            "DAGSTER_PG_USERNAME": "postgres",
            "DAGSTER_PG_PASSWORD": "",
        }

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.running():
                self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


SECANTUS_VENV = Path(os.environ.get("SECANTUS_VENV", REPO / ".ci-venv-secantus"))


class MongoServer:
    """A SecantusDB server of the test's own (``.ci/mongo-server``), on a port fixed at the first
    start so :meth:`start` after :meth:`stop` brings it back where its clients look; its data
    (WiredTiger, in ``folder``) survives the restart."""

    def __init__(self, folder: Path) -> None:
        if not (SECANTUS_VENV / "bin" / "secantusd-py").exists():
            unavailable(
                f"no SecantusDB server in {SECANTUS_VENV} (run the tests marked mongodb through "
                ".ci/mongo-server run, which installs it)"
            )
        self.folder = folder
        self.port = free_port()
        self.url = f"mongodb://127.0.0.1:{self.port}/?replicaSet=secantus"

    def _script(self, *args: str) -> None:
        done = subprocess.run(
            [str(REPO / ".ci" / "mongo-server"), *args],
            env={**os.environ, "SECANTUS_VENV": str(SECANTUS_VENV)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"mongo-server {args[0]} failed: {done.stderr[-3000:]}")

    def start(self) -> None:
        self._script("start", str(self.folder), str(self.port))

    def stop(self) -> None:
        self._script("stop", str(self.folder))


class Daemon:
    """``dagster-daemon run -w workspace.yaml`` (sensor, run queue, run launcher, code servers)
    in a process group of its own: its code servers and run workers are in that group too."""

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self.env = dict(env)
        self.log = log
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        with self.log.open("a") as out:
            out.write(f"\n==== daemon start {self.starts} at {time.strftime('%H:%M:%S')}\n")
            out.flush()
            self.process = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "dagster-daemon"),
                    "run",
                    "-w",
                    "workspace.yaml",
                ],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pgid(self) -> int:
        assert self.process is not None
        return self.process.pid  # its own session: the group's id is the leader's pid

    def members(self) -> list[int]:
        """The live processes of the group (zombies left out), from ``/proc``."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z" and int(fields[2]) == self.pgid:
                    found.append(int(stat.parent.name))
        return found

    def code_servers(self) -> list[tuple[int, float]]:
        """The group's code servers (``dagster api grpc``): process id and start (epoch s)."""
        ticks = os.sysconf("SC_CLK_TCK")
        boot = time.time() - float(Path("/proc/uptime").read_text().split()[0])
        found = []
        for pid in self.members():
            with contextlib.suppress(OSError, ValueError, IndexError):
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                if b" api grpc" in command:
                    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    found.append((pid, boot + int(stat[19]) / ticks))
        return sorted(found, key=lambda server: server[1])

    def owns(self, pid: int) -> bool:
        """Whether ``pid`` is a live process of this daemon's group."""
        return pid in self.members()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill_group(self) -> None:
        """SIGKILL the whole group (daemon, code servers, run workers) and wait until it is gone."""
        self._signal_group(signal.SIGKILL, wait=15)

    def stop(self) -> None:
        """End the group at once (SIGKILL): a test's daemon has nothing to finish."""
        if self.process is not None:
            self.kill_group()

    def _signal_group(self, sig: int, *, wait: float) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=wait)
        deadline = time.monotonic() + wait
        while self.members() and time.monotonic() < deadline:  # every member, not the leader only
            time.sleep(0.1)

    def log_line(self, text: str) -> float | None:
        """When the daemon first logged a line holding ``text`` (epoch seconds), or None."""
        for line in self.log_lines(text):
            with contextlib.suppress(ValueError):
                stamp = time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")
                return calendar.timegm(stamp)
        return None

    def log_lines(self, *texts: str) -> list[str]:
        """The daemon's log lines holding any of ``texts`` (terminal colours removed)."""
        if not self.log.exists():
            return []
        lines = re.sub(r"\x1b\[[0-9;]*m", "", self.log.read_text(errors="replace")).splitlines()
        return [line for line in lines if any(text in line for text in texts)]

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""
