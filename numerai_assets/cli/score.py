"""``numerai-assets score``: score one submission file offline, without Dagster or a database.

How people check a file by hand, and how the math is checked end to end on real files. The
deployment's scoring policy applies (``NUMERAI_SCORING_POLICY``), and the ``--against`` files
are judged as the pipeline would judge them: in order, each by the same comparison rule, so an
earlier file that is itself a copy (or refused) is not compared against.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from numerai_assets.scoring.concordance import cluster_round, concordance
from numerai_assets.scoring.consistency import consistency
from numerai_assets.scoring.policy import ScoringPolicy, refusal
from numerai_assets.scoring.sequence import judge_in_order
from numerai_assets.scoring.submission_format import SubmissionError
from numerai_assets.settings import Settings


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
    parser.add_argument("--seed", type=int, help="KMeans random_state (default: the policy's)")
    parser.add_argument(
        "--alternatives",
        action="store_true",
        help="also show the outcome under the measured alternative rules (they decide nothing)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def _read(path: Path, ids: np.ndarray) -> np.ndarray:
    from numerai_assets.scoring.submission import read_submission  # pandas, pyarrow: not for all

    try:
        return read_submission(path, ids)
    except SubmissionError as error:
        raise SubmissionError(f"{path}: {error}") from None


def score_files(
    dataset: Path,
    submission: Path,
    against: list[Path],
    *,
    seed: int | None = None,
    policy: ScoringPolicy | None = None,
    alternatives: bool = False,
) -> dict:
    """The three scores of ``submission`` as the JSON-able dict the command prints.

    Raises :class:`SubmissionError` when a file cannot be read or the policy refuses
    ``submission``; an ``--against`` file the policy refuses is reported and not compared.
    """
    policy = Settings.from_env().policy() if policy is None else policy
    if seed is not None:
        policy = dataclasses.replace(policy, random_state=seed)
    # Loaded here, not with the CLI: every command (`submit` among them) would pay for them.
    from numerai_assets.datasets import load_round_dataset

    data = load_round_dataset(dataset)
    ids = data.tournament_ids
    probabilities = _read(submission, ids)
    reason = refusal(probabilities, policy)
    if reason is not None:
        raise SubmissionError(f"{submission}: {reason}")
    earlier = [_read(p, ids) for p in against]

    fitted = cluster_round(
        data.all_features(),
        data.tournament[list(data.features)].to_numpy(),
        data.data_types,
        ids,
        random_state=policy.random_state,
        n_clusters=policy.n_clusters,
    )
    concordance_result = concordance(probabilities, fitted.clusters, policy=policy)
    *judged_against, mine = judge_in_order([*earlier, probabilities], policy)
    originality_result, picked = mine.result, mine.compared
    validation = data.validation_rows()
    consistency_result = consistency(
        probabilities[validation],
        data.tournament["target"].to_numpy(dtype=float)[validation],
        data.tournament["era"].to_numpy()[validation],
    )
    result = {
        "policy": policy.version,
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
                {"file": str(against[picked[m.index]]), "correlation": m.correlation, "ks": m.ks}
                for m in originality_result.matches
            ],
            "not_compared": [
                {"file": str(against[k]), "why": judged.refused or "not original"}
                for k, judged in enumerate(judged_against)
                if k not in picked
            ],
        },
        "consistency": consistency_result.percent,
        "validation_logloss": consistency_result.validation_logloss,
    }
    if alternatives:
        from numerai_assets.scoring.alternatives import RULES, compare_rules, outcome

        judged = compare_rules([*earlier, probabilities], policy)
        result["alternatives"] = {rule: outcome(judged[rule][-1]) for rule in RULES}
    return result


def run(args: argparse.Namespace) -> int:
    result = score_files(
        args.dataset, args.submission, args.against, seed=args.seed, alternatives=args.alternatives
    )
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
    for skipped in o["not_compared"]:
        print(f"not compared {skipped['file']} ({skipped['why']})")
    print(f"policy       {result['policy']}")
    for rule, decided in result.get("alternatives", {}).items():
        print(f"alternative  {rule}: {decided}")
    return 0
