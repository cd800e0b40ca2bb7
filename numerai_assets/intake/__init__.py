"""The original system's authenticated intake endpoint, as a small starlette app.

Callers POST a submission id and the shared key; the submission is flagged and the pipeline's
sensor scores it on its next tick. Served by ``numerai-assets intake`` under uvicorn with the
limits of :mod:`numerai_assets.intake.server`.
"""

from numerai_assets.intake.app import BODY_TIMEOUT_SECONDS, MAX_BODY_BYTES, create_app
from numerai_assets.intake.server import (
    HEADER_TIMEOUT_SECONDS,
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_CLIENT,
    MAX_HEADER_BYTES,
    server_config,
)

__all__ = [
    "BODY_TIMEOUT_SECONDS",
    "HEADER_TIMEOUT_SECONDS",
    "MAX_BODY_BYTES",
    "MAX_CONNECTIONS",
    "MAX_CONNECTIONS_PER_CLIENT",
    "MAX_HEADER_BYTES",
    "create_app",
    "server_config",
]
