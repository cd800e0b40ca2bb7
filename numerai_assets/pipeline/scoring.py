"""Scoring one round's batch of submissions: ops inside a round-partitioned graph asset.

Lineage in the UI reads ``competition_data → kmeans_clusters → submission_scores`` per round. The
batch arrives as run config (submission ids; none means every submission of the round, which is
a rescore). Inside the asset: ``prepare_submissions`` reads the batch and caches every
prediction it may meet; ``pair_shards`` plans phase 1 of originality, ``pair_statistics`` computes
one shard of it (fanned out: the executor runs them on its workers), ``originality_scores`` takes
the decisions in one ordered pass (phase 2); ``concordance_scores`` beside them; ``write_scores``
writes everything back and records the run's report. Values passed between the ops are small
(ids, cache keys, decisions): the predictions stay in the round's cache, which every step reads.
"""

from collections.abc import Iterator, Mapping
from datetime import datetime, timezone

import dagster as dg
from pydantic import Field, field_validator

from numerai_assets.batch import (
    OriginalityScores,
    PreparedBatch,
    SubmissionFiles,
    check_batch_ids,
    prepare_batch,
    score_concordance,
    score_originality,
    write_results,
)
from numerai_assets.batch.originality import compute_pairs, plan_pairs
from numerai_assets.batch.run_shape import SHARDED_JOB
from numerai_assets.batch.threads import limited_threads
from numerai_assets.datasets import RoundDataset
from numerai_assets.pipeline.partitions import round_of, rounds
from numerai_assets.pipeline.resources import FilesResource, PolicyResource, StoreResource
from numerai_assets.pipeline.retries import IO_RETRY
from numerai_assets.pipeline.round_assets import ROUND_GROUP
from numerai_assets.pipeline.round_lease import holding_round
from numerai_assets.pipeline.round_metadata import round_metadata
from numerai_assets.prediction_cache.pairs import Shard
from numerai_assets.scoring.concordance import ConcordanceResult, FittedClusters
from numerai_assets.scoring.false_alarm import false_alarm_rates, observed_flag_rates
from numerai_assets.settings import MAX_BATCH_SIZE, Settings
from numerai_assets.store.documents import status_of
from numerai_assets.views.run_report import summary_markdown

OP_VALUE = dg.Out(io_manager_key="op_values")


class BatchConfig(dg.Config):
    """The batch: with the clustering (``ClusteringConfig``), all of a scoring run's config that
    the UI's launchpad can change (the resources have no fields)."""

    submission_ids: list[str] = Field(
        default=[],
        description=f"Submissions to score, at most {MAX_BATCH_SIZE:,}, each an ObjectId (24 "
        "lowercase hex digits); empty: every submission of the round (a rescore).",
    )

    @field_validator("submission_ids")
    @classmethod
    def _a_batch(cls, submission_ids: list[str]) -> list[str]:
        try:
            return check_batch_ids(submission_ids)
        except ValueError as error:
            # Checked when the step builds its config, before it reads anything. Not retried:
            # the same config would fail the same way (a ValueError would be, by the step's
            # retry policy).
            raise dg.Failure(f"run config: {error}", allow_retries=False) from None


def _files(files: FilesResource, data: RoundDataset) -> SubmissionFiles:
    return SubmissionFiles(
        files.get_buckets(),
        files.upload_bucket,
        data.tournament_ids,
        key_prefix=files.upload_key_prefix,
    )


