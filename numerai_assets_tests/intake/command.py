"""The real ``numerai-assets intake`` command in a subprocess, listening on a loopback port."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO

START_SECONDS = 30  # a cold interpreter on a busy machine
LOG_SECONDS = 5  # for a line the server has written to reach the test


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningIntake:
    port: int
    process: subprocess.Popen
    output: dict[str, str] = field(default_factory=dict)  # "out", "err": filled once it stops
    _err: list[bytes] = field(default_factory=list)  # read as written, so the pipe never fills

    def log(self) -> str:
        """What the server has written to stderr so far (its log)."""
        return b"".join(self._err).decode(errors="replace")

    def log_until(self, text: str) -> str:
        """The log once it contains ``text``; fails after :data:`LOG_SECONDS` without it."""
        deadline = time.monotonic() + LOG_SECONDS
        while text not in (log := self.log()):
            assert time.monotonic() < deadline, f"{text!r} not logged:\n{log[-3000:]}"
            time.sleep(0.05)
        return log


def _collect(stream: IO[bytes], into: list[bytes]) -> None:
    for line in stream:
        into.append(line)


@contextlib.contextmanager
def running_intake(env: Mapping[str, str]) -> Iterator[RunningIntake]:
    """``numerai-assets intake`` with the whole environment ``env``, once it accepts
    connections; stopped on exit."""
    port = free_port()
    command = [sys.executable, "-m", "numerai_assets.cli.main", "intake", "--port", str(port)]
    process = subprocess.Popen(
        command,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    intake = RunningIntake(port, process)
    out: list[bytes] = []
    readers = [
        threading.Thread(target=_collect, args=(process.stdout, out), daemon=True),
        threading.Thread(target=_collect, args=(process.stderr, intake._err), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                for reader in readers:
                    reader.join(10)
                raise AssertionError(intake.log())
            assert time.monotonic() < deadline, "the intake command did not start listening"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield intake
    finally:
        process.terminate()
        process.wait(timeout=10)
        for reader in readers:
            reader.join(10)
        intake.output.update(out=b"".join(out).decode(), err=intake.log())
