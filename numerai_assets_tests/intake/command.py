"""The real ``numerai-assets intake`` command in a subprocess, listening on a loopback port."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

START_SECONDS = 30  # a cold interpreter on a busy machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningIntake:
    port: int
    process: subprocess.Popen
    output: dict[str, str] = field(default_factory=dict)  # "out", "err": filled once it stops


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
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert process.poll() is None, process.communicate()[1].decode()
            assert time.monotonic() < deadline, "the intake command did not start listening"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield intake
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
        intake.output.update(out=out.decode(), err=err.decode())
