"""The submissions store: submissions and competition leaderboards in MongoDB or, with
``MONGO_URL`` unset, an embedded on-disk montydb store. No Dagster here.
"""

from numerai_assets.store.connection import open_database, redact_url, write_lock
from numerai_assets.store.submissions import (
    RoundBusy,
    StoreError,
    SubmissionNotFound,
    SubmissionStore,
)
from numerai_assets.store.validation import malformed_reason

__all__ = [
    "RoundBusy",
    "StoreError",
    "SubmissionNotFound",
    "SubmissionStore",
    "malformed_reason",
    "open_database",
    "redact_url",
    "write_lock",
]
