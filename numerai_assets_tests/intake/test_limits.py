"""The intake's limits, against the real ``numerai-assets intake`` command over loopback HTTP:
slow clients are cut off, huge headers refused without growing the server, and connections
past the limit answered 503.

Every wait is bounded: a client sends at most one byte a second for at most ``GIVE_UP`` seconds,
and every retry loop has a fixed count.
"""

from __future__ import annotations

import json
import os
import select
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from numerai_assets.intake import (
    BODY_TIMEOUT_SECONDS,
    HEADER_TIMEOUT_SECONDS,
    MAX_CONNECTIONS,
    MAX_HEADER_BYTES,
)
from numerai_assets_tests.conftest import DEPLOYMENT_VARIABLES
from numerai_assets_tests.intake.command import RunningIntake, running_intake

KEY = "k3y-of-the-limits-test-41b2"
GIVE_UP = 30  # seconds: the bound for cutting off a slow client
MiB = 1024 * 1024
WRONG_KEY_REQUEST = json.dumps({"submission_id": "0" * 24, "api_key": "wrong"}).encode()


@pytest.fixture(scope="module")
def intake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIntake]:
    env = {name: value for name, value in os.environ.items() if name not in DEPLOYMENT_VARIABLES}
    env.update(API_KEY=KEY, NUMERAI_ASSETS_HOME=str(tmp_path_factory.mktemp("home")))
    with running_intake(env) as running:
        yield running


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def post_wrong_key(port: int) -> int:
    """The status of a complete, small request (401 once it reaches the app)."""
    with connect(port) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
            % (len(WRONG_KEY_REQUEST), WRONG_KEY_REQUEST)
        )
        return int(read_until_closed(sock).split(b" ", 2)[1])


def read_until_closed(sock: socket.socket) -> bytes:
    """All the server sends until it closes (a reset counts as closing)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def trickle(port: int, head: bytes, data: bytes) -> tuple[float, bytes]:
    """Send ``head``, then ``data`` one byte a second until the server answers or closes
    (``data`` empty: nothing more, just wait).

    Returns (seconds from connecting until the server closed, what it sent). Fails if the
    connection is still open after :data:`GIVE_UP` seconds.
    """
    assert not data or len(data) > GIVE_UP  # so the client never finishes on its own
    start = time.monotonic()
    with connect(port) as sock:
        try:
            sock.sendall(head)
            for second in range(GIVE_UP):
                if data:
                    sock.sendall(data[second : second + 1])
                readable, _, _ = select.select([sock], [], [], 1.0)
                if readable:
                    return time.monotonic() - start, read_until_closed(sock)
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - start, b""
    pytest.fail(f"the server still listened after {GIVE_UP} s of one byte a second")


def vm_rss(pid: int) -> int:
    """The process's resident set size in bytes (``VmRSS`` of ``/proc/<pid>/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def test_slow_clients_are_cut_off_while_others_are_served(intake):
    slow_head = b"POST / HTTP/1.1\r\nHost: x\r\nX-Padding: "
    slow_body_head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
    with ThreadPoolExecutor(3) as pool:
        head = pool.submit(trickle, intake.port, slow_head, b"a" * 100)
        body = pool.submit(trickle, intake.port, slow_body_head, b"{" + b" " * 99)
        silent = pool.submit(trickle, intake.port, b"", b"")  # connects, sends nothing
        time.sleep(2)
        assert post_wrong_key(intake.port) == 401  # the slow ones hold nothing up
        (head_seconds, head_answer) = head.result()
        (body_seconds, body_answer) = body.result()
        (silent_seconds, silent_answer) = silent.result()
    # h11 cannot answer a request it has not parsed: the connection is just closed.
    assert head_answer == b"" and silent_answer == b""
    assert HEADER_TIMEOUT_SECONDS - 1 < head_seconds < GIVE_UP
    assert HEADER_TIMEOUT_SECONDS - 1 < silent_seconds < GIVE_UP
    assert body_answer.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in body_answer.lower()
    assert f"not received within {BODY_TIMEOUT_SECONDS:g} s".encode() in body_answer
    assert BODY_TIMEOUT_SECONDS - 1 < body_seconds < GIVE_UP


def test_a_keep_alive_connection_gets_a_fresh_head_deadline_per_request(intake):
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (
        len(WRONG_KEY_REQUEST),
        WRONG_KEY_REQUEST,
    )
    with connect(intake.port) as sock:
        sock.sendall(request)
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 401 ")
        start = time.monotonic()
        sock.settimeout(1.0)
        closed = False
        # After the response, trickle a second request's head: the keep-alive timer alone
        # (reset by every byte) would never close this connection.
        for byte in b"POST / HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * GIVE_UP:
            try:
                sock.sendall(bytes([byte]))
                if sock.recv(65536) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if time.monotonic() - start > GIVE_UP:
                break
    assert closed and time.monotonic() - start < GIVE_UP


def test_a_1_mib_header_is_refused_and_the_server_does_not_grow(intake):
    huge = b"POST / HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"a" * MiB  # never ends: a Slowloris line

    def refuse(sock: socket.socket) -> bytes:
        try:
            sock.sendall(huge)
        except (BrokenPipeError, ConnectionResetError):
            return b""  # closed before it was all sent: refused
        try:
            return read_until_closed(sock)
        except TimeoutError:
            pytest.fail("the server kept a 1 MiB header line open, buffering it")

    with connect(intake.port) as warm_up:  # the first refusal loads code; measure after it
        refuse(warm_up)
    assert post_wrong_key(intake.port) == 401
    before = vm_rss(intake.process.pid)
    sockets = [connect(intake.port) for _ in range(8)]  # held open while measuring
    try:
        answers = [refuse(sock) for sock in sockets]
        after = vm_rss(intake.process.pid)
    finally:
        for sock in sockets:
            sock.close()
    for answer in answers:  # 400 from uvicorn (h11 hints 431), or closed before answering
        assert answer == b"" or answer.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 431 "))
    # Buffered, the 8 lines would be 8 MiB; refused, they leave nothing behind.
    assert after - before < 2 * MiB, f"RSS grew by {(after - before) / MiB:.1f} MiB"
    assert post_wrong_key(intake.port) == 401


def test_a_header_under_the_limit_is_served(intake):
    padding = b"a" * (MAX_HEADER_BYTES - 200)
    with connect(intake.port) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Padding: %s\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (padding, len(WRONG_KEY_REQUEST), WRONG_KEY_REQUEST)
        )
        assert read_until_closed(sock).startswith(b"HTTP/1.1 401 ")


def test_connections_past_the_limit_are_answered_503(intake):
    # Each idle connection has sent part of a head, so it counts but makes no request.
    idle = [connect(intake.port) for _ in range(MAX_CONNECTIONS - 2)]
    try:
        for sock in idle:
            sock.sendall(b"POST / HTTP/1.1\r\n")
        assert post_wrong_key(intake.port) == 401  # the limit is not reached yet
        idle.append(connect(intake.port))
        idle[-1].sendall(b"POST / HTTP/1.1\r\n")
        statuses = []
        for _ in range(20):  # the server accepts connections in order; allow it to catch up
            statuses.append(post_wrong_key(intake.port))
            if statuses[-1] == 503:
                break
            time.sleep(0.1)
        assert statuses[-1] == 503, statuses
    finally:
        for sock in idle:
            sock.close()
    statuses = []
    for _ in range(20):  # once the server has seen them close, requests are served again
        statuses.append(post_wrong_key(intake.port))
        if statuses[-1] == 401:
            break
        time.sleep(0.1)
    assert statuses[-1] == 401, statuses
