"""``intake``: serve the original system's endpoint that flags a submission for (re)scoring.

The shared key comes only from ``API_KEY`` (never a flag, which would show in ``ps``). It listens
on loopback unless told otherwise: the key travels in the body, so anything beyond loopback
belongs behind a TLS-terminating proxy. Header size, the time to send headers and body, and
concurrent connections are bounded (:mod:`numerai_assets.intake.server`).
"""

from __future__ import annotations

import argparse
import copy
import os
from collections.abc import Callable

from numerai_assets.settings import Settings
from numerai_assets.store import SubmissionStore, open_database, redact_url

LOGGER = "numerai_assets.intake"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("intake", help="serve the endpoint that flags submissions")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    parser.add_argument("--port", type=int, default=5151)
    parser.set_defaults(run=run)


def store_factory(settings: Settings) -> Callable[[], SubmissionStore]:
    """A store per calling thread: ``open_database`` caches the embedded client per thread."""
    return lambda: SubmissionStore(open_database(settings))


def run(args: argparse.Namespace) -> int:
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from numerai_assets.intake import create_app, server_config

    api_key = os.environ.get("API_KEY", "")
    if not api_key.strip():
        raise ValueError("API_KEY must be set (the key callers send as api_key)")
    settings = Settings.from_env()
    stores = store_factory(settings)
    stores()  # a malformed MONGO_URL fails here, before listening
    # uvicorn's access lines would show query strings; the app logs its own (see AccessLog).
    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["loggers"][LOGGER] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    store = redact_url(settings.mongo_url) if settings.mongo_url else settings.embedded_store_dir
    print(f"intake: flagging submissions in {store}", flush=True)
    config = server_config(
        create_app(api_key, stores),
        host=args.host,
        port=args.port,
        log_level="info",
        log_config=log_config,
        access_log=False,
    )
    uvicorn.Server(config).run()
    return 0
