"""Per-round cached assets: the competition data and its KMeans clusters, with their checks."""

import tempfile
import warnings
from pathlib import Path

import dagster as dg
import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from numerai_assets.datasets import RoundDataset, load_round_dataset
from numerai_assets.files import dataset_key, fetch_round_dataset
from numerai_assets.pipeline.partitions import round_of, rounds
from numerai_assets.pipeline.resources import FilesResource, PolicyResource, StoreResource
from numerai_assets.pipeline.retries import IO_RETRY
from numerai_assets.pipeline.round_lease import holding_round
from numerai_assets.scoring.concordance import SPLITS, FittedClusters, cluster_round
from numerai_assets.scoring.policy import MAX_CLUSTERS, MAX_RANDOM_STATE

# One group, so the lineage page opens on competition_data → kmeans_clusters → submission_scores.
ROUND_GROUP = "rounds"

# Partitioned asset checks are a preview feature in Dagster 1.13; they work here (one check per
# round), so the warning would only be noise in every process that loads the definitions.
warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*AssetCheckSpec.*")


@dg.asset(
    partitions_def=rounds, group_name=ROUND_GROUP, kinds={"s3", "pandas"}, retry_policy=IO_RETRY
)
def competition_data(
    context: dg.AssetExecutionContext, files: FilesResource, store: StoreResource
) -> RoundDataset:
    """The round's training + tournament rows, downloaded from the datasets bucket and checked."""
    round = round_of(context)
    with holding_round(context, store, round):  # one writer of the round's assets at a time
        return _download(context, files, round)


def _download(context: dg.AssetExecutionContext, files: FilesResource, round: int) -> RoundDataset:
    key = dataset_key(files.dataset_key_template, round)
    buckets = files.get_buckets()
    location = buckets.describe(files.dataset_bucket, key)
    context.log.info(f"downloading round {round}'s dataset from {location}")
    with tempfile.TemporaryDirectory(prefix=f"round-{round}-") as tmp:
        path = fetch_round_dataset(buckets, files.dataset_bucket, key, Path(tmp))
        context.log.info(f"downloaded {path.stat().st_size:,} bytes; reading and checking")
        data = load_round_dataset(path, round=round)
    summary = data.summary()
    summary["source"] = location
    context.add_output_metadata(summary)
    return data


_CLUSTERING_BOUNDS = {"random_state": (0, MAX_RANDOM_STATE), "n_clusters": (1, MAX_CLUSTERS)}


class ClusteringConfig(dg.Config):
    """Unset fields come from the scoring policy (``NUMERAI_SCORING_POLICY``); scoring refuses
    clusters fitted otherwise than its policy says, so an override here goes with a policy.
    Bounded as the policy's own fields are."""

    random_state: int | None = Field(
        default=None, description=f"0 to {MAX_RANDOM_STATE}; unset: the policy's"
    )
    n_clusters: int | None = Field(
        default=None, description=f"1 to {MAX_CLUSTERS}; unset: the policy's"
    )

    @field_validator("random_state", "n_clusters")
    @classmethod
    def _bounded(cls, value: int | None, info: ValidationInfo) -> int | None:
        low, high = _CLUSTERING_BOUNDS[info.field_name]
        if value is not None and not low <= value <= high:
            # Not retried: the same config would fail the same way.
            raise dg.Failure(
                f"run config: {info.field_name} must be a whole number from {low} to {high}, "
                f"got {value}",
                allow_retries=False,
            )
        return value


@dg.asset(partitions_def=rounds, group_name=ROUND_GROUP, kinds={"scikitlearn"})
def kmeans_clusters(
    context: dg.AssetExecutionContext,
    config: ClusteringConfig,
    scoring_policy: PolicyResource,
    store: StoreResource,
    competition_data: RoundDataset,
) -> FittedClusters:
    """KMeans fitted on the round's training + tournament features, seeded for reproducibility."""
    with holding_round(context, store, round_of(context)):
        return _fit(context, config, scoring_policy, competition_data)


def _fit(
    context: dg.AssetExecutionContext,
    config: ClusteringConfig,
    scoring_policy: PolicyResource,
    competition_data: RoundDataset,
) -> FittedClusters:
    policy = scoring_policy.get()
    n_clusters = policy.n_clusters if config.n_clusters is None else config.n_clusters
    random_state = policy.random_state if config.random_state is None else config.random_state
    features = list(competition_data.features)
    all_features = competition_data.all_features()
    context.log.info(f"fitting {n_clusters} clusters on {len(all_features):,} rows")
    fitted = cluster_round(
        all_features,
        competition_data.tournament[features].to_numpy(),
        competition_data.data_types,
        competition_data.tournament_ids,
        random_state=random_state,
        n_clusters=n_clusters,
    )
    context.add_output_metadata(
        {
            "cluster_sizes": dg.MetadataValue.md(_sizes_table(fitted)),
            "inertia": fitted.inertia,
            "random_state": random_state,
            "clusters": n_clusters,
        }
    )
    return fitted


def _sizes_table(fitted: FittedClusters) -> str:
    lines = ["| cluster | " + " | ".join(SPLITS) + " |", "| --- |" + " ---: |" * len(SPLITS)]
    for c, sizes in enumerate(fitted.clusters.sizes()):
        lines.append(f"| {c} | " + " | ".join(str(sizes[s]) for s in SPLITS) + " |")
    return "\n".join(lines)


@dg.asset_check(asset=competition_data, partitions_def=rounds, blocking=True)
def competition_data_is_valid(competition_data: RoundDataset) -> dg.AssetCheckResult:
    """Unique ids, every split present, numeric features: what scoring relies on."""
    t = competition_data.tournament
    ids = np.concatenate([competition_data.training["id"].to_numpy(), t["id"].to_numpy()])
    features = list(competition_data.features)
    problems = []
    if len(np.unique(ids)) != len(ids):
        problems.append("ids are not unique")
    missing = [s for s in SPLITS if not (t["data_type"] == s).any()]
    if missing:
        problems.append(f"no {', '.join(missing)} rows")
    for name, frame in (("training", competition_data.training), ("tournament", t)):
        if not np.isfinite(frame[features].to_numpy(dtype=float)).all():
            problems.append(f"{name} features are not all finite numbers")
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"problems": "; ".join(problems) or "none", **competition_data.summary()},
    )


@dg.asset_check(asset=kmeans_clusters, partitions_def=rounds)
def every_cluster_in_every_split(kmeans_clusters: FittedClusters) -> dg.AssetCheckResult:
    """A cluster missing a split is scored on fewer pairs (or left out): worth a warning."""
    sizes = kmeans_clusters.clusters.sizes()
    empty = [
        f"cluster {c}: no {s} rows" for c, row in enumerate(sizes) for s in SPLITS if not row[s]
    ]
    return dg.AssetCheckResult(
        passed=not empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "empty": "; ".join(empty) or "none",
            "cluster_sizes": dg.MetadataValue.md(_sizes_table(kmeans_clusters)),
        },
    )
