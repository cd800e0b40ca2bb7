"""The ``new_submissions`` sensor: new uploads in the database become scoring runs per round.

Each tick reads the submissions after its cursor (``created``, then ``_id``), adds rounds it has
not seen to the ``rounds`` partitions and requests one run per batch of a round, all in one
``SensorResult``. A batch's ``run_key`` is derived from its submissions, so a repeated tick can
never launch the same batch twice. The round's data assets are included when the round has never
been materialized, in the first batch of the round only (later batches of that round queue behind
it under the per-round limit).
"""

import hashlib
import os
from itertools import groupby

import dagster as dg

from numerai_assets.pipeline.jobs import ROUND_ASSETS, batch_run_config, score_round
from numerai_assets.pipeline.partitions import rounds
from numerai_assets.pipeline.resources import StoreResource
from numerai_assets.pipeline.scoring import submission_scores
from numerai_assets.store import cursor_of, decode_cursor, encode_cursor

DEFAULT_INTERVAL_SECONDS = 30
BATCH_SIZE = int(os.environ.get("NUMERAI_BATCH_SIZE", "500"))
MAX_PER_TICK = int(os.environ.get("NUMERAI_MAX_SUBMISSIONS_PER_TICK", "5000"))
ROUND_DATA_KEYS = [a.key for a in ROUND_ASSETS]


def interval_seconds() -> int:
    return int(os.environ.get("NUMERAI_SENSOR_INTERVAL_SECONDS", DEFAULT_INTERVAL_SECONDS))


def batch_run_key(round: int, submission_ids: list[str]) -> str:
    digest = hashlib.sha1(",".join(submission_ids).encode()).hexdigest()[:12]
    return f"round-{round}-{submission_ids[0]}-{len(submission_ids)}-{digest}"


def _round_has_data(instance: dg.DagsterInstance, round_key: str) -> bool:
    """Materialized, or being materialized by a queued or running run."""
    status = instance.get_status_by_partition(
        ROUND_DATA_KEYS[-1], partition_keys=[round_key], partitions_def=rounds
    )
    return bool(status) and status.get(round_key) in (
        dg.AssetPartitionStatus.MATERIALIZED,
        dg.AssetPartitionStatus.IN_PROGRESS,
    )


@dg.sensor(
    job=score_round,
    minimum_interval_seconds=interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Polls the submissions database and launches round-partitioned scoring runs.",
)
def new_submissions(
    context: dg.SensorEvaluationContext, store: StoreResource
) -> dg.SensorResult | dg.SkipReason:
    cursor = decode_cursor(context.cursor)
    docs = store.get_store().submissions_after(cursor, limit=MAX_PER_TICK)
    if not docs:
        return dg.SkipReason("no new submissions")

    known_rounds = set(context.instance.get_dynamic_partitions(rounds.name))
    new_rounds: list[str] = []
    run_requests = []
    for round, round_docs in groupby(
        sorted(docs, key=lambda d: d["competition_id"]), key=lambda d: d["competition_id"]
    ):
        round_key = str(round)
        ids = [str(d["_id"]) for d in round_docs]  # sorted() is stable: still in created order
        if round_key not in known_rounds:
            new_rounds.append(round_key)
        needs_data = round_key in new_rounds or not _round_has_data(context.instance, round_key)
        for start in range(0, len(ids), BATCH_SIZE):
            batch = ids[start : start + BATCH_SIZE]
            with_data = needs_data and start == 0
            run_requests.append(
                dg.RunRequest(
                    run_key=batch_run_key(round, batch),
                    partition_key=round_key,
                    run_config=batch_run_config(batch),
                    tags={"round": round_key, "submissions": str(len(batch))},
                    asset_selection=[
                        *(ROUND_DATA_KEYS if with_data else []),
                        submission_scores.key,
                    ],
                )
            )
    context.log.info(
        f"{len(docs)} new submissions in {len(run_requests)} batches"
        + (f"; new rounds {', '.join(new_rounds)}" if new_rounds else "")
    )
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[rounds.build_add_request(new_rounds)] if new_rounds else [],
        cursor=encode_cursor(cursor_of(docs[-1])),
    )
