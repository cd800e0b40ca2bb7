"""The scoring policy: every rule a decision depends on, in one versioned value.

A :class:`ScoringPolicy` holds every threshold, the cluster count and seed, the comparison rule,
the KS threshold rule and the constant-file rule. Every decision records the policy's
:attr:`~ScoringPolicy.version`, which names the policy and hashes all of its rules, so two
decisions with the same version were made under the same rules. A deployment overrides fields
with ``NUMERAI_SCORING_POLICY`` (a JSON object, read at call time by
:meth:`numerai_assets.settings.Settings.policy`); applying a changed policy to a round is a
rescore.

Every field is checked when a policy is made, against what the libraries it reaches will take
(scikit-learn's seeds are 32-bit), so a policy that cannot work is refused when it is read, not
by a library in the middle of a run.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from numerai_assets.scoring.comparison import COMPARISON_RULE
from numerai_assets.scoring.exact import count_at_most, count_below
from numerai_assets.scoring.reasons import SubmissionError

KS_RULES = ("fixed", "size-aware")
MAX_NAME_CHARS = 64
MAX_CLUSTERS = 1000
MAX_RANDOM_STATE = 2**32 - 1  # scikit-learn's seeds (numpy's legacy RandomState)
MAX_MIN_SIMILAR = 1_000_000
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class KsLimits:
    """A policy's KS thresholds at one round size, as exact integer counts ``D * n``.

    Made by :meth:`ScoringPolicy.ks_limits`, which reads each threshold as written
    (:func:`.exact.count_below`, :func:`.exact.count_at_most`).

    Attributes
    ----------
    rows : int
        The round's number of tournament rows ``n``.
    duplicate_below : int
        A pair is a duplicate when its KS count is below this.
    similar_at_most : int
        A pair is similar when its KS count is at most this.

    Examples
    --------
    >>> limits = ScoringPolicy().ks_limits(1000)
    >>> limits, limits.duplicate_ks, limits.similar_ks
    (KsLimits(rows=1000, duplicate_below=5, similar_at_most=30), 0.005, 0.03)
    """

    rows: int
    duplicate_below: int  # duplicate when count < duplicate_below
    similar_at_most: int  # similar when count <= similar_at_most

    @property
    def duplicate_ks(self) -> float:
        """The duplicate threshold as a KS statistic (``count < this * n``)."""
        return self.duplicate_below / self.rows

    @property
    def similar_ks(self) -> float:
        """The similar threshold as a KS statistic (``count <= this * n``)."""
        return self.similar_at_most / self.rows


@dataclass(frozen=True)
class ScoringPolicy:
    """The tournament's rules. Thresholds are read as written (``0.005`` is exactly 1/200).

    Attributes
    ----------
    name : label of the policy; the version is ``<name>-<hash of every rule>``.
    concordance_threshold : concordant when the mean of the clusters' KS is ``<`` this.
    n_clusters, random_state : the round's KMeans (a change needs the clusters refitted).
    max_correlation : ``|r| >`` this with an earlier submission: not original, ``correlated``.
    duplicate_ks : KS ``<`` this with an earlier submission: not original, ``duplicate``.
    similar_ks, min_similar : KS ``<=`` ``similar_ks`` with at least ``min_similar`` earlier
        submissions: not original, ``similar``.
    ks_thresholds : ``"fixed"`` uses the two KS thresholds as given; ``"size-aware"`` lowers each
        to the KS critical value at which two independent submissions with the same distribution
        are flagged with probability at most ``false_alarm_level`` at the round's size.
    false_alarm_level : that probability; also the level the round's check warns above.
    refuse_constant : a file whose probabilities are all equal is invalid.
    comparison : which earlier submissions count (one rule exists; recorded by name:
        :data:`.comparison.COMPARISON_RULE`).

    Raises
    ------
    ValueError
        Naming the field, if ``name`` is not 1 to 64 letters, digits, '.', '_' or '-'; a
        threshold is not a number in ``[0, 1]``; ``false_alarm_level`` is not in ``(0, 1)``;
        ``duplicate_ks > similar_ks``; ``n_clusters`` (1 to 1000), ``random_state`` (0 to
        2**32 - 1, scikit-learn's seeds) or ``min_similar`` (1 to 1,000,000) is not a whole
        number in its range; ``ks_thresholds`` is not one of :data:`KS_RULES`;
        ``refuse_constant`` is not a bool; ``comparison`` is not the one rule.

    Examples
    --------
    >>> policy = ScoringPolicy()
    >>> policy.version  # the name and a hash of every rule
    'tournament-...'
    >>> policy.ks_limits(45_000)
    KsLimits(rows=45000, duplicate_below=225, similar_at_most=1350)
    >>> ScoringPolicy(duplicate_ks=0.05)
    Traceback (most recent call last):
    ...
    ValueError: thresholds must satisfy duplicate_ks <= similar_ks, got duplicate_ks=0.05, similar_ks=0.03
    """  # noqa: E501

    name: str = "tournament"
    concordance_threshold: float = 0.12
    n_clusters: int = 5
    random_state: int = 1337
    max_correlation: float = 0.95
    duplicate_ks: float = 0.005
    similar_ks: float = 0.03
    min_similar: int = 1
    ks_thresholds: str = "fixed"
    false_alarm_level: float = 0.05
    refuse_constant: bool = True
    comparison: str = COMPARISON_RULE

    def __post_init__(self) -> None:
        def number(field: str, low: float, high: float, *, open_interval: bool = False) -> None:
            value = getattr(self, field)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or not ((low < value < high) if open_interval else (low <= value <= high))
            ):
                bounds = f"({low}, {high})" if open_interval else f"[{low}, {high}]"
                raise ValueError(f"{field} must be a number in {bounds}, got {_shown(value)}")

        def integer(field: str, low: int, high: int) -> None:
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(
                    f"{field} must be a whole number from {low} to {high}, got {_shown(value)}"
                )

        if (
            not isinstance(self.name, str)
            or len(self.name) > MAX_NAME_CHARS
            or not _NAME.fullmatch(self.name)
        ):
            raise ValueError(
                f"name must be 1 to {MAX_NAME_CHARS} letters, digits, '.', '_' or '-' (starting "
                f"with a letter or digit), got {_shown(self.name)}"
            )
        for field in ("concordance_threshold", "max_correlation", "duplicate_ks", "similar_ks"):
            number(field, 0, 1)
        number("false_alarm_level", 0, 1, open_interval=True)
        if self.duplicate_ks > self.similar_ks:
            raise ValueError(
                "thresholds must satisfy duplicate_ks <= similar_ks, got "
                f"duplicate_ks={self.duplicate_ks}, similar_ks={self.similar_ks}"
            )
        integer("n_clusters", 1, MAX_CLUSTERS)
        integer("random_state", 0, MAX_RANDOM_STATE)
        integer("min_similar", 1, MAX_MIN_SIMILAR)
        if self.ks_thresholds not in KS_RULES:
            raise ValueError(
                f"ks_thresholds must be one of {KS_RULES}, got {_shown(self.ks_thresholds)}"
            )
        if not isinstance(self.refuse_constant, bool):
            raise ValueError(
                f"refuse_constant must be true or false, got {_shown(self.refuse_constant)}"
            )
        if self.comparison != COMPARISON_RULE:
            raise ValueError(
                f"comparison must be {COMPARISON_RULE!r}, got {_shown(self.comparison)}"
            )

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, object]) -> ScoringPolicy:
        """The default policy with some fields replaced (``NUMERAI_SCORING_POLICY``'s object).

        Parameters
        ----------
        overrides : mapping of str to object
            Field name to value.

        Returns
        -------
        ScoringPolicy

        Raises
        ------
        ValueError
            If a name is not a field (the message lists the fields), or a value is refused
            as in :class:`ScoringPolicy`.

        Examples
        --------
        >>> ScoringPolicy.from_overrides({"max_correlation": 0.9}).max_correlation
        0.9
        >>> ScoringPolicy.from_overrides({"max_corr": 0.9})
        Traceback (most recent call last):
        ...
        ValueError: unknown scoring policy fields ['max_corr']; the fields are [...]
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(
                f"unknown scoring policy fields {_shown(unknown)}; the fields are {sorted(fields)}"
            )
        return cls(**overrides)

    def rules(self) -> dict[str, object]:
        """Every field by name, as recorded in a run's report (and hashed into :attr:`version`).

        Examples
        --------
        >>> ScoringPolicy().rules()["duplicate_ks"]
        0.005
        """
        return dataclasses.asdict(self)

    @property
    def version(self) -> str:
        """``<name>-<first 10 hex digits of the SHA-256 of every rule>``: changes with any rule."""
        canonical = json.dumps(self.rules(), sort_keys=True, separators=(",", ":"))
        return f"{self.name}-{hashlib.sha256(canonical.encode()).hexdigest()[:10]}"

    def ks_limits(self, rows: int) -> KsLimits:
        """The KS thresholds at a round of ``rows`` tournament rows, as integer counts.

        ``"fixed"``: each threshold as written. ``"size-aware"``: each lowered, if needed, to
        the critical count at which two independent same-distribution submissions are flagged
        with probability at most ``false_alarm_level`` (:func:`.ks_null.critical_count`).

        Parameters
        ----------
        rows : int
            At least 1.

        Returns
        -------
        KsLimits

        Raises
        ------
        ValueError
            If ``rows`` is not a positive whole number.

        Examples
        --------
        At 45,000 rows the fixed KS < 0.005 would flag about 37 % of independent pairs;
        size-aware, the duplicate count holds 5 %:

        >>> ScoringPolicy().with_size_aware_ks().ks_limits(45_000)
        KsLimits(rows=45000, duplicate_below=155, similar_at_most=154)
        """
        if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or rows < 1:
            raise ValueError(f"rows must be a positive whole number, got {_shown(rows)}")
        return _ks_limits(self, int(rows))

    def with_size_aware_ks(self) -> ScoringPolicy:
        """This policy with size-aware KS thresholds (the measured alternative)."""
        return dataclasses.replace(self, ks_thresholds="size-aware")


@functools.lru_cache(maxsize=64)
def _ks_limits(policy: ScoringPolicy, rows: int) -> KsLimits:
    duplicate_below = count_below(policy.duplicate_ks, rows)
    similar_at_most = count_at_most(policy.similar_ks, rows)
    if policy.ks_thresholds == "size-aware":
        from numerai_assets.scoring.ks_null import critical_count  # scipy: only when asked

        holding = critical_count(rows, policy.false_alarm_level)
        duplicate_below = min(duplicate_below, holding)
        similar_at_most = min(similar_at_most, holding - 1)
    return KsLimits(rows, duplicate_below, similar_at_most)


def _shown(value: object) -> str:
    """A value in a message: its repr, cut to 80 characters (a policy may hold anything)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def refusal(predictions: np.ndarray, policy: ScoringPolicy) -> str | None:
    """Why the policy refuses a readable submission, or None if it does not.

    A constant file carries no prediction: it would be concordant (every KS is 0), original
    against every other file and, at 0.5, a coin flip. The tournament refuses it at upload
    (``refuse_constant``).

    Parameters
    ----------
    predictions : array_like of shape ``(n,)``, float
        The submission's probabilities, as read (finite).
    policy : ScoringPolicy

    Returns
    -------
    str or None
        The reason, for the participant; None when accepted (an empty array is).

    Examples
    --------
    >>> refusal(np.full(45_000, 0.5), ScoringPolicy())
    'every probability is 0.5: a constant file carries no prediction'
    >>> refusal(np.full(45_000, 0.5), ScoringPolicy(refuse_constant=False)) is None
    True
    """
    p = np.asarray(predictions, dtype=np.float64)
    if policy.refuse_constant and p.size and p.min() == p.max():
        return f"every probability is {float(p[0])!r}: a constant file carries no prediction"
    return None


def admit(predictions: np.ndarray, policy: ScoringPolicy) -> np.ndarray:
    """``predictions`` if the policy accepts them; else its refusal, raised as SubmissionError.

    For callers that already turn a :class:`.reasons.SubmissionError` from reading a file into
    an invalid mark: the policy's refusal reaches them the same way.

    Parameters
    ----------
    predictions : array_like of shape ``(n,)``, float
    policy : ScoringPolicy

    Returns
    -------
    array_like
        ``predictions`` itself.

    Raises
    ------
    SubmissionError
        With :func:`refusal`'s reason, if the policy refuses them.

    Examples
    --------
    >>> admit(np.full(3, 0.25), ScoringPolicy())
    Traceback (most recent call last):
    ...
    numerai_assets.scoring.reasons.SubmissionError: every probability is 0.25: a constant file carries no prediction
    """  # noqa: E501
    reason = refusal(predictions, policy)
    if reason is not None:
        raise SubmissionError(reason)
    return predictions
