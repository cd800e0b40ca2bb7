"""How the intake is served: uvicorn with limits on what one client can hold.

uvicorn bounds some of it by settings and leaves the rest open; what each limit rests on:

- **Header size**: a request head (request line and headers, through the blank line) over
  :data:`MAX_HEADER_BYTES` is answered 431 and the connection closed, whether it arrives in one
  piece or many, first on a connection or later on a kept-alive one. An incomplete head is h11's
  ``max_incomplete_event_size``; a complete one escapes it (h11 checks only while it waits for
  more data: python-hyper/h11#182), so :class:`BoundedConnection` also measures each parsed head
  as the bytes h11 consumed for it (from h11's public ``trailing_data``). The parser is pinned to
  h11 because uvicorn's default, httptools, has no bound on a header's size: a 164 MiB header
  line is buffered whole.
- **Framing**: a request h11 refuses (a malformed request line or header, an invalid or
  conflicting ``Content-Length``, a bad chunk, an unsupported ``Transfer-Encoding``), and one
  that h11 would accept but whose framing a proxy could read differently (``Content-Length``
  together with ``Transfer-Encoding``, or ``Transfer-Encoding`` in HTTP/1.0: RFC 9112 §6.1, §6.3),
  is answered 400 (501 for a transfer coding h11 does not support) and the connection closed, so
  nothing sent behind it is read as a request. uvicorn already closed after h11's refusals (but
  failed with a traceback when the request had been answered before its body went wrong);
  :class:`BoundedConnection` adds the ambiguous ones, and :class:`BoundedH11Protocol` answers with
  h11's status hint instead of uvicorn's fixed 400, or only closes once a response has begun.
- **Time to send the head**: neither parser nor uvicorn has a deadline for it
  (``timeout_keep_alive`` only runs between requests and is reset by every byte received), so
  :class:`BoundedH11Protocol` closes a connection whose request head is not complete
  :data:`HEADER_TIMEOUT_SECONDS` after the connection opened or the previous response ended.
- **Time to send the body**: the app's own deadline (``BODY_TIMEOUT_SECONDS`` in
  :mod:`numerai_assets.intake.app`, answered 408).
- **Open connections**: counted by :class:`BoundedH11Protocol` when a connection opens, over
  uvicorn's own set of open connections: past :data:`MAX_CONNECTIONS_PER_CLIENT` from one client
  address (:func:`client_key`), or :data:`MAX_CONNECTIONS` in all, the new connection is answered
  503 and closed at once. uvicorn's ``limit_concurrency`` is one pool for everyone (one client
  holding it starved all others), so it is set just above :data:`MAX_CONNECTIONS`: it no longer
  bounds connections, only request tasks (which can outlive their connection).
- **Idle keep-alive**: uvicorn's ``timeout_keep_alive`` (:data:`KEEP_ALIVE_SECONDS`).

A connection closed after one of these answers (503, 400, 431, 501) lingers, reading and dropping
at most :data:`LINGER_BYTES` for at most :data:`LINGER_SECONDS`, so that the answer reaches a
client still sending (see :meth:`BoundedH11Protocol._answer_and_close`).

Behind a reverse proxy every connection comes from the proxy's address, so the per-client limit
belongs in the proxy there (nginx: ``limit_conn`` keyed by ``$binary_remote_addr``).
"""

from __future__ import annotations

import asyncio
import http
import ipaddress
import logging
from collections.abc import Callable
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_HEADER_BYTES = 8 * 1024
HEADER_TIMEOUT_SECONDS = 10.0
MAX_CONNECTIONS = 256
MAX_CONNECTIONS_PER_CLIENT = 8
KEEP_ALIVE_SECONDS = 5
LINGER_SECONDS = 2.0
LINGER_BYTES = 64 * 1024

logger = logging.getLogger(__name__)

# What the log says of a refused request: never h11's message, which can quote the request
# (a header holding the key, say).
_REFUSED = {
    400: "a malformed or ambiguously framed request",
    431: f"a request head over {MAX_HEADER_BYTES} bytes",
    501: "a request with an unsupported Transfer-Encoding",
}


