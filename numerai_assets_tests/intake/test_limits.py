"""The intake's limits, against the real ``numerai-assets intake`` command over loopback HTTP:
slow clients are cut off, oversized heads and badly framed requests refused and their connection
closed, and connections past a client's share, or past the total, answered 503.

Each test connects from loopback addresses of its own (Linux routes all of 127.0.0.0/8 to the
loopback interface): the per-client limit counts by address, so connections one test leaves
closing never count against the next.

Every wait is bounded: a client sends at most one byte a second for at most ``GIVE_UP`` seconds,
a socket waits at most ``TIMEOUT`` seconds for an answer, and every retry loop has a fixed count.
"""

from __future__ import annotations

import http.client
import io
import itertools
import json
import os
import select
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from numerai_assets.intake import (
    BODY_TIMEOUT_SECONDS,
    HEADER_TIMEOUT_SECONDS,
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_CLIENT,
    MAX_HEADER_BYTES,
)
from numerai_assets.intake.server import client_key
from numerai_assets_tests.conftest import DEPLOYMENT_VARIABLES
from numerai_assets_tests.intake.command import RunningIntake, running_intake

KEY = "k3y-of-the-limits-test-41b2"
GIVE_UP = 30  # seconds: the bound for cutting off a slow client
TIMEOUT = 5  # seconds a socket waits for the server (an answer, or its closing)
MiB = 1024 * 1024
WRONG_KEY_REQUEST = json.dumps({"submission_id": "0" * 24, "api_key": "wrong"}).encode()
_addresses = itertools.count(1)


def fresh_address() -> str:
    """A loopback address no other test connects from."""
    number = next(_addresses)
    return f"127.{number // 250 + 1}.{number % 250 + 1}.1"


def intake_env(home: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in DEPLOYMENT_VARIABLES}
    env.update(API_KEY=KEY, NUMERAI_ASSETS_HOME=str(home))
    return env


@pytest.fixture(scope="module")
def intake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIntake]:
    with running_intake(intake_env(tmp_path_factory.mktemp("home"))) as running:
        yield running
    assert "Traceback" not in running.output["err"], running.output["err"][-4000:]


def connect(port: int, source: str) -> socket.socket:
    sock = socket.socket()
    try:
        sock.settimeout(TIMEOUT)
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return sock


def wrong_key_request(*, close: bool = True, head_bytes: int | None = None) -> bytes:
    """A complete POST with the wrong key (answered 401); with ``head_bytes``, padded so that its
    head (request line through the blank line) is exactly that long."""
    start = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % len(WRONG_KEY_REQUEST)
    if close:
        start += b"Connection: close\r\n"
    if head_bytes is not None:
        padding = head_bytes - len(start) - len(b"X-Padding: \r\n\r\n")
        start += b"X-Padding: %s\r\n" % (b"a" * padding)
        assert len(start) + 2 == head_bytes
    return start + b"\r\n" + WRONG_KEY_REQUEST


def post_wrong_key(port: int, source: str) -> int:
    """The status of a complete, small request (401 once it reaches the app)."""
    with connect(port, source) as sock:
        sock.sendall(wrong_key_request())
        return int(read_until_closed(sock).split(b" ", 2)[1])


