"""Scoring one round's batch of submissions: ops inside a round-partitioned graph asset.

Lineage in the UI reads ``competition_data → kmeans_clusters → submission_scores`` per round. The
batch arrives as run config (submission ids; none means every submission of the round, which is
a rescore); the last op writes the scores back and records the run's report.
"""

from datetime import datetime, timezone

import dagster as dg
from pydantic import Field

from numerai_assets.batch import (
    PreparedBatch,
    SubmissionFiles,
    prepare_batch,
    score_concordance,
    score_originality,
    write_results,
)
from numerai_assets.batch.steps import summary_markdown
from numerai_assets.datasets import RoundDataset
from numerai_assets.pipeline.partitions import round_of, rounds
from numerai_assets.pipeline.resources import FilesResource, StoreResource
from numerai_assets.pipeline.retries import IO_RETRY
from numerai_assets.pipeline.round_assets import ROUND_GROUP
from numerai_assets.pipeline.round_metadata import round_metadata
from numerai_assets.scoring.concordance import FittedClusters

IN_MEMORY = dg.Out(io_manager_key="op_values")


class BatchConfig(dg.Config):
    submission_ids: list[str] = Field(
        default=[],
        description="Submissions to score; empty: every submission of the round (a rescore).",
    )


def _files(files: FilesResource, data: RoundDataset) -> SubmissionFiles:
    return SubmissionFiles(
        files.get_buckets(),
        files.upload_bucket,
        data.tournament_ids,
        key_prefix=files.upload_key_prefix,
    )


@dg.op(out=IN_MEMORY, retry_policy=IO_RETRY)
def prepare_submissions(
    context: dg.OpExecutionContext,
    config: BatchConfig,
    store: StoreResource,
    files: FilesResource,
    competition_data: RoundDataset,
) -> PreparedBatch:
    """Read the batch's files, record consistency and pend the scores (the leaderboard step)."""
    round = round_of(context)
    reader = _files(files, competition_data)
    batch = prepare_batch(
        store.get_store(),
        reader,
        competition_data,
        round,
        config.submission_ids,
        log=context.log.warning,
    )
    invalid = sum(entry.invalid_reason is not None for entry in batch.entries)
    context.log.info(
        f"round {round}: {len(batch.entries)} submissions to score"
        + (" (every submission: a rescore)" if not config.submission_ids else "")
        + (f", {invalid} refused" if invalid else "")
    )
    return batch


@dg.op(out=IN_MEMORY)
def concordance_scores(
    context: dg.OpExecutionContext, batch: PreparedBatch, kmeans_clusters: FittedClusters
) -> dict:
    results = score_concordance(batch, kmeans_clusters.clusters)
    context.log.info(f"concordance of {len(results)} submissions")
    return results


@dg.op(out=IN_MEMORY, retry_policy=IO_RETRY)
def originality_scores(
    context: dg.OpExecutionContext,
    batch: PreparedBatch,
    store: StoreResource,
    files: FilesResource,
    competition_data: RoundDataset,
) -> dict:
    with files.prediction_cache_for(batch.round, competition_data.tournament_ids) as cache:
        results = score_originality(
            batch,
            store.get_store(),
            _files(files, competition_data),
            cache,
            log=context.log.info,
        )
    context.log.info(f"originality of {len(results)} submissions")
    return results


@dg.op(retry_policy=IO_RETRY)
def write_scores(
    context: dg.OpExecutionContext,
    store: StoreResource,
    batch: PreparedBatch,
    concordance: dict,
    originality: dict,
) -> list[dict]:
    """Write every score back to the submissions database; report them in the UI."""
    summary = write_results(
        store.get_store(),
        batch,
        concordance,
        originality,
        run_id=context.run_id,
        scored_at=datetime.now(timezone.utc),
        log=context.log.warning,
    )
    context.add_output_metadata(
        {
            "scores": dg.MetadataValue.md(summary_markdown(summary)),
            "scored": sum("concordance" in row for row in summary),
            "invalid": sum("invalid" in row for row in summary),
            "left_pending": sum("pending" in row for row in summary),
            "not_original": sum(row.get("original") is False for row in summary),
            "not_concordant": sum(row.get("concordant") is False for row in summary),
        }
    )
    # The partition is the round: every submission of it as now stored, this batch marked.
    docs = store.get_store().round_submissions(batch.round)
    context.add_output_metadata(
        round_metadata(docs, (entry.id for entry in batch.entries), batch.round)
    )
    return summary


@dg.graph_asset(partitions_def=rounds, group_name=ROUND_GROUP)
def submission_scores(competition_data: RoundDataset, kmeans_clusters: FittedClusters) -> list:
    """The scores of the round's submissions, as written back to the submissions database."""
    batch = prepare_submissions(competition_data)
    return write_scores(
        batch,
        concordance_scores(batch, kmeans_clusters),
        originality_scores(batch, competition_data),
    )
