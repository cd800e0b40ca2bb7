"""The scoring job: the round assets and the scores of one round, in one process.

In-process execution: a run starts in about 2 s and each extra process per step would cost 2.5 s
more, and the batch's predictions stay in memory between ops.
"""

import dagster as dg

from numerai_assets.batch import check_batch_ids
from numerai_assets.pipeline.round_assets import competition_data, kmeans_clusters
from numerai_assets.pipeline.scoring import BatchConfig, submission_scores

ROUND_ASSETS = (competition_data, kmeans_clusters)

score_round = dg.define_asset_job(
    "score_round",
    selection=dg.AssetSelection.assets(*ROUND_ASSETS, submission_scores),
    executor_def=dg.in_process_executor,
    # The sensor is the one that retries (numerai_assets.batch.planning): Dagster's own run
    # retries give up for good when launching the retry fails (an outage of its storage), and
    # two retriers would run a failed batch twice.
    tags={"dagster/max_retries": "0"},
    description="Score a batch of one round's submissions (rematerializing the round's data "
    "when it is selected). Config: the submission ids; none means the whole round.",
)


def batch_run_config(submission_ids: list[str]) -> dg.RunConfig:
    """Run config that hands ``submission_ids`` to the scoring graph's first op (none: the
    whole round, a rescore): the only run config a scoring run takes, the resources having no
    fields. Raises :class:`ValueError` for ids the op would refuse
    (:func:`~numerai_assets.batch.check_batch_ids`)."""
    checked = check_batch_ids(submission_ids)
    return dg.RunConfig(
        ops={
            "submission_scores": {
                "ops": {"prepare_submissions": BatchConfig(submission_ids=checked)}
            }
        }
    )
