"""A moto S3 server on loopback for the tests (the ``s3_*`` fixtures in ``conftest.py``).

Kept out of ``conftest.py`` so test modules import these helpers normally.
"""

from __future__ import annotations

import socket
from typing import NamedTuple

from moto.server import ThreadedMotoServer

from numerai_assets.files import Buckets

# moto accepts any credentials; passing them explicitly keeps ~/.aws and AWS_* out of the tests.
S3_TEST_CREDENTIALS = {"access_key": "testing", "secret_key": "testing", "region": "us-east-1"}


def start_moto(port: int = 0) -> tuple[ThreadedMotoServer, str]:
    """Start moto's HTTP server on 127.0.0.1 (``port=0``: any free port); return it and its URL."""
    if port:
        # moto's start() would wait forever if its thread failed to bind, so fail here instead.
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()  # returns once the socket is bound
    host, bound_port = server.get_host_and_port()
    return server, f"http://{host}:{bound_port}"


def stop_moto(server: ThreadedMotoServer) -> None:
    """Stop serving *and* close the listening socket (moto's ``stop()`` leaves it bound)."""
    server.stop()
    if server._server is not None:
        server._server.server_close()


class Store(NamedTuple):
    buckets: Buckets
    bucket: str  # exists and is empty
    kind: str  # "local" or "s3"
