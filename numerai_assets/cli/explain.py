"""``explain``: why a submission was decided as it was, the whole stored diagnostic."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from numerai_assets.batch.files import SubmissionFiles
from numerai_assets.cli.context import Deployment
from numerai_assets.datasets import load_round_dataset
from numerai_assets.files import dataset_key, fetch_round_dataset
from numerai_assets.scoring.concordance import cluster_round
from numerai_assets.settings import Settings
from numerai_assets.views.pictures import submission_picture
from numerai_assets.views.round_view import explain, explain_lines


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("explain", help="a submission's decision and everything behind it")
    parser.add_argument("submission_id", metavar="SUBMISSION_ID")
    parser.add_argument("--json", action="store_true", help="the diagnostic as JSON")
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="draw the submission's validation/test/live CDFs in each cluster into FILE.png",
    )
    parser.set_defaults(run=run_explain)


def run_explain(args: argparse.Namespace) -> int:
    deployment = Deployment.from_env()
    doc = deployment.store.get(args.submission_id)
    diagnostic = explain(doc)
    if args.json:
        print(json.dumps(diagnostic, indent=1))
    else:
        for line in explain_lines(diagnostic):
            print(line)
    if args.plot is not None:
        note = draw_cdfs(deployment, doc, diagnostic, args.plot)
        print(f"wrote {args.plot}" + (f" ({note})" if note else ""))
    return 0


def draw_cdfs(deployment: Deployment, doc: dict, diagnostic: dict, path: Path) -> str:
    """Draw ``doc``'s CDFs per cluster into ``path``; returns a note when the clusters refitted
    here do not hold the rows per split the decision recorded (another seed or dataset)."""
    round = diagnostic["round"]
    if round is None:
        raise ValueError("the submission has no round number: nothing to draw against")
    settings = deployment.settings
    with tempfile.TemporaryDirectory(prefix=f"round-{round}-") as tmp:
        archive = fetch_round_dataset(
            deployment.buckets, settings.dataset_bucket, dataset_key(settings, round), Path(tmp)
        )
        data = load_round_dataset(archive, round=round)
    stored = diagnostic["concordance"]["clusters"]
    # Refitted as the round's asset fits them (seeded): the same clusters, as the sizes check.
    policy = Settings.from_env().policy()
    fitted = cluster_round(
        data.all_features(),
        data.tournament[list(data.features)].to_numpy(),
        data.data_types,
        data.tournament_ids,
        random_state=policy.random_state,
        n_clusters=len(stored) or policy.n_clusters,
    )
    files = SubmissionFiles(
        deployment.buckets,
        settings.upload_bucket,
        data.tournament_ids,
        key_prefix=settings.upload_key_prefix,
    )
    predictions = files.load(doc).predictions
    title = (
        f"{diagnostic['user']}, submission {diagnostic['submission_id']} (round {round}): "
        "probabilities per split"
    )
    path.write_bytes(submission_picture(predictions, fitted.clusters, title, diagnostic))
    if stored and [c["sizes"] for c in stored] != fitted.clusters.sizes():
        return "the clusters refitted here differ from those the decision was made with"
    return ""
