"""The code location Dagster loads (``workspace.yaml``): everything wired in one place."""

from collections.abc import Mapping

import dagster as dg

from numerai_assets.pipeline.jobs import scoring_jobs
from numerai_assets.pipeline.resources import build_resources
from numerai_assets.pipeline.round_assets import (
    competition_data,
    competition_data_is_valid,
    every_cluster_in_every_split,
    kmeans_clusters,
)
from numerai_assets.pipeline.scoring import ks_false_alarm_rate, submission_scores
from numerai_assets.pipeline.sensors import build_sensor
from numerai_assets.settings import Settings


def build_definitions(environ: Mapping[str, str] | None = None) -> dg.Definitions:
    """The definitions, with the sensor built from the environment (``os.environ`` by default).

    The resources read the environment when a run uses them, never here, and take no run config
    (:mod:`numerai_assets.pipeline.resources`)."""
    settings = Settings.from_env(environ)
    jobs = scoring_jobs(settings)
    return dg.Definitions(
        assets=[competition_data, kmeans_clusters, submission_scores],
        asset_checks=[competition_data_is_valid, every_cluster_in_every_split, ks_false_alarm_rate],
        jobs=jobs,
        sensors=[build_sensor(settings, jobs)],
        resources=build_resources(),
    )


defs = build_definitions()