@dg.op(out=OP_VALUE, retry_policy=IO_RETRY)
def prepare_submissions(
    context: dg.OpExecutionContext,
    config: BatchConfig,
    store: StoreResource,
    files: FilesResource,
    scoring_policy: PolicyResource,
    competition_data: RoundDataset,
) -> PreparedBatch:
    """Read the batch's files, record consistency and pend the scores (the leaderboard step),
    and cache every prediction the batch may be compared with."""
    round = round_of(context)
    reader = _files(files, competition_data)
    cache = files.round_cache(round, competition_data.tournament_ids, context.run_id)
    with holding_round(context, store, round) as lease:
        batch = prepare_batch(
            store.get_store(),
            reader,
            competition_data,
            round,
            config.submission_ids,
            scoring_policy.get(),
            cache,
            log=context.log.warning,
            run_id=context.run_id,
            before_write=lease.check,
        )
    invalid = sum(entry.invalid_reason is not None for entry in batch.entries)
    context.log.info(
        f"round {round}: {len(batch.entries)} submissions to score"
        + (" (every submission: a rescore)" if not config.submission_ids else "")
        + (f", {invalid} refused" if invalid else "")
        + f"; {len(batch.keys)} submissions' predictions cached"
    )
    return batch


@dg.op(out=OP_VALUE)
def concordance_scores(
    context: dg.OpExecutionContext,
    batch: PreparedBatch,
    files: FilesResource,
    kmeans_clusters: FittedClusters,
) -> dict[str, ConcordanceResult]:
    results = score_concordance(batch, kmeans_clusters, files.cache_at(batch.cache))
    context.log.info(f"concordance of {len(results)} submissions")
    return results


@dg.op(out=dg.DynamicOut(io_manager_key="op_values"), retry_policy=IO_RETRY)
def pair_shards(
    context: dg.OpExecutionContext, batch: PreparedBatch, store: StoreResource, files: FilesResource
) -> Iterator[dg.DynamicOutput[Shard]]:
    """Plan phase 1: the pairs not yet in the round's pair store, cut into shards (none when
    the store holds every pair the batch needs)."""
    settings = Settings.from_env()
    with holding_round(context, store, batch.round):
        planned = plan_pairs(
            batch,
            files.cache_at(batch.cache),
            settings.pair_shards,
            min_pairs=settings.min_pairs_per_shard,
        )
    pairs = sum(shard.pairs for shard in planned)
    context.log.info(f"phase 1: {pairs:,} new pairs in {len(planned)} shards")
    for shard in planned:
        yield dg.DynamicOutput(shard, mapping_key=f"positions_{shard.start}_{shard.stop}")


@dg.op(out=OP_VALUE, retry_policy=IO_RETRY)
def pair_statistics(
    context: dg.OpExecutionContext,
    batch: PreparedBatch,
    shard: Shard,
    store: StoreResource,
    files: FilesResource,
) -> int:
    """Compute one shard of phase 1 into the round's pair store; returns its pairs."""
    threads = _shard_threads(context)
    with holding_round(context, store, batch.round), limited_threads(threads):
        pairs, exact = compute_pairs(batch, files.cache_at(batch.cache), shard)
    context.log.info(
        f"{pairs:,} pairs, {exact:,} KS counts computed exactly"
        + (f" ({threads} thread{'s' if threads > 1 else ''})" if threads else "")
    )
    return pairs


def _shard_threads(context: dg.OpExecutionContext) -> int | None:
    """The threads a pair shard keeps to: ``NUMERAI_SHARD_THREADS`` in the sharded job, whose
    steps run side by side (:mod:`numerai_assets.batch.threads`); in process, one step at a
    time, every core (None)."""
    return Settings.from_env().shard_threads if context.job_name == SHARDED_JOB else None


@dg.op(out=OP_VALUE, retry_policy=IO_RETRY)
def originality_scores(
    context: dg.OpExecutionContext,
    batch: PreparedBatch,
    shards: list[int],
    store: StoreResource,
    files: FilesResource,
) -> OriginalityScores:
    """Phase 2: the decisions, in one ordered pass over the round, from the stored pairs."""
    with holding_round(context, store, batch.round) as lease:

        def log(message: str) -> None:
            lease.check()
            context.log.info(message)

        results = score_originality(batch, files.cache_at(batch.cache), log=log)
    context.log.info(f"originality of {len(results.decisions)} submissions")
    return results


