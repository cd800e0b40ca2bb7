"""Pictures of a round and of one submission, as PNG bytes (matplotlib, Agg; no display).

Figures are built with :class:`matplotlib.figure.Figure` directly rather than ``pyplot``: no
global state, no GUI backend, safe in Dagster's run processes and in threads (matplotlib's
documented way to embed figures in a server).

The thresholds drawn come from the scoring code (:func:`scoring_thresholds`), never re-typed.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from numerai_assets.scoring.concordance import SPLITS, RoundClusters
from numerai_assets.scoring.policy import ScoringPolicy
from numerai_assets.settings import Settings
from numerai_assets.views.report import one_line
from numerai_assets.views.round_view import SCORED, mapping, nearest_of, number, status_of

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100
SPLIT_COLOURS = {"validation": "#1f77b4", "test": "#ff7f0e", "live": "#2ca02c"}
KS_LINEAR_BELOW = 1e-3  # the KS axis is linear below this and logarithmic above (0 stays visible)


@dataclass(frozen=True)
class Thresholds:
    """The thresholds a picture draws (the scoring code's decision lines)."""

    concordance: float  # concordant when the score is below
    max_correlation: float  # not original ("correlated") when |r| is above
    duplicate_ks: float  # not original ("duplicate") when KS is below
    similar_ks: float  # not original ("similar") when KS is at most


def scoring_thresholds(policy: ScoringPolicy | None = None) -> Thresholds:
    """The thresholds the scoring policy decides with (the deployment's, by default)."""
    rules = Settings.from_env().policy() if policy is None else policy
    return Thresholds(
        concordance=rules.concordance_threshold,
        max_correlation=rules.max_correlation,
        duplicate_ks=rules.duplicate_ks,
        similar_ks=rules.similar_ks,
    )


def _figure(**options) -> Figure:
    """A new figure; matplotlib is imported on first use (about 40 MB that a scoring run's
    process needs only once its scores are written)."""
    from matplotlib.figure import Figure

    return Figure(layout="constrained", **options)


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def markdown_image(png: bytes, alt: str) -> str:
    """Markdown showing ``png`` inline (a ``data:`` URI): Dagster's documented way to put an
    image in an asset's metadata. ``alt`` is ours, never a participant's text."""
    encoded = base64.b64encode(png).decode("ascii")
    return f"![{alt}](data:image/png;base64,{encoded})"


def round_values(docs: Iterable[Mapping]) -> dict[str, list[float]]:
    """Per scored submission: its concordance, nearest-neighbour KS and nearest |r|."""
    values: dict[str, list[float]] = {"concordance": [], "ks": [], "abs_r": []}
    for doc in docs:
        if status_of(doc) != SCORED:
            continue
        score = number(mapping(doc.get("concordant")).get("score"))
        if score is not None:
            values["concordance"].append(score)
        ks, r = nearest_of(doc)
        if ks is not None:
            values["ks"].append(ks)
        if r is not None:
            values["abs_r"].append(r)
    return values


def round_picture(
    docs: Iterable[Mapping], round: int | str, thresholds: Thresholds | None = None
) -> bytes:
    """Three histograms of a round's scored submissions, each with its decision lines:
    concordance (threshold), nearest-neighbour KS (duplicate and similar thresholds; the axis
    is logarithmic above 0.001 so both show) and nearest |r| (correlation threshold)."""
    limits = thresholds or scoring_thresholds()
    values = round_values(docs)
    figure = _figure(figsize=(12, 3.6))
    axes = figure.subplots(1, 3)
    figure.suptitle(
        f"Round {one_line(round)}: {len(values['concordance'])} scored submissions", fontsize=12
    )
    _histogram(
        axes[0],
        values["concordance"],
        np.linspace(0, max([limits.concordance * 2, *values["concordance"]]), 25),
        "concordance (mean over clusters of the largest KS)",
        [(limits.concordance, f"concordant below {limits.concordance:g}", "#d62728")],
    )
    top = max([limits.similar_ks * 10, *values["ks"]])
    ks_bins = np.concatenate([[0.0], np.geomspace(KS_LINEAR_BELOW / 10, top, 30)])
    _histogram(
        axes[1],
        values["ks"],
        ks_bins,
        "KS to the nearest earlier submission",
        [
            (limits.duplicate_ks, f"duplicate below {limits.duplicate_ks:g}", "#d62728"),
            (limits.similar_ks, f"similar at most {limits.similar_ks:g}", "#ff7f0e"),
        ],
    )
    axes[1].set_xscale("symlog", linthresh=KS_LINEAR_BELOW)
    axes[1].set_xlim(0, top * 1.2)
    _histogram(
        axes[2],
        values["abs_r"],
        np.linspace(0, 1, 41),
        "|r| to the most correlated earlier submission",
        [(limits.max_correlation, f"correlated above {limits.max_correlation:g}", "#d62728")],
    )
    return png_bytes(figure)


def _histogram(axis, values, bins, title, lines) -> None:
    axis.hist(values, bins=bins, color="#4c72b0", edgecolor="white")
    axis.plot(values, np.zeros(len(values)), "|", color="black", markersize=12)
    for x, label, colour in lines:
        axis.axvline(x, color=colour, linestyle="--", linewidth=1.5, label=label)
    axis.set_title(title, fontsize=10)
    axis.set_ylabel("submissions")
    from matplotlib.ticker import MaxNLocator

    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    axis.legend(fontsize=8, loc="upper right")
    if not values:
        axis.text(0.5, 0.5, "none yet", transform=axis.transAxes, ha="center", color="grey")


def submission_picture(
    probabilities: np.ndarray, clusters: RoundClusters, title: str, diagnostic: Mapping = {}
) -> bytes:
    """One submission's probabilities as an empirical CDF per split, one panel per cluster.

    ``probabilities`` follow the round's tournament-id order (shape ``(n,)``), as ``clusters``.
    Each panel's title carries the cluster's largest KS from ``diagnostic`` (the stored
    decision, :func:`numerai_assets.views.round_view.explain`) when given.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    stored = {
        c.get("cluster"): c for c in mapping(diagnostic.get("concordance")).get("clusters", [])
    }
    groups = clusters.groups()
    columns = min(len(groups), 3)
    rows = -(-len(groups) // columns)
    figure = _figure(figsize=(4 * columns, 3.2 * rows))
    figure.suptitle(one_line(title, 120), fontsize=12)
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    for c, (axis, cluster) in enumerate(zip(axes, groups, strict=False)):
        for split, rows_of_split in zip(SPLITS, cluster, strict=True):
            if rows_of_split.size:
                axis.ecdf(
                    p[rows_of_split],
                    label=f"{split} ({rows_of_split.size:,})",
                    color=SPLIT_COLOURS[split],
                )
        max_ks = number(mapping(stored.get(c)).get("max_ks"))
        axis.set_title(
            f"cluster {c}" + (f": largest KS {max_ks:.4f}" if max_ks is not None else ""),
            fontsize=10,
        )
        axis.set_xlim(0, 1)
        axis.set_xlabel("probability")
        axis.legend(fontsize=8, loc="lower right")
    for axis in axes[len(groups) :]:
        axis.set_visible(False)
    return png_bytes(figure)
