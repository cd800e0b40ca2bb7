"""The production instance (``deploy/production/dagster.yaml``) on the real PostgreSQL server."""

import dagster as dg
import pytest

from numerai_assets_tests.daemon import add_partitions, evaluate_sensor, execute
from numerai_assets_tests.pipeline.conftest import seed_round


@pytest.fixture
def postgres_instance(postgres_env, production_home, monkeypatch):
    for name, value in postgres_env.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.from_config(str(production_home)) as instance:
        yield instance


def test_production_config_uses_postgres_and_the_per_round_limit(postgres_instance):
    assert type(postgres_instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(postgres_instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(postgres_instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    limits = postgres_instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert {
        "key": "dagster/partition",
        "value": {"applyLimitPerUniqueValue": True},
        "limit": 1,
    } in [dict(limit) for limit in limits]
    # The sensor retries what a dead run left: Dagster's own run retries stay off, and a queued
    # run whose code location is briefly unreachable stays queued.
    assert not postgres_instance.run_retries_enabled
    assert postgres_instance.run_coordinator.get_run_queue_config().max_user_code_failure_retries


def test_a_scoring_run_is_recorded_in_postgres(postgres_instance, deployment):
    seeded = seed_round(deployment, 3)
    seeded.submit_demo(4)
    tick = evaluate_sensor(postgres_instance)
    add_partitions(postgres_instance, tick)
    (request,) = tick.run_requests
    result = execute(postgres_instance, request)
    assert result.success
    run = postgres_instance.get_run_by_id(result.run_id)
    assert run.tags["dagster/partition"] == "3" and run.tags["round"] == "3"
    status = postgres_instance.get_status_by_partition(
        dg.AssetKey("kmeans_clusters"),
        partition_keys=["3"],
        partitions_def=dg.DynamicPartitionsDefinition(name="rounds"),
    )
    assert status == {"3": dg.AssetPartitionStatus.MATERIALIZED}
    # The next tick sees the round as materialized, through PostgreSQL.
    seeded.submit("late", b"id,probability\n")
    (later,) = evaluate_sensor(postgres_instance, tick.cursor).run_requests
    assert list(later.asset_selection) == [dg.AssetKey("submission_scores")]
    assert all(
        not d["original"]["pending"] for d in seeded.by_user().values() if d["username"] != "late"
    )
