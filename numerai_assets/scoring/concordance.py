"""Concordance: does a submission behave alike on the validation, test and live rows?

The round's feature space is cut into clusters (KMeans, fitted once per round on training +
tournament features). Within a cluster, rows are alike, so an honest model's probabilities
should be distributed alike on its validation, test and live rows; a model that memorised the
validation rows is not. Per cluster we take the largest of the three pairwise KS statistics;
the score is their mean over clusters, and a submission is concordant when it is below the
policy's ``concordance_threshold`` (0.12). Every KS is an exact rational (an integer count over
``n_a * n_b``), and so is their mean: the comparison with the threshold is exact.

Empty splits: a pair is only compared when both of its splits have rows in the cluster. A
cluster whose rows fall in fewer than two splits has nothing to compare and is left out of
the mean (its detail says so). A round in which no cluster has rows in two splits cannot be
scored: :func:`concordance` raises ``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from itertools import combinations

import numpy as np
from sklearn.cluster import MiniBatchKMeans

from numerai_assets.scoring._arrays import as_vector
from numerai_assets.scoring.exact import as_written
from numerai_assets.scoring.ks import _ks_count
from numerai_assets.scoring.policy import ScoringPolicy

SPLITS = ("validation", "test", "live")
_DEFAULT = ScoringPolicy()


def fit_clusters(
    features: np.ndarray,
    *,
    n_clusters: int = _DEFAULT.n_clusters,
    random_state: int = _DEFAULT.random_state,
) -> MiniBatchKMeans:
    """Fit the round's KMeans on its training + tournament features (shape ``(m, k)``).

    Seeded, so fitting the same round again gives the same clusters.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < n_clusters:
        raise ValueError(
            f"features must be a 2-d array with at least {n_clusters} rows, got shape {x.shape}"
        )
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or infinite values")
    model = MiniBatchKMeans(
        n_clusters=n_clusters, random_state=random_state, n_init=3, batch_size=4096
    )
    return model.fit(x)


@dataclass(frozen=True)
class RoundClusters:
    """Each tournament row's cluster and split, in the round's tournament-id order.

    Built once per round; :meth:`groups` are the row indices of every (cluster, split), which is
    all that scoring a submission needs.
    """

    labels: np.ndarray  # (n,) cluster of each tournament row
    splits: np.ndarray  # (n,) index into SPLITS of each tournament row
    n_clusters: int

    def __post_init__(self) -> None:
        labels, splits = np.asarray(self.labels), np.asarray(self.splits)
        if labels.shape != splits.shape or labels.ndim != 1:
            raise ValueError(
                "labels and splits must be 1-d arrays of the same length, got shapes "
                f"{labels.shape} and {splits.shape}"
            )
        n = self.n_clusters
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n_clusters must be a positive whole number, got {n!r}")
        # groups() keys each row by label * 3 + split: a label or split out of range would put
        # the row in another cluster's group, or in none.
        for name, values, top in (("labels", labels, n), ("splits", splits, len(SPLITS))):
            if values.size and (
                values.dtype.kind not in "iu" or values.min() < 0 or values.max() >= top
            ):
                raise ValueError(f"{name} must be whole numbers from 0 to {top - 1}")
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "splits", splits)

    @classmethod
    def from_data_types(
        cls, labels: np.ndarray, data_types: np.ndarray, n_clusters: int = _DEFAULT.n_clusters
    ) -> RoundClusters:
        """From each row's cluster label and its ``data_type`` (validation/test/live)."""
        data_types = np.asarray(data_types).astype(str)
        splits = np.full(data_types.shape, -1, dtype=np.int64)
        for code, name in enumerate(SPLITS):
            splits[data_types == name] = code
        if (splits < 0).any():
            unknown = sorted(set(data_types[splits < 0].tolist()))
            raise ValueError(f"unknown data_type values {unknown}; expected one of {SPLITS}")
        return cls(np.asarray(labels, dtype=np.int64), splits, n_clusters)

    def groups(self) -> list[list[np.ndarray]]:
        """``groups()[c][s]``: tournament row indices of cluster ``c`` in split ``SPLITS[s]``."""
        key = self.labels * len(SPLITS) + self.splits
        order = np.argsort(key, kind="stable")
        bounds = np.searchsorted(key[order], np.arange(self.n_clusters * len(SPLITS) + 1))
        flat = [order[bounds[g] : bounds[g + 1]] for g in range(len(bounds) - 1)]
        return [flat[c * len(SPLITS) : (c + 1) * len(SPLITS)] for c in range(self.n_clusters)]

    def sizes(self) -> list[dict[str, int]]:
        """Rows per split in each cluster."""
        return [
            {name: int(idx.size) for name, idx in zip(SPLITS, cluster, strict=True)}
            for cluster in self.groups()
        ]


