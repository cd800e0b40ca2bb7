"""``demo seed``: a synthetic round and submissions that show every outcome in the UI."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from numerai_assets.cli.context import Deployment
from numerai_assets.cli.submissions import upload_submission
from numerai_assets.files import dataset_key


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="demo data").add_subparsers(dest="demo", required=True)
    seed = demo.add_parser("seed", help="write a synthetic round and its submissions")
    seed.add_argument("--round", type=int, default=1)
    seed.add_argument("--submissions", type=int, default=8, help="at least 8 shows every outcome")
    seed.add_argument("--rows", type=int, default=10000, help="tournament rows of the round")
    seed.add_argument("--seed", type=int, default=0)
    seed.add_argument(
        "--if-empty", action="store_true", help="do nothing when the store has submissions"
    )
    seed.set_defaults(run=run_seed)


def demo_submissions(ids: np.ndarray, tournament, count: int, seed: int) -> list[tuple[str, bytes]]:
    """(user, file) pairs, oldest first: originals, copies, constants, a file missing an id."""
    # Loaded here, not with the CLI: every command (`submit` among them) would pay for them.
    from numerai_assets.datasets.synthetic import model_probabilities, submission_csv

    rng = np.random.default_rng(seed)
    # Different skills give differently spread predictions: originals are not "similar".
    alice = model_probabilities(tournament, seed=seed + 1, skill=0.5)
    bob = model_probabilities(tournament, seed=seed + 2, skill=0.9)
    files = [
        ("alice", submission_csv(ids, alice)),  # original
        ("bob", submission_csv(ids, bob)),  # original
        ("carol", submission_csv(ids, rng.permutation(alice))),  # duplicate of alice
        ("dave", submission_csv(ids, np.clip(bob + rng.normal(0, 1e-3, len(bob)), 0, 1))),
        ("erin", submission_csv(ids, np.full(len(ids), 0.5))),  # constant: refused, invalid
        ("frank", submission_csv(ids, np.full(len(ids), 0.5))),  # the same: refused
        ("grace", submission_csv(ids[1:], alice[1:])),  # missing an id: invalid
        ("heidi", submission_csv(ids, model_probabilities(tournament, seed=seed + 3, skill=0.25))),
    ]
    for k in range(len(files), count):
        p = model_probabilities(tournament, seed=seed + 100 + k, skill=0.15 + 0.1 * (k - 7))
        files.append((f"user{k:03d}", submission_csv(ids, p)))
    return files[:count]


def run_seed(args: argparse.Namespace) -> int:
    from numerai_assets.datasets.synthetic import make_round, write_round_zip

    deployment = Deployment.from_env()
    if args.if_empty and deployment.store.rounds():
        print("the store already has submissions; not seeding (numerai-assets status lists them)")
        return 0
    tournament_rows = max(args.rows, 100)
    training, tournament = make_round(
        training_rows=tournament_rows,
        validation_rows=int(tournament_rows * 0.4),
        test_rows=int(tournament_rows * 0.4),
        live_rows=tournament_rows - 2 * int(tournament_rows * 0.4),
        seed=args.seed,
    )
    settings = deployment.settings
    key = dataset_key(settings, args.round)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_round_zip(training, tournament, Path(tmp) / "numerai_datasets.zip")
        deployment.buckets.upload_file(path, settings.dataset_bucket, key)
    where = deployment.buckets.describe(settings.dataset_bucket, key)
    print(f"round {args.round}: dataset at {where}")
    ids = tournament["id"].to_numpy()
    for user, data in demo_submissions(ids, tournament, args.submissions, args.seed):
        submission_id = upload_submission(deployment, round=args.round, user=user, data=data)
        print(f"  {user:8} {submission_id} pending")
    return 0
