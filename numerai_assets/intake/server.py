"""How the intake is served: uvicorn with limits on what one client can hold.

uvicorn bounds some of it by settings and leaves the rest open; what each limit rests on:

- **Header size**: the h11 parser refuses a request head over :data:`MAX_HEADER_BYTES` (h11's
  ``max_incomplete_event_size``; uvicorn answers 400 and closes). The parser is pinned to h11
  because uvicorn's default, httptools, has no bound on a header's size: a 164 MiB header line
  is buffered whole.
- **Time to send the head**: neither parser nor uvicorn has a deadline for it
  (``timeout_keep_alive`` only runs between requests and is reset by every byte received), so
  :class:`DeadlineH11Protocol` closes a connection whose request head is not complete
  :data:`HEADER_TIMEOUT_SECONDS` after the connection opened or the previous response ended.
- **Time to send the body**: the app's own deadline (``BODY_TIMEOUT_SECONDS`` in
  :mod:`numerai_assets.intake.app`, answered 408).
- **Concurrent connections**: uvicorn's ``limit_concurrency``: from :data:`MAX_CONNECTIONS` open
  connections on, requests are answered 503 without reaching the app.
- **Idle keep-alive**: uvicorn's ``timeout_keep_alive`` (:data:`KEEP_ALIVE_SECONDS`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_HEADER_BYTES = 8 * 1024
HEADER_TIMEOUT_SECONDS = 10.0
MAX_CONNECTIONS = 32
KEEP_ALIVE_SECONDS = 5

logger = logging.getLogger(__name__)


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for receiving each request's head.

    The clock starts when the connection opens, and again when a response ends on a connection
    kept alive; it stops when h11 has parsed the head (request line and headers). A client that
    has not sent a whole head by then, however steadily it trickles bytes, is disconnected.
    """

    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head is parsed (or the request refused)
            self._disarm_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_head_deadline()  # the next request on this connection gets its own

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_deadline = self.loop.call_later(HEADER_TIMEOUT_SECONDS, self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing():
            return
        client = self.client[0] if self.client else "-"
        logger.warning(
            "%s: closed a connection whose request headers took over %g s",
            client,
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
        http=DeadlineH11Protocol,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        limit_concurrency=MAX_CONNECTIONS,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
