"""``rescore``: score every submission of a round again, after its data changed.

By default the run is queued through the Dagster webserver (so the one-run-per-round limit
holds) and rematerializes the round's data and clusters first; ``--scores-only`` keeps them.
``--in-process`` runs it right here against ``$DAGSTER_HOME``'s instance, bypassing the queue:
for when no webserver is up.
"""

from __future__ import annotations

import argparse
import socket
from urllib.parse import urlparse

from numerai_assets.batch.run_shape import SHARDED_JOB
from numerai_assets.cli.context import Deployment
from numerai_assets.pipeline.launch import LOCATION

JOB = SHARDED_JOB  # a whole round: phase 1 on the deployment's workers


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("rescore", help="score every submission of a round again")
    parser.add_argument("--round", required=True, type=int)
    parser.add_argument(
        "--scores-only",
        action="store_true",
        help="keep the round's cached data and clusters (default: rematerialize them too)",
    )
    parser.add_argument(
        "--dagster-url",
        default=None,
        help="webserver to queue the run through (default: $DAGSTER_WEBSERVER_URL, else "
        "http://127.0.0.1:3000)",
    )
    parser.add_argument(
        "--in-process", action="store_true", help="run here, without the webserver's queue"
    )
    parser.set_defaults(run=run)


def _asset_keys(scores_only: bool) -> list:
    from numerai_assets.pipeline.jobs import ROUND_ASSETS
    from numerai_assets.pipeline.scoring import submission_scores

    return [*([] if scores_only else [a.key for a in ROUND_ASSETS]), submission_scores.key]


def queue_rescore(url: str, round: int, *, scores_only: bool) -> str:
    """Queue the rescore through the webserver's GraphQL API; returns the run id."""
    from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

    from numerai_assets.pipeline.jobs import batch_run_config

    parsed = urlparse(url if "://" in url else f"http://{url}")
    host = parsed.hostname or "127.0.0.1"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError:
        raise ValueError(
            f"cannot reach the Dagster webserver at {url}; start it (make run), "
            "pass --dagster-url, or use --in-process"
        ) from None
    client = DagsterGraphQLClient(
        host,
        port_number=port,
        use_https=parsed.scheme == "https",
        timeout=30,
    )
    try:
        return client.submit_job_execution(
            JOB,
            repository_location_name=LOCATION,
            run_config=batch_run_config([]).to_config_dict(),
            tags={"dagster/partition": str(round), "round": str(round), "rescore": "true"},
            asset_selection=_asset_keys(scores_only),
        )
    except DagsterGraphQLClientError as error:
        raise ValueError(f"the Dagster webserver at {url} refused the run: {error}") from None


def rescore_in_process(round: int, *, scores_only: bool) -> str:
    import dagster as dg

    from numerai_assets.definitions import build_definitions
    from numerai_assets.pipeline.jobs import batch_run_config
    from numerai_assets.pipeline.partitions import rounds

    instance = dg.DagsterInstance.get()
    if str(round) not in instance.get_dynamic_partitions(rounds.name):
        instance.add_dynamic_partitions(rounds.name, [str(round)])
    result = (
        build_definitions()
        .resolve_job_def(JOB)
        .execute_in_process(
            run_config=batch_run_config([]),
            instance=instance,
            partition_key=str(round),
            asset_selection=_asset_keys(scores_only),
            tags={"round": str(round), "rescore": "true"},
            raise_on_error=False,  # a failed step is reported below, in one line
        )
    )
    if not result.success:
        raise ValueError(f"the rescore run {result.run_id} failed: {_why(result)}")
    return result.run_id


def _why(result) -> str:
    """The first failed step's own error (``RoundBusy: round 7 is being scored by run ...``),
    beneath Dagster's wrappers (``Exceeded max_retries``, "Error occurred while executing")."""
    import dagster as dg

    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.event_specific_data.error
            while error.cause is not None:
                error = error.cause
            first_line = error.message.strip().splitlines()[0] if error.message.strip() else ""
            return f"step {event.step_key}: {first_line or error.cls_name}"
    return "see it in the Dagster UI"


def run(args: argparse.Namespace) -> int:
    deployment = Deployment.from_env()
    if not deployment.store.round_submissions(args.round):
        raise ValueError(f"round {args.round} has no submissions")
    if args.in_process:
        if not deployment.settings.dagster_home:
            raise ValueError("--in-process needs DAGSTER_HOME (the instance to record the run in)")
        run_id = rescore_in_process(args.round, scores_only=args.scores_only)
        print(f"round {args.round} rescored in run {run_id}")
    else:
        url = args.dagster_url or deployment.settings.webserver_url
        run_id = queue_rescore(url, args.round, scores_only=args.scores_only)
        print(f"round {args.round}: rescore queued as run {run_id} ({url}/runs/{run_id})")
    return 0