def read_until_closed(sock: socket.socket) -> bytes:
    """All the server sends until it closes (a reset counts as closing); a socket timeout if it
    has not closed within ``TIMEOUT`` seconds of its last byte."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def answers_then_closed(sock: socket.socket) -> list[tuple[int, str | None, bytes]]:
    """The (status, Connection header, body) of each response the server sends before it
    closes; fails if it is still open ``TIMEOUT`` seconds after its last byte."""
    try:
        received = read_until_closed(sock)
    except TimeoutError:
        pytest.fail(f"the connection was still open {TIMEOUT} s after the server's last byte")
    return responses(received)


class _Unclosable(io.BytesIO):
    def close(self) -> None:  # http.client closes its file after each response
        pass


def responses(received: bytes) -> list[tuple[int, str | None, bytes]]:
    """The responses in ``received``, in order, parsed by :mod:`http.client`."""
    stream = _Unclosable(received)
    found = []
    while stream.tell() < len(received):
        response = http.client.HTTPResponse(SimpleNamespace(makefile=lambda mode: stream))
        response.begin()
        found.append((response.status, response.getheader("connection"), response.read()))
    return found


def trickle(port: int, source: str, head: bytes, data: bytes) -> tuple[float, bytes]:
    """Connect, send ``head``, then ``data`` one byte a second (see :func:`trickle_on`)."""
    with connect(port, source) as sock:
        sock.sendall(head)
        return trickle_on(sock, data)


def trickle_on(sock: socket.socket, data: bytes) -> tuple[float, bytes]:
    """Send ``data`` one byte a second until the server answers or closes (``data`` empty:
    send nothing, just wait).

    Returns (seconds until the server closed, what it sent). Fails if the connection is still
    open after :data:`GIVE_UP` seconds.
    """
    assert not data or len(data) > GIVE_UP  # so the client never finishes on its own
    start = time.monotonic()
    try:
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


def log_since(intake: RunningIntake, start: int) -> str:
    """The server's log from offset ``start``, read past all it wrote until now: a request is
    made from an address of its own, and its access line waited for."""
    barrier = fresh_address()
    assert post_wrong_key(intake.port, barrier) == 401
    return intake.log_until(f'{barrier} "POST /" 401')[start:]


def served_again(port: int, source: str) -> list[int]:
    """Statuses of requests from ``source`` until one is served (401), 20 tries at most: the
    server sees closed connections go shortly after the client closes them."""
    statuses = []
    for _ in range(20):
        statuses.append(post_wrong_key(port, source))
        if statuses[-1] == 401:
            break
        time.sleep(0.1)
    return statuses


# Slow clients


def test_slow_clients_are_cut_off_while_others_are_served(intake):
    client = fresh_address()
    slow_head = b"POST / HTTP/1.1\r\nHost: x\r\nX-Padding: "
    slow_body_head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
    with ThreadPoolExecutor(3) as pool:
        head = pool.submit(trickle, intake.port, client, slow_head, b"a" * 100)
        body = pool.submit(trickle, intake.port, client, slow_body_head, b"{" + b" " * 99)
        silent = pool.submit(trickle, intake.port, client, b"", b"")  # connects, sends nothing
        time.sleep(2)
        assert post_wrong_key(intake.port, client) == 401  # the slow ones hold nothing up
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
    with connect(intake.port, fresh_address()) as sock:
        sock.sendall(wrong_key_request(close=False))
        response = http.client.HTTPResponse(sock, method="POST")
        response.begin()
        assert (response.status, json.loads(response.read())) == (401, {"error": "wrong api_key"})
        # Then a second request's head, trickled: the keep-alive timer alone (restarted by
        # every byte) would never close this connection.
        seconds, answer = trickle_on(sock, b"POST / HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 50)
    assert answer == b"", (seconds, answer)
    assert HEADER_TIMEOUT_SECONDS - 1 < seconds < GIVE_UP, (seconds, answer)


# Header size


def test_a_1_mib_header_is_refused_and_the_server_does_not_grow(intake):
    huge = b"POST / HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"a" * MiB  # never ends: a Slowloris line

    def refuse(sock: socket.socket) -> list:
        try:
            sock.sendall(huge)
        except (BrokenPipeError, ConnectionResetError):
            return []  # reset while sending: refused before it was all sent
        return answers_then_closed(sock)

    with connect(intake.port, fresh_address()) as warm_up:  # the first refusal loads code
        refuse(warm_up)
    assert post_wrong_key(intake.port, fresh_address()) == 401
    before = vm_rss(intake.process.pid)
    client = fresh_address()
    sockets = [connect(intake.port, client) for _ in range(MAX_CONNECTIONS_PER_CLIENT)]
    try:  # held open while measuring
        answers = [refuse(sock) for sock in sockets]
        after = vm_rss(intake.process.pid)
    finally:
        for sock in sockets:
            sock.close()
    for answer in answers:  # 431, or reset unread: past LINGER_BYTES the server stops reading
        assert [(status, connection) for status, connection, _ in answer] in ([], [(431, "close")])
    # Buffered, the 8 lines would be 8 MiB; refused, they leave nothing behind.
    assert after - before < 2 * MiB, f"RSS grew by {(after - before) / MiB:.1f} MiB"
    assert post_wrong_key(intake.port, fresh_address()) == 401


def test_a_head_of_exactly_the_limit_is_served(intake):
    with connect(intake.port, fresh_address()) as sock:
        sock.sendall(wrong_key_request(head_bytes=MAX_HEADER_BYTES))
        assert [status for status, _, _ in answers_then_closed(sock)] == [401]


OVERSIZED_HEADS = {
    # The measured sample: h11 bounds only a head still incomplete, this one arrives whole.
    "60,000 bytes at once": wrong_key_request(head_bytes=60_000),
    "one byte over the limit, at once": wrong_key_request(head_bytes=MAX_HEADER_BYTES + 1),
    # Counted as sent, not as parsed: h11 strips a value's surrounding whitespace ...
    "padded with whitespace": wrong_key_request().replace(
        b"Host: x\r\n", b"Host: x" + b" " * 60_000 + b"\r\n"
    ),
    # ... and joins folded lines (obs-fold) with one space.
    "padded with folded lines": wrong_key_request().replace(
        b"Host: x\r\n", b"Host: x" + b"\r\n " * 20_000 + b"\r\n"
    ),
}


@pytest.mark.parametrize("request_bytes", OVERSIZED_HEADS.values(), ids=OVERSIZED_HEADS.keys())
def test_a_whole_head_over_the_limit_is_431_and_closed(intake, request_bytes):
    client = fresh_address()
    with connect(intake.port, client) as sock:
        sock.sendall(request_bytes)
        answers = answers_then_closed(sock)
    assert [(status, connection) for status, connection, _ in answers] == [(431, "close")]
    assert post_wrong_key(intake.port, client) == 401


def test_a_head_over_the_limit_in_many_packets_is_431_and_closed(intake):
    request_bytes = wrong_key_request(head_bytes=60_000)
    with connect(intake.port, fresh_address()) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one packet per send
        try:
            for start in range(0, len(request_bytes), 500):
                sock.sendall(request_bytes[start : start + 500])
        except (BrokenPipeError, ConnectionResetError):
            pytest.fail("the server reset the connection before its answer could be read")
        answers = answers_then_closed(sock)
    assert [(status, connection) for status, connection, _ in answers] == [(431, "close")]


def test_a_head_completed_past_the_limit_by_its_last_packet_is_431_and_closed(intake):
    # The first part is under the limit and incomplete; the second completes the head at once.
    request_bytes = wrong_key_request(head_bytes=60_000)
    first, rest = request_bytes[: MAX_HEADER_BYTES - 100], request_bytes[MAX_HEADER_BYTES - 100 :]
    with connect(intake.port, fresh_address()) as sock:
        sock.sendall(first)
        time.sleep(0.2)  # most likely read by the server on its own (either way it is refused)
        sock.sendall(rest)
        answers = answers_then_closed(sock)
    assert [(status, connection) for status, connection, _ in answers] == [(431, "close")]


def test_a_second_head_over_the_limit_on_a_kept_alive_connection_is_431_and_closed(intake):
    with connect(intake.port, fresh_address()) as sock:
        sock.sendall(wrong_key_request(close=False))
        response = http.client.HTTPResponse(sock, method="POST")
        response.begin()
        assert (response.status, response.read()) == (401, b'{"error":"wrong api_key"}')
        sock.sendall(wrong_key_request(head_bytes=60_000))
        answers = answers_then_closed(sock)
    assert [(status, connection) for status, connection, _ in answers] == [(431, "close")]


def test_a_pipelined_head_over_the_limit_is_431_after_the_request_before_it(intake):
    with connect(intake.port, fresh_address()) as sock:
        sock.sendall(wrong_key_request(close=False) + wrong_key_request(head_bytes=60_000))
        answers = answers_then_closed(sock)
    assert [(status, connection) for status, connection, _ in answers] == [
        (401, None),
        (431, "close"),
    ]


# Framing: a request whose end is in doubt is answered, and nothing behind it is read


def chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


POST = b"POST / HTTP/1.1\r\nHost: x\r\n"
FRAMING_ERRORS = {
    # The measured sample. A proxy framing by length would take the chunked body's tail, or
    # the request behind it, for a request of its own.
    "Content-Length and Transfer-Encoding": (
        POST
        + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked(WRONG_KEY_REQUEST),
        400,
    ),
    "Transfer-Encoding and Content-Length": (
        POST
        + b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n" % len(WRONG_KEY_REQUEST)
        + chunked(WRONG_KEY_REQUEST),
        400,
    ),
    "Transfer-Encoding in HTTP/1.0": (
        b"POST / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n"
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + chunked(WRONG_KEY_REQUEST),
        400,
    ),
    "an invalid Content-Length": (POST + b"Content-Length: 5x\r\n\r\nhello", 400),
    "a negative Content-Length": (POST + b"Content-Length: -5\r\n\r\nhello", 400),
    "two different Content-Lengths": (
        POST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        400,
    ),
    "a Content-Length list that disagrees": (POST + b"Content-Length: 5, 6\r\n\r\nhello!", 400),
    "a bad chunk size": (POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
    "a chunk longer than its size": (
        POST + b"Transfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n",
        400,
    ),
    "a malformed request line": (b"POST  / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 400),
    "a request line without a version": (b"POST /\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 400),
    "a space before a header's colon": (
        POST + b"Transfer-Encoding : chunked\r\n\r\n" + chunked(WRONG_KEY_REQUEST),
        400,
    ),
    "a header line without a colon": (POST + b"Content-Length 0\r\n\r\n", 400),
    "an unsupported Transfer-Encoding": (
        POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n" + chunked(WRONG_KEY_REQUEST),
        501,
    ),
    "two Transfer-Encoding headers": (
        POST
        + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked(WRONG_KEY_REQUEST),
        501,
    ),
}


@pytest.mark.parametrize(
    ("request_bytes", "status"), FRAMING_ERRORS.values(), ids=FRAMING_ERRORS.keys()
)
def test_a_framing_error_is_answered_and_closed_with_nothing_behind_it_answered(
    intake, request_bytes, status
):
    client, start = fresh_address(), len(intake.log())
    with connect(intake.port, client) as sock:
        # A request pipelined behind it: answered (then closed) if the server read on.
        sock.sendall(request_bytes + wrong_key_request())
        answers = answers_then_closed(sock)
    assert [(status, connection) for status, connection, _ in answers] == [(status, "close")]
    assert post_wrong_key(intake.port, client) == 401
    assert "Traceback" not in log_since(intake, start)


def test_a_framing_error_after_the_answer_cuts_the_connection_without_a_traceback(intake):
    start = len(intake.log())
    with connect(intake.port, fresh_address()) as sock:
        # A GET is answered (401: wrong key) without its body being read ...
        sock.sendall(
            b"GET /submissions/%s HTTP/1.1\r\nHost: x\r\nX-API-Key: wrong\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" % (b"0" * 24)
        )
        response = http.client.HTTPResponse(sock, method="GET")
        response.begin()
        assert (response.status, response.read()) == (401, b'{"error":"wrong api_key"}')
        # ... then the body's framing fails: no second answer to that request, nothing more read.
        sock.sendall(b"zz\r\nhello\r\n0\r\n\r\n" + wrong_key_request())
        assert answers_then_closed(sock) == []
    log = log_since(intake, start)
    assert "Traceback" not in log
    assert "refused a malformed or ambiguously framed request" in log


# Connections


def test_one_client_holding_many_connections_leaves_others_served(intake):
    hog, other = fresh_address(), fresh_address()
    # The measured attack: about 34 connections held by one client, each with part of a head.
    held = [connect(intake.port, hog) for _ in range(34)]
    try:
        for sock in held:
            sock.sendall(b"POST / HTTP/1.1\r\n")
        assert post_wrong_key(intake.port, other) == 401
        # The server takes connections in order: the first ones are open (and silent), every
        # one past the client's share was answered 503 and closed.
        kept, refused = held[:MAX_CONNECTIONS_PER_CLIENT], held[MAX_CONNECTIONS_PER_CLIENT:]
        for sock in refused:
            [(status, connection, body)] = answers_then_closed(sock)
            assert (status, connection) == (503, "close")
            assert b"too many open connections" in body
        readable, _, _ = select.select(kept, [], [], 0)
        assert readable == []
        assert post_wrong_key(intake.port, hog) == 503
    finally:
        for sock in held:
            sock.close()
    assert served_again(intake.port, hog)[-1] == 401


def test_connections_past_the_total_are_refused_and_open_ones_served(tmp_path):
    # A server of its own: the total counts every open connection, whichever test opened it.
    with running_intake(intake_env(tmp_path)) as intake:
        clients = [fresh_address() for _ in range(MAX_CONNECTIONS // MAX_CONNECTIONS_PER_CLIENT)]
        held = [
            connect(intake.port, client)
            for client in clients
            for _ in range(MAX_CONNECTIONS_PER_CLIENT)
        ]
        try:
            assert len(held) == MAX_CONNECTIONS
            with connect(intake.port, fresh_address()) as extra:
                [(status, connection, body)] = answers_then_closed(extra)
            assert (status, connection) == (503, "close")
            assert b"the server has too many open connections" in body
            # The connections already open are served.
            held[0].sendall(wrong_key_request())
            assert [status for status, _, _ in answers_then_closed(held[0])] == [401]
        finally:
            for sock in held:
                sock.close()
        assert served_again(intake.port, fresh_address())[-1] == 401


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),  # IPv4 on a dual-stack socket
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),  # the same host's /64
        ("fe80::1%eth0", "fe80::/64"),
    ],
)
def test_the_per_client_limit_counts_ipv4_by_address_and_ipv6_by_64(address, key):
    assert client_key((address, 5151)) == key
    assert client_key(None) is None
