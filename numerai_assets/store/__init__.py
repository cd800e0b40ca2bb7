"""The submissions store: submissions and competition leaderboards in MongoDB or, with
``MONGO_URL`` unset, an embedded on-disk montydb store. No Dagster here.
"""

from numerai_assets.store.connection import open_database, redact_url, write_lock
from numerai_assets.store.documents import Cursor
from numerai_assets.store.submissions import (
    RoundBusy,
    StoreError,
    SubmissionNotFound,
    SubmissionStore,
    cursor_of,
    decode_cursor,
    encode_cursor,
    latest_comparable_per_user,
    malformed_reason,
)

__all__ = [
    "Cursor",
    "RoundBusy",
    "StoreError",
    "SubmissionNotFound",
    "SubmissionStore",
    "cursor_of",
    "decode_cursor",
    "encode_cursor",
    "latest_comparable_per_user",
    "malformed_reason",
    "open_database",
    "redact_url",
    "write_lock",
]