class BoundedConnection(h11.Connection):
    """h11's server connection, also refusing (as :exc:`h11.RemoteProtocolError`, which uvicorn
    answers and closes on) what h11 accepts but should not be served:

    - a complete request head over ``max_incomplete_event_size`` (h11 bounds only an incomplete
      one), with status hint 431;
    - a request whose body framing is ambiguous: ``Content-Length`` with ``Transfer-Encoding``
      (h11 lets the latter win; a proxy framing by length would see another request in the body),
      or ``Transfer-Encoding`` in HTTP/1.0; status hint 400.

    The status hint of the last refusal is kept in :attr:`refused_status`, for the protocol's
    answer (not the exception: its traceback would tie this connection, buffer included, in a
    reference cycle that only the garbage collector frees).
    """

    refused_status: int | None = None

    def __init__(self, max_head_bytes: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_head_bytes)
        self.max_head_bytes = max_head_bytes

    def next_event(self) -> Any:
        try:
            if self.their_state is not h11.IDLE:  # no head to read: a body, or paused
                return super().next_event()
            # In IDLE, h11 consumes nothing but a whole head, so the head's size is the drop in
            # unprocessed data. trailing_data copies that data: at most what was read while the
            # previous request was pending (uvicorn then stops reading: a read or two, 256 KiB
            # each), and it is copied a second time only when it is over the limit.
            unprocessed = len(self.trailing_data[0])
            event = super().next_event()
            if isinstance(event, h11.Request):
                if unprocessed > self.max_head_bytes:
                    head = unprocessed - len(self.trailing_data[0])
                    if head > self.max_head_bytes:
                        raise h11.RemoteProtocolError(
                            f"request head of {head} bytes", error_status_hint=431
                        )
                _check_framing(event)
            return event
        except h11.RemoteProtocolError as error:
            self.refused_status = error.error_status_hint
            raise


def _check_framing(request: h11.Request) -> None:
    names = {name for name, _ in request.headers}  # h11 gives them lower-cased
    if b"transfer-encoding" in names and (
        b"content-length" in names or request.http_version == b"1.0"
    ):
        raise h11.RemoteProtocolError("ambiguous body framing", error_status_hint=400)