@dg.op(retry_policy=IO_RETRY)
def write_scores(
    context: dg.OpExecutionContext,
    store: StoreResource,
    files: FilesResource,
    batch: PreparedBatch,
    concordance: dict[str, ConcordanceResult],
    originality: OriginalityScores,
) -> list[dict]:
    """Write every score back to the submissions database; report them in the UI."""
    submissions = store.get_store()
    with holding_round(context, store, batch.round) as lease:
        lease.check()  # still the writer?
        summary = write_results(
            submissions,
            batch,
            concordance,
            originality,
            run_id=context.run_id,
            scored_at=datetime.now(timezone.utc),
            log=context.log.warning,
        )
    submissions.release_round(batch.round, owner=context.run_id)
    files.discard_run_cache(context.run_id)
    context.add_output_metadata(
        {
            "scores": dg.MetadataValue.md(summary_markdown(summary, batch.policy)),
            "policy": batch.policy.version,
            "policy_rules": dg.MetadataValue.json(batch.policy.rules()),
            # Which submissions this run decided, for a reader that needs them (the UI shows
            # the table above).
            "decided": dg.MetadataValue.json(
                {
                    kind: [row["id"] for row in summary if key in row]
                    for kind, key in (
                        ("scored", "concordance"),
                        ("invalid", "invalid"),
                        ("left_pending", "pending"),
                    )
                }
            ),
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
    stored = pair_shards(batch).map(lambda shard: pair_statistics(batch, shard)).collect()
    return write_scores(
        batch,
        concordance_scores(batch, kmeans_clusters),
        originality_scores(batch, stored),
    )


@dg.asset_check(
    asset=submission_scores,
    partitions_def=rounds,
    additional_ins={"kmeans_clusters": dg.AssetIn("kmeans_clusters")},
)
def ks_false_alarm_rate(
    context: dg.AssetCheckExecutionContext,
    store: StoreResource,
    scoring_policy: PolicyResource,
    kmeans_clusters: FittedClusters,
) -> dg.AssetCheckResult:
    """Warns when the policy's KS thresholds call two independent submissions with the same
    distribution ``duplicate`` or ``similar`` with a probability above its false-alarm level
    at this round's size; records those probabilities and the share of pairs actually flagged."""
    policy = scoring_policy.get()
    rows = int(kmeans_clusters.clusters.labels.shape[0])
    rates = false_alarm_rates(policy, rows)
    docs = store.get_store().round_submissions(round_of(context))
    # Documents of other systems may hold anything under "original": only counts are read.
    scored = [status_of(d, "original") for d in docs if not d.get("invalid")]
    observed = observed_flag_rates(
        [o["pairs"] for o in scored if isinstance(o.get("pairs"), Mapping)]
    )
    summary = (
        f"at {rows:,} rows, two independent submissions with the same distribution are called "
        f"duplicate (KS < {rates.duplicate_ks:.6g}) with probability {rates.p_duplicate:.3f} and "
        f"similar (KS <= {rates.similar_ks:.6g}) with probability {rates.p_similar:.3f}; "
        f"level {rates.level:g}: KS < {rates.holding_duplicate_ks:.6g} and "
        f"KS <= {rates.holding_similar_ks:.6g} would hold it at this size"
    )
    return dg.AssetCheckResult(
        passed=not rates.above_level,
        severity=dg.AssetCheckSeverity.WARN,
        description=summary,
        metadata={
            "summary": summary,
            "policy": policy.version,
            "rows": rows,
            "method": rates.method,
            "level": rates.level,
            "duplicate_ks": rates.duplicate_ks,
            "similar_ks": rates.similar_ks,
            "p_duplicate": rates.p_duplicate,
            "p_similar": rates.p_similar,
            "holding_duplicate_ks": rates.holding_duplicate_ks,
            "holding_similar_ks": rates.holding_similar_ks,
            **observed,
            # More than one version means part of the round awaits a rescore under the policy.
            "policies_in_round": ", ".join(sorted({o.get("policy", "none") for o in scored})),
        },
    )
