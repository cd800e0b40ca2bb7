"""``numerai-assets score``: score one submission file offline, without Dagster or a database.

How people check a file by hand, and how the math is checked end to end on real files.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from numerai_assets.datasets import load_round_dataset
from numerai_assets.scoring import (
    SubmissionError,
    concordance,
    consistency,
    originality,
    read_submission,
)
from numerai_assets.scoring.concordance import DEFAULT_SEED, cluster_round


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("score", help="score one submission file against a round dataset")
    parser.add_argument("--dataset", required=True, type=Path, help="round dataset: folder or zip")
    parser.add_argument("--submission", required=True, type=Path, help="CSV id,probability")
    parser.add_argument(
        "--against",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="an earlier submission of another user (repeat, oldest first)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="KMeans random_state")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def _read(path: Path, ids: np.ndarray) -> np.ndarray:
    try:
        return read_submission(path, ids)
    except SubmissionError as error:
        raise SubmissionError(f"{path}: {error}") from None


def score_files(
    dataset: Path, submission: Path, against: list[Path], *, seed: int = DEFAULT_SEED
) -> dict:
    """The three scores of ``submission`` as the JSON-able dict the command prints."""
    data = load_round_dataset(dataset)
    ids = data.tournament_ids
    probabilities = _read(submission, ids)
    earlier = np.vstack([_read(p, ids) for p in against]) if against else np.empty((0, len(ids)))

    fitted = cluster_round(
        data.all_features(),
        data.tournament[list(data.features)].to_numpy(),
        data.data_types,
        ids,
        random_state=seed,
    )
    concordance_result = concordance(probabilities, fitted.clusters)
    originality_result = originality(probabilities, earlier)
    validation = data.validation_rows()
    consistency_result = consistency(
        probabilities[validation],
        data.tournament["target"].to_numpy(dtype=float)[validation],
        data.tournament["era"].to_numpy()[validation],
    )
    return {
        "concordance": {
            "score": concordance_result.score,
            "concordant": concordance_result.concordant,
            "clusters": [dataclasses.asdict(c) for c in concordance_result.clusters],
        },
        "originality": {
            "original": originality_result.original,
            "reason": originality_result.reason,
            "compared": originality_result.compared,
            "matches": [
                {"file": str(against[m.index]), "correlation": m.correlation, "ks": m.ks}
                for m in originality_result.matches
            ],
        },
        "consistency": consistency_result.percent,
        "validation_logloss": consistency_result.validation_logloss,
    }


def run(args: argparse.Namespace) -> int:
    result = score_files(args.dataset, args.submission, args.against, seed=args.seed)
    if args.json:
        print(json.dumps(result))
        return 0
    c, o = result["concordance"], result["originality"]
    print(f"concordance  {c['score']:.4f}  {'concordant' if c['concordant'] else 'NOT concordant'}")
    why = f" ({o['reason']}: {', '.join(m['file'] for m in o['matches'])})" if o["reason"] else ""
    print(f"originality  {'original' if o['original'] else 'NOT original'}{why}")
    print(
        f"consistency  {result['consistency']:.1f}%  (validation logloss "
        f"{result['validation_logloss']:.5f})"
    )
    return 0