def client_key(client: tuple[str, int] | None) -> str | None:
    """What the per-client limit counts by: the client's IPv4 address (an IPv4-mapped IPv6 one
    included), or the /64 network of an IPv6 address (one host usually holds a whole /64, so
    counting by address would not bound it); ``None`` without an address (a Unix socket)."""
    if client is None:
        return None
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return client[0]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(address), 64), strict=False))  # no scope id
    return str(address)


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the limits uvicorn lacks (see the module's docstring).

    - **Connections**: a new connection past :data:`MAX_CONNECTIONS_PER_CLIENT` from its
      client's :func:`client_key`, or past :data:`MAX_CONNECTIONS` in all, is answered 503 with
      ``Connection: close`` and closed; nothing it sends is parsed.
    - **Parsing**: :class:`BoundedConnection` instead of h11's plain connection; whatever it or
      h11 refuses is answered with h11's status hint (400, 431 or 501) when a response can still
      be sent, and the connection closed either way; nothing sent behind it is parsed.
    - **Head deadline**: the clock starts when the connection opens, and again when a response
      ends on a connection kept alive; it stops when h11 has parsed the head (request line and
      headers). A client that has not sent a whole head by then, however steadily it trickles
      bytes, is disconnected.

    A connection closed after a last response lingers (:meth:`_answer_and_close`).
    """

    _deadline: asyncio.TimerHandle | None = None  # the head's, or the end of lingering
    _client_key: str | None = None
    _lingering = False
    _lingered = 0  # bytes read and dropped while lingering

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.conn = BoundedConnection(config.h11_max_incomplete_event_size or MAX_HEADER_BYTES)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # now counted in self.connections
        self._arm_deadline(HEADER_TIMEOUT_SECONDS, self._head_too_slow)
        self._client_key = client_key(self.client)
        others = [connection for connection in self.connections if connection is not self]
        if len(others) >= MAX_CONNECTIONS:
            self._refuse_connection("the server has")
        elif self._client_key is not None and (
            sum(getattr(other, "_client_key", None) == self._client_key for other in others)
            >= MAX_CONNECTIONS_PER_CLIENT
        ):
            self._refuse_connection("this client has")

    def data_received(self, data: bytes) -> None:
        if self._lingering:  # read only so that closing does not reset the last response
            self._lingered += len(data)
            if self._lingered > LINGER_BYTES:  # more than any request of ours: stop reading it
                self.transport.close()
            return
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and not self._lingering:
            self._arm_deadline(None)  # the head is parsed

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            # The next request on this connection gets its own deadline.
            self._arm_deadline(HEADER_TIMEOUT_SECONDS, self._head_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._arm_deadline(None)
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """Called by uvicorn when h11 (or :class:`BoundedConnection`) refuses the request: answer
        with the refusal's status unless a response has begun, and close in any case."""
        status = getattr(self.conn, "refused_status", None) or 400
        logger.warning("%s: refused %s", self._client_name(), _REFUSED.get(status, status))
        if self.cycle is not None and not self.cycle.response_complete:
            # The app must not answer this request as well: it sees the client gone, as when
            # uvicorn loses a connection.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            self._answer_and_close(status, http.HTTPStatus(status).phrase)
        else:  # a response is under way or sent: the connection can only be cut
            self.transport.close()

    def _refuse_connection(self, whose: str) -> None:
        logger.warning("%s: refused a connection: %s too many open", self._client_name(), whose)
        self.connections.discard(self)  # counted against no one while it closes
        self._answer_and_close(503, f"Service Unavailable: {whose} too many open connections")

    def _answer_and_close(self, status: int, text: str) -> None:
        """Send a last response and close, lingering: closing a socket with unread input makes
        the kernel reset the connection, which can destroy the response before the client reads
        it (a client whose request is still arriving, or was sent before the server read it). So
        the write side is shut after the response, and what arrives is read and dropped until
        the client closes, for :data:`LINGER_SECONDS` and :data:`LINGER_BYTES` at most: enough
        for any request of this endpoint still in flight, and no more work for a hostile one."""
        body = text.encode("ascii")
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"connection", b"close"),
        ]
        reason = http.HTTPStatus(status).phrase.encode("ascii")
        output = self.conn.send(h11.Response(status_code=status, headers=headers, reason=reason))
        output += self.conn.send(h11.Data(data=body))
        output += self.conn.send(h11.EndOfMessage())
        self.transport.write(output)
        if not self.transport.can_write_eof():  # TLS has no half-close
            self.transport.close()
            return
        self._lingering = True
        self.transport.write_eof()
        self.flow.resume_reading()  # uvicorn pauses reading behind a pipelined request
        # The client's end of file closes it sooner (H11Protocol.eof_received lets it close).
        self._arm_deadline(LINGER_SECONDS, self.transport.close)

    def _client_name(self) -> str:
        return self.client[0] if self.client else "-"

    def _arm_deadline(
        self, seconds: float | None, callback: Callable[[], object] | None = None
    ) -> None:
        """Call ``callback`` in ``seconds``, instead of any deadline set before (none: cancel)."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if seconds is not None and callback is not None:
            self._deadline = self.loop.call_later(seconds, callback)

    def _head_too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        logger.warning(
            "%s: closed a connection whose request headers took over %g s",
            self._client_name(),
            HEADER_TIMEOUT_SECONDS,
        )
        # h11 cannot answer a request it has not parsed; closing is what servers do (nginx too).
        self.transport.close()


def server_config(app: Any, *, host: str, port: int, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration of the intake: ``app`` on ``host:port`` with the limits above.

    ``options`` are passed on to :class:`uvicorn.Config` (logging, for instance); naming one of
    the settings fixed here is a ``TypeError``, so no caller loosens a limit by accident.
    """
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        **options,
        server_header=False,
        ws="none",  # no websocket routes: an upgrade request is answered as plain HTTP
        http=BoundedH11Protocol,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        # Connections are bounded when they open (BoundedH11Protocol), at most MAX_CONNECTIONS:
        # uvicorn answers 503 from this many connections or request tasks on, so one above
        # leaves it bounding request tasks only (a task can outlive its connection).
        limit_concurrency=MAX_CONNECTIONS + 1,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
