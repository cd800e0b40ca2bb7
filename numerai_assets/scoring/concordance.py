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
from typing import TYPE_CHECKING

import numpy as np

from numerai_assets.scoring._arrays import as_float64, as_vector, whole_number
from numerai_assets.scoring.exact import as_written
from numerai_assets.scoring.pickled import PickledModel
from numerai_assets.scoring.policy import ScoringPolicy

if TYPE_CHECKING:  # scikit-learn and numba are imported where used: loading the code is fast
    from sklearn.cluster import MiniBatchKMeans

SPLITS = ("validation", "test", "live")
_DEFAULT = ScoringPolicy()


def fit_clusters(
    features: np.ndarray,
    *,
    n_clusters: int = _DEFAULT.n_clusters,
    random_state: int = _DEFAULT.random_state,
) -> MiniBatchKMeans:
    """Fit the round's k-means clusters on its training + tournament features.

    scikit-learn's ``MiniBatchKMeans`` (``n_init=3``, batches of 4,096 rows), seeded, so
    fitting the same round again gives the same clusters.

    Parameters
    ----------
    features : array_like of shape ``(m, k)``, float
        One row per training and tournament row; finite, at least ``n_clusters`` rows.
    n_clusters, random_state : int, default ``ScoringPolicy()``'s (5 and 1337)

    Returns
    -------
    sklearn.cluster.MiniBatchKMeans
        The fitted model; ``model.predict`` assigns rows to clusters ``0..n_clusters-1``.

    Raises
    ------
    ValueError
        If ``features`` is not a two-dimensional array of numbers with at least
        ``n_clusters`` rows, or holds NaN or infinite values; scikit-learn's
        ``InvalidParameterError`` (a ValueError) if ``n_clusters`` or ``random_state`` is not
        one it takes.

    Examples
    --------
    Two well-separated groups of rows fall in two clusters:

    >>> rng = np.random.default_rng(0)
    >>> features = np.vstack([rng.normal(0, 0.1, (20, 3)), rng.normal(5, 0.1, (20, 3))])
    >>> labels = fit_clusters(features, n_clusters=2).predict(features)
    >>> len(set(labels[:20])), len(set(labels[20:])), bool(labels[0] != labels[-1])
    (1, 1, True)
    """
    x = as_float64(features, "features")
    if x.ndim != 2 or x.shape[0] < n_clusters:
        raise ValueError(
            f"features must be a 2-d array with at least {n_clusters} rows, got shape {x.shape}"
        )
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or infinite values")
    from sklearn.cluster import MiniBatchKMeans

    model = MiniBatchKMeans(
        n_clusters=n_clusters, random_state=random_state, n_init=3, batch_size=4096
    )
    return model.fit(x)