@dataclass(frozen=True)
class ClusterConcordance:
    cluster: int
    sizes: dict[str, int]
    ks: dict[str, float | None]  # "validation/test", "validation/live", "test/live"
    max_ks: float | None  # None: fewer than two splits have rows, left out of the mean


@dataclass(frozen=True)
class ConcordanceResult:
    score: float
    concordant: bool
    clusters: tuple[ClusterConcordance, ...]


def concordance(
    probabilities: np.ndarray,
    clusters: RoundClusters,
    *,
    policy: ScoringPolicy | None = None,
    groups: list[list[np.ndarray]] | None = None,
) -> ConcordanceResult:
    """Concordance of a submission whose ``probabilities`` follow the tournament-id order.

    ``groups`` is ``clusters.groups()``; pass it when scoring many submissions of one round.
    The score is reported as a float; the decision is taken on its exact rational value.
    """
    rules = policy or _DEFAULT
    p = as_vector(probabilities, "probabilities")
    if p.shape != clusters.labels.shape:
        raise ValueError(
            f"probabilities has {p.shape[0]} values but the round has "
            f"{clusters.labels.shape[0]} tournament rows"
        )
    groups = clusters.groups() if groups is None else groups
    details, scored = [], []
    for c, cluster in enumerate(groups):
        samples = [np.sort(p[idx]) for idx in cluster]
        ks: dict[str, Fraction | None] = {}
        for (i, a), (j, b) in combinations(enumerate(samples), 2):
            name = f"{SPLITS[i]}/{SPLITS[j]}"
            ks[name] = Fraction(_ks_count(a, b), a.size * b.size) if a.size and b.size else None
        measured = [v for v in ks.values() if v is not None]
        if measured:
            scored.append(max(measured))
        details.append(
            ClusterConcordance(
                cluster=c,
                sizes={name: int(s.size) for name, s in zip(SPLITS, samples, strict=True)},
                ks={name: None if v is None else float(v) for name, v in ks.items()},
                max_ks=float(max(measured)) if measured else None,
            )
        )
    if not scored:
        raise ValueError("no cluster has rows in two splits; concordance cannot be measured")
    score = sum(scored, Fraction(0)) / len(scored)
    return ConcordanceResult(
        score=float(score),
        concordant=score < as_written(rules.concordance_threshold),
        clusters=tuple(details),
    )


@dataclass(frozen=True)
class FittedClusters:
    """A round's clustering: the fitted model and each tournament row's cluster.

    Kept per round so every submission of the round is scored against the same clusters.
    """

    model: MiniBatchKMeans
    clusters: RoundClusters
    tournament_ids: np.ndarray
    random_state: int

    @property
    def inertia(self) -> float:
        return float(self.model.inertia_)


def cluster_round(
    all_features: np.ndarray,
    tournament_features: np.ndarray,
    data_types: np.ndarray,
    tournament_ids: np.ndarray,
    *,
    random_state: int = _DEFAULT.random_state,
    n_clusters: int = _DEFAULT.n_clusters,
) -> FittedClusters:
    """Fit the round's clusters on all its features and assign each tournament row."""
    model = fit_clusters(all_features, n_clusters=n_clusters, random_state=random_state)
    labels = model.predict(np.asarray(tournament_features, dtype=np.float64))
    clusters = RoundClusters.from_data_types(labels, data_types, n_clusters)
    return FittedClusters(model, clusters, np.asarray(tournament_ids), random_state)
