"""Concordance of one submission, for a round of 46k validation / 190k test / 5k live rows.

Fast path: ``concordance(p, clusters, groups=...)``, the row indices of every (cluster, split)
computed once per round, the probabilities already in the round's tournament-id order.
Baseline: the pandas way, per submission: merge the file's ``id, probability`` rows onto the
round's ``id, data_type, cluster`` frame, select each cluster's splits, ``scipy.stats.ks_2samp``
per pair, mean of the per-cluster maxima. The baseline asks for ``method="asymp"``: only the
statistic is needed, and the exact p-value that ``auto`` may pick for small samples would
inflate the baseline's time for nothing.

The clustering (``fit_clusters``), ``groups()`` and the round frame are per round, outside the
timings; the fast path's alignment by id happens when the file is read, also outside.
"""

from __future__ import annotations

import time
from functools import partial
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from benchmarks._timing import Checks, best_of, header, line, ratio, run_one, seconds
from numerai_assets.datasets.synthetic import make_round, model_probabilities
from numerai_assets.scoring.concordance import (
    SPLITS,
    RoundClusters,
    concordance,
    fit_clusters,
)
from numerai_assets.scoring.policy import ScoringPolicy

ROWS = {
    "training_rows": 20_000,  # only fed to the clustering
    "validation_rows": 46_000,
    "test_rows": 190_000,
    "live_rows": 5_000,
}
QUICK_ROWS = {key: value // 5 for key, value in ROWS.items()}
SUBMISSIONS = 4  # scored per timed run; times are per submission


def fast_scores(
    submissions: list[np.ndarray], clusters: RoundClusters, groups: list
) -> list[dict[str, float | None]]:
    """Every submission's score and per-(cluster, pair) KS, through ``concordance``."""
    out = []
    for p in submissions:
        result = concordance(p, clusters, groups=groups)
        ks = {f"{c.cluster} {pair}": v for c in result.clusters for pair, v in c.ks.items()}
        out.append({"score": result.score, "concordant": result.concordant, **ks})
    return out


def baseline_score(round_frame: pd.DataFrame, submission: pd.DataFrame) -> dict:
    """One submission the pandas + scipy way (same shape of output as ``fast_scores``)."""
    return baseline_split_score(round_frame.merge(submission, on="id", how="left"))


def baseline_split_score(merged: pd.DataFrame) -> dict:
    """The baseline after the merge: select each (cluster, split), ``ks_2samp`` per pair."""
    groups = merged.groupby(["cluster", "data_type"])["probability"]
    split = {key: values.to_numpy() for key, values in groups}
    out: dict = {}
    maxima = []
    for cluster in range(int(merged["cluster"].max()) + 1):
        measured = []
        for a, b in combinations(SPLITS, 2):
            x, y = split.get((cluster, a), ()), split.get((cluster, b), ())
            ks = ks_2samp(x, y, method="asymp").statistic if len(x) and len(y) else None
            if ks is not None:
                measured.append(ks)
            out[f"{cluster} {a}/{b}"] = ks
        if measured:
            maxima.append(max(measured))
    score = float(np.mean(maxima))
    return {"score": score, "concordant": score < ScoringPolicy().concordance_threshold, **out}


def agree(fast: dict, baseline: dict) -> bool:
    if fast.keys() != baseline.keys() or fast["concordant"] != baseline["concordant"]:
        return False
    for key, value in fast.items():
        other = baseline[key]
        if (value is None) != (other is None):
            return False
        if value is not None and abs(value - other) > 1e-12:
            return False
    return True


def main(quick: bool = False) -> bool:
    sizes = QUICK_ROWS if quick else ROWS
    header(
        f"concordance: {sizes['validation_rows']:,} validation / {sizes['test_rows']:,} test / "
        f"{sizes['live_rows']:,} live rows, per submission"
    )
    start = time.perf_counter()
    training, tournament = make_round(**sizes)
    columns = [c for c in tournament.columns if c.startswith("feature")]
    features = tournament[columns].to_numpy()
    model = fit_clusters(np.vstack([training[columns].to_numpy(), features]))
    labels = model.predict(features)
    clusters = RoundClusters.from_data_types(labels, tournament["data_type"].to_numpy())
    submissions = [model_probabilities(tournament, seed=s) for s in range(SUBMISSIONS)]
    line("setup: round, clusters, submissions (not timed)", seconds(time.perf_counter() - start))

    groups = best_of(clusters.groups, repeats=1, warmup=False)
    line("once per round: clusters.groups()", seconds(groups.seconds))
    round_frame = pd.DataFrame(
        {"id": tournament["id"], "data_type": tournament["data_type"], "cluster": labels}
    )
    # As uploaded: in the file's own order, which is not the round's.
    rng = np.random.default_rng(0)
    files = [
        pd.DataFrame({"id": tournament["id"], "probability": p}).iloc[rng.permutation(len(p))]
        for p in submissions
    ]

    fast = best_of(partial(fast_scores, submissions, clusters, groups.result), repeats=5)
    baseline = best_of(lambda: [baseline_score(round_frame, f) for f in files])
    merged = [round_frame.merge(f, on="id", how="left") for f in files]
    after_merge = best_of(lambda: [baseline_split_score(m) for m in merged])
    line("concordance(p, clusters, groups=...)", seconds(fast.seconds / SUBMISSIONS))
    line("baseline: pandas merge/select + ks_2samp", seconds(baseline.seconds / SUBMISSIONS))
    ratio(baseline.seconds, fast.seconds, "goal >= 5x")
    line("  baseline without the merge by id", seconds(after_merge.seconds / SUBMISSIONS))
    line(
        "  ratio without it",
        f"{after_merge.seconds / fast.seconds:8.1f}x",
        "(the fast path's rows are aligned by id when the file is read)",
    )

    check = Checks()
    scores = ", ".join(f"{r['score']:.4f}" for r in baseline.result)
    check(
        all(agree(f, b) for f, b in zip(fast.result, baseline.result, strict=True)),
        f"scores, decisions and every cluster's 3 KS equal to 1e-12 (scores {scores})",
    )
    return check.ok


if __name__ == "__main__":
    run_one(main, __doc__.splitlines()[0])