@dataclass(frozen=True)
class RoundClusters:
    """Each tournament row's cluster and split, in the round's tournament-id order.

    Built once per round; :meth:`groups` are the row indices of every (cluster, split), which is
    all that scoring a submission needs.

    Attributes
    ----------
    labels : ndarray of shape ``(n,)``, int
        Each tournament row's cluster, ``0..n_clusters-1``.
    splits : ndarray of shape ``(n,)``, int
        Each tournament row's split, an index into :data:`SPLITS`.
    n_clusters : int
        At least 1.

    Raises
    ------
    ValueError
        If ``labels`` and ``splits`` are not one-dimensional and of one length, ``n_clusters``
        is not a positive whole number, or a label or split is not a whole number in its range.

    Examples
    --------
    >>> clusters = RoundClusters(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 0, 0, 2]), 2)
    >>> clusters.sizes()
    [{'validation': 1, 'test': 1, 'live': 0}, {'validation': 2, 'test': 0, 'live': 1}]
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
        n = whole_number(self.n_clusters, "n_clusters")
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
        """The round's clusters from each row's cluster label and its ``data_type``
        (validation, test or live).

        Parameters
        ----------
        labels : array_like of shape ``(n,)``, int
            Each tournament row's cluster (``model.predict`` of :func:`fit_clusters`).
        data_types : array_like of shape ``(n,)``, str
            Each tournament row's ``data_type``, one of :data:`SPLITS`.
        n_clusters : int, default 5

        Raises
        ------
        ValueError
            If a ``data_type`` is not one of :data:`SPLITS` (the message lists the unknown
            ones), or as :class:`RoundClusters`.

        Examples
        --------
        >>> RoundClusters.from_data_types([1, 0], ["live", "validation"], n_clusters=2).splits
        array([2, 0])
        >>> RoundClusters.from_data_types([0, 0], ["validation", "train"], n_clusters=1)
        Traceback (most recent call last):
        ...
        ValueError: unknown data_type values ['train']; expected one of ('validation', 'test', 'live')
        """  # noqa: E501
        data_types = np.asarray(data_types).astype(str)
        splits = np.full(data_types.shape, -1, dtype=np.int64)
        for code, name in enumerate(SPLITS):
            splits[data_types == name] = code
        if (splits < 0).any():
            unknown = sorted(set(data_types[splits < 0].tolist()))
            raise ValueError(f"unknown data_type values {unknown}; expected one of {SPLITS}")
        return cls(np.asarray(labels, dtype=np.int64), splits, n_clusters)

    def groups(self) -> list[list[np.ndarray]]:
        """``groups()[c][s]``: tournament row indices of cluster ``c`` in split ``SPLITS[s]``.

        Examples
        --------
        >>> clusters = RoundClusters(np.array([0, 1, 0, 1]), np.array([0, 0, 2, 0]), 2)
        >>> [[rows.tolist() for rows in cluster] for cluster in clusters.groups()]
        [[[0], [], [2]], [[1, 3], [], []]]
        """
        key = self.labels * len(SPLITS) + self.splits
        order = np.argsort(key, kind="stable")
        bounds = np.searchsorted(key[order], np.arange(self.n_clusters * len(SPLITS) + 1))
        flat = [order[bounds[g] : bounds[g + 1]] for g in range(len(bounds) - 1)]
        return [flat[c * len(SPLITS) : (c + 1) * len(SPLITS)] for c in range(self.n_clusters)]

    def sizes(self) -> list[dict[str, int]]:
        """Rows per split in each cluster: a list of ``{split name: rows}``, one per cluster."""
        return [
            {name: int(idx.size) for name, idx in zip(SPLITS, cluster, strict=True)}
            for cluster in self.groups()
        ]


@dataclass(frozen=True)
class ClusterConcordance:
    """One cluster's part of a concordance score.

    Attributes
    ----------
    cluster : int
    sizes : dict of str to int
        The cluster's rows in each split.
    ks : dict of str to float or None
        The KS statistic of each pair of splits (``"validation/test"``, ``"validation/live"``,
        ``"test/live"``); None where a split of the pair has no rows in the cluster.
    max_ks : float or None
        The largest of them; None when fewer than two splits have rows (left out of the mean).

    Examples
    --------
    >>> clusters = RoundClusters(np.array([0, 0, 0]), np.array([0, 0, 1]), 1)
    >>> concordance(np.array([0.1, 0.2, 0.1]), clusters).clusters[0]
    ClusterConcordance(cluster=0, sizes={'validation': 2, 'test': 1, 'live': 0}, ks={'validation/test': 0.5, 'validation/live': None, 'test/live': None}, max_ks=0.5)
    """  # noqa: E501

    cluster: int
    sizes: dict[str, int]
    ks: dict[str, float | None]  # "validation/test", "validation/live", "test/live"
    max_ks: float | None  # None: fewer than two splits have rows, left out of the mean


@dataclass(frozen=True)
class ConcordanceResult:
    """A submission's concordance.

    Attributes
    ----------
    score : float
        The mean over the measured clusters of each one's largest KS between splits (the
        exact rational, rounded once).
    concordant : bool
        ``score < concordance_threshold``, decided on the exact values.
    clusters : tuple of ClusterConcordance
        Every cluster, in order, measured or not.

    Examples: :func:`concordance`.
    """

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
    """Concordance of a submission: does it behave alike on the validation, test and live rows?

    In each cluster, the largest of the three two-sample KS statistics between its splits
    (:func:`.ks.ks_statistic`'s exact counts, as ``scipy.stats.ks_2samp``); the score is their
    mean over the clusters with rows in at least two splits. Concordant when the score is below
    the policy's ``concordance_threshold``, decided on exact rationals (:func:`.exact.as_written`).

    Parameters
    ----------
    probabilities : array_like of shape ``(n,)``, float
        The submission's probabilities in the round's tournament-id order; finite.
    clusters : RoundClusters
        The round's clusters, of the same ``n`` rows.
    policy : ScoringPolicy, optional
        Its ``concordance_threshold``; by default ``ScoringPolicy()`` (0.12).
    groups : list, optional
        ``clusters.groups()`` computed once, when scoring many submissions of one round (not
        checked against ``clusters``).

    Returns
    -------
    ConcordanceResult

    Raises
    ------
    ValueError
        If ``probabilities`` is not a one-dimensional array of finite numbers, is empty or has
        another length than the round; if no cluster has rows in two splits.

    Examples
    --------
    Cluster 0 has rows in every split; cluster 1 only validation rows, so it is left out:

    >>> clusters = RoundClusters(np.array([0, 0, 0, 0, 0, 0, 1, 1]),
    ...                          np.array([0, 0, 1, 1, 2, 2, 0, 0]), 2)
    >>> alike = np.array([0.1, 0.9, 0.1, 0.9, 0.1, 0.9, 0.3, 0.6])
    >>> result = concordance(alike, clusters)
    >>> result.score, result.concordant, result.clusters[1].max_ks
    (0.0, True, None)
    >>> memorised = np.array([0.8, 0.9, 0.1, 0.2, 0.1, 0.2, 0.3, 0.6])  # validation apart
    >>> concordance(memorised, clusters).score
    1.0

    A score equal to the threshold is not below it (here 1/2 against 0.5 as written):

    >>> tie = np.array([0.1, 0.2, 0.1, 0.3, 0.1, 0.2, 0.3, 0.6])
    >>> result = concordance(tie, clusters, policy=ScoringPolicy(concordance_threshold=0.5))
    >>> result.score, result.concordant
    (0.5, False)
    """
    from numerai_assets.scoring.ks import _ks_count

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

    Attributes
    ----------
    model : sklearn.cluster.MiniBatchKMeans (in a :class:`.pickled.PickledModel`)
        Fitted on the round's training + tournament features; unpickled when first used.
    clusters : RoundClusters
        Each tournament row's cluster and split.
    tournament_ids : ndarray of shape ``(n,)``
        The tournament ids, in the order of ``clusters``' rows.
    random_state : int
        The seed it was fitted with.

    Made by :func:`cluster_round`.
    """

    model: PickledModel  # the fitted MiniBatchKMeans, unpickled when first used
    clusters: RoundClusters
    tournament_ids: np.ndarray
    random_state: int

    @property
    def inertia(self) -> float:
        """The k-means objective of the fit: the sum of squared distances to the centres."""
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
    """Fit the round's clusters on all its features and assign each tournament row to one:
    the round's :class:`FittedClusters`.

    Parameters
    ----------
    all_features : array_like of shape ``(m, k)``, float
        Training + tournament features (:func:`fit_clusters`).
    tournament_features : array_like of shape ``(n, k)``, float
        The tournament rows' features, in tournament-id order; finite.
    data_types : array_like of shape ``(n,)``, str
        Each tournament row's split, one of :data:`SPLITS`.
    tournament_ids : array_like of shape ``(n,)``
    random_state, n_clusters : int
        As :func:`fit_clusters`.

    Raises
    ------
    ValueError
        As :func:`fit_clusters`; if ``tournament_features`` is not two-dimensional with the
        columns of ``all_features``, or holds NaN or infinite values; if ``data_types`` or
        ``tournament_ids`` has another length than ``tournament_features``; if a data type is
        not one of :data:`SPLITS`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> tournament = np.vstack([rng.normal(0, 0.1, (6, 2)), rng.normal(5, 0.1, (6, 2))])
    >>> training = rng.normal(0, 0.1, (10, 2))
    >>> fitted = cluster_round(np.vstack([training, tournament]), tournament,
    ...                        np.tile(["validation", "test", "live"], 4), np.arange(12),
    ...                        n_clusters=2)
    >>> sorted(sum(rows.values()) for rows in fitted.clusters.sizes())
    [6, 6]
    """
    model = fit_clusters(all_features, n_clusters=n_clusters, random_state=random_state)
    rows = as_float64(tournament_features, "tournament_features")
    if rows.ndim != 2 or rows.shape[1] != model.n_features_in_:
        raise ValueError(
            f"tournament_features must have shape (n, {model.n_features_in_}) like "
            f"all_features, got {rows.shape}"
        )
    if not np.isfinite(rows).all():
        raise ValueError("tournament_features contain NaN or infinite values")
    ids = np.asarray(tournament_ids)
    for name, values in (("data_types", np.asarray(data_types)), ("tournament_ids", ids)):
        if values.shape != (rows.shape[0],):
            raise ValueError(
                f"{name} must have one value per tournament row ({rows.shape[0]}), got shape "
                f"{values.shape}"
            )
    clusters = RoundClusters.from_data_types(model.predict(rows), data_types, n_clusters)
    return FittedClusters(PickledModel(model), clusters, ids, random_state)
