"""Scoring a batch of one round's submissions: the steps the Dagster ops run, without Dagster.

1. :func:`~.prepare.prepare_batch` reads each file, computes consistency and (re-)pends the
   submission; unreadable files are set aside with their reason (:mod:`.select` picks the batch
   and what coming early makes it decide again).
2. :func:`~.prepare.score_concordance` needs only the round's clusters.
3. :func:`~.originality.plan_pairs` and :func:`~.originality.compute_pairs` store the statistics
   of every new pair of the round (phase 1, in shards); :func:`~.originality.score_originality`
   walks the round in (``created``, ``_id``) order and decides each submission of the batch
   against what comes before it (phase 2).
4. :func:`~.write.write_results` writes each submission's result in one atomic update.

Each step is a plain function over the store, the submission files and the round's data, so it
is tested directly and the ops stay a thin layer.
"""

from numerai_assets.batch.files import SubmissionFiles
from numerai_assets.batch.originality import (
    OriginalityScores,
    compute_pairs,
    plan_pairs,
    score_originality,
)
from numerai_assets.batch.prepare import (
    BatchEntry,
    PreparedBatch,
    prepare_batch,
    score_concordance,
)
from numerai_assets.batch.select import check_batch_ids
from numerai_assets.batch.write import write_results

__all__ = [
    "BatchEntry",
    "OriginalityScores",
    "PreparedBatch",
    "SubmissionFiles",
    "check_batch_ids",
    "compute_pairs",
    "plan_pairs",
    "prepare_batch",
    "score_concordance",
    "score_originality",
    "write_results",
]
