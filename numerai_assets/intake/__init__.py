"""The original system's authenticated intake endpoint, as a small starlette app.

Callers POST a submission id and the shared key; the submission is flagged and the pipeline's
sensor scores it on its next tick. Served by ``numerai-assets intake``.
"""

from numerai_assets.intake.app import MAX_BODY_BYTES, create_app

__all__ = ["MAX_BODY_BYTES", "create_app"]
