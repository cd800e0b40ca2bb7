"""The tournament's scoring math: plain numpy/scipy/scikit-learn, no Dagster.

Everything here takes arrays aligned to the round's tournament-id order and returns result
objects; reading files and talking to databases happens elsewhere.
"""

from numerai_assets.scoring.concordance import (
    ConcordanceResult,
    RoundClusters,
    concordance,
    fit_clusters,
)
from numerai_assets.scoring.consistency import ConsistencyResult, consistency
from numerai_assets.scoring.correlation import correlations
from numerai_assets.scoring.ks import ks_statistic, ks_statistics
from numerai_assets.scoring.originality import OriginalityResult, originality
from numerai_assets.scoring.policy import ScoringPolicy, refusal
from numerai_assets.scoring.submission import (
    SubmissionError,
    SubmissionReader,
    read_submission,
    size_limit,
)

__all__ = [
    "ConcordanceResult",
    "ConsistencyResult",
    "OriginalityResult",
    "RoundClusters",
    "ScoringPolicy",
    "SubmissionError",
    "SubmissionReader",
    "concordance",
    "consistency",
    "correlations",
    "fit_clusters",
    "ks_statistic",
    "ks_statistics",
    "originality",
    "read_submission",
    "refusal",
    "size_limit",
]
