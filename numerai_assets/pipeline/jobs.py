"""The scoring jobs: the round assets and the scores of one round.

Two jobs over the same assets, told apart by how their steps run:

- ``score_round``, **in process**: every step in the run's one process, which starts fastest. For
  a small batch (an upload, a few): its decisions in seconds.
- ``score_round_sharded``, on the **deployment's executor** (``NUMERAI_EXECUTOR``): the shards of
  phase 1 of originality run in parallel on its workers. For a large batch or a rescore.

  ============  ========================================================================
  executor      where the steps run
  ============  ========================================================================
  multiprocess  a process per step on the run's machine (the default; one per core), forked
                from a server that imported the code once
  celery        Celery workers (``dagster-celery``) on ``NUMERAI_CELERY_BROKER`` (RabbitMQ),
                queue ``NUMERAI_CELERY_QUEUE``; start them with
                ``celery -A numerai_assets.pipeline.celery_app worker --concurrency=1``
  ecs           an ECS task per step (``dagster_aws.ecs.ecs_executor``; needs the
                ``EcsRunLauncher``: ``deploy/ecs/dagster.yaml``)
  k8s           a Kubernetes job per step (``dagster_k8s.k8s_job_executor``; needs the
                ``K8sRunLauncher``: ``deploy/k8s/dagster.yaml``)
  ============  ========================================================================

The code is the same whichever runs it; the sensor picks the job by the batch's size
(:func:`numerai_assets.batch.run_shape.job_for`). Values between steps are small and go
through the ``op_values`` IO manager (the run's folder or S3), the predictions and phase 1's
pairs through the round's cache and pair store (under ``NUMERAI_ASSETS_HOME``: a filesystem
every step of a run mounts).
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from numerai_assets.batch.run_shape import (
    IN_PROCESS_JOB,
    SHARDED_JOB,
    batch_config,
)
from numerai_assets.pipeline.round_assets import competition_data, kmeans_clusters
from numerai_assets.pipeline.scoring import submission_scores
from numerai_assets.settings import Settings

ROUND_ASSETS = (competition_data, kmeans_clusters)
ROUND_DATA_KEYS = [a.key for a in ROUND_ASSETS]
JOBS = (IN_PROCESS_JOB, SHARDED_JOB)
# The code location (workspace.yaml): what a run's steps load wherever they run.
DEFINITIONS_MODULE = "numerai_assets.definitions"
# The sensor is the one that retries (numerai_assets.batch.planning): Dagster's own run retries
# give up for good when launching the retry fails (an outage of its storage), and two retriers
# would run a failed batch twice.
NO_DAGSTER_RETRIES = {"dagster/max_retries": "0"}


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery config of the ``celery`` executor, which its workers are built from too
    (:mod:`numerai_assets.pipeline.celery_app`), so the two ends cannot disagree.

    ``config_source`` matters on the workers' side: acking late and prefetching one task keep a
    worker from holding a step while it runs another (a step then waited for a busy worker
    while another sat idle). In the run's process it sets the queue the steps are sent to.
    """
    return {
        "broker": settings.celery_broker,
        "backend": "rpc://",
        # Imported by a worker when it starts (its pool's processes inherit it), not at its first
        # step; a worker whose code or settings are broken fails to start.
        "include": [DEFINITIONS_MODULE],
        "config_source": {
            "task_default_queue": settings.celery_queue,
            "task_acks_late": True,
            "worker_prefetch_multiplier": 1,
        },
    }


def executor_for(settings: Settings) -> dg.ExecutorDefinition:
    """The deployment's executor for the sharded job (``NUMERAI_EXECUTOR``).

    Each is configured here, completely: run config (the launchpad, which anyone who reaches the
    UI can type into) can change nothing of it. Unconfigured, the ECS and Kubernetes executors
    would take a task's overrides, an image, a service account or volumes from run config. Their
    steps inherit the run's task or pod as the run launcher made it (``deploy/ecs``,
    ``deploy/k8s``): image, roles, environment, secrets, volumes, resources.
    """
    kind = settings.executor
    if kind == "multiprocess":
        # Each step forked from a server that imported the code once: spawned, every step
        # imported it again (about 3 s each; a round's run took 2.5 times as long).
        preloaded = {"forkserver": {"preload_modules": [DEFINITIONS_MODULE]}}
        return dg.multiprocess_executor.configured(
            {"start_method": preloaded}, name="multiprocess", config_schema={}
        )
    if kind == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(celery_config(settings), name="celery", config_schema={})
    if kind == "ecs":
        from dagster_aws.ecs import ecs_executor

        return ecs_executor.configured({}, name="ecs", config_schema={})
    from dagster_k8s import k8s_job_executor  # kind == "k8s" (Settings checks the names)

    return k8s_job_executor.configured({}, name="k8s", config_schema={})


def scoring_jobs(settings: Settings) -> list[dg.UnresolvedAssetJobDefinition]:
    """Both jobs, the sharded one on the deployment's executor (read when the definitions are
    built, the only moment Dagster takes it)."""
    selection = dg.AssetSelection.assets(*ROUND_ASSETS, submission_scores)
    description = (
        "Score a batch of one round's submissions (rematerializing the round's data when it "
        "is selected). Config: the submission ids; none means the whole round."
    )
    return [
        dg.define_asset_job(
            IN_PROCESS_JOB,
            selection=selection,
            executor_def=dg.in_process_executor,
            tags=NO_DAGSTER_RETRIES,
            description=description + " Every step in one process: for small batches.",
        ),
        dg.define_asset_job(
            SHARDED_JOB,
            selection=selection,
            executor_def=executor_for(settings),
            tags=NO_DAGSTER_RETRIES,
            description=description
            + f" Steps on the deployment's executor ({settings.executor}): for large batches "
            "and rescores, phase 1 of originality in parallel.",
        ),
    ]


def batch_run_config(submission_ids: list[str]) -> dg.RunConfig:
    """:func:`~numerai_assets.batch.run_shape.batch_config` as Dagster's ``RunConfig``: the only
    run config a scoring run takes, the resources having no fields. Raises
    :class:`ValueError` for ids the op would refuse."""
    return dg.RunConfig(**batch_config(submission_ids))
