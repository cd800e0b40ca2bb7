"""Per-round cache of scored submissions' predictions (memory-mapped matrices)."""

from numerai_assets.prediction_cache.mirror import PredictionMirror
from numerai_assets.prediction_cache.round_cache import (
    CacheLocation,
    RoundPredictionCache,
    fingerprint,
)

__all__ = ["CacheLocation", "PredictionMirror", "RoundPredictionCache", "fingerprint"]
