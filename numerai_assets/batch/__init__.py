"""Scoring a batch of one round's submissions: the steps the Dagster ops run, without Dagster.

Each step is a plain function over the store, the submission files and the round's data, so it
is tested directly and the ops stay a thin layer.
"""

from numerai_assets.batch.files import SubmissionFiles
from numerai_assets.batch.steps import (
    BatchEntry,
    PreparedBatch,
    prepare_batch,
    score_concordance,
    score_originality,
    write_results,
)

__all__ = [
    "BatchEntry",
    "PreparedBatch",
    "SubmissionFiles",
    "prepare_batch",
    "score_concordance",
    "score_originality",
    "write_results",
]
