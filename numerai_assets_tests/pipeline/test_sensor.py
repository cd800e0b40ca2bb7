from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from numerai_assets.definitions import build_definitions
from numerai_assets.pipeline.jobs import batch_run_config

from .conftest import evaluate_sensor, launch, seed_round

ROUND_DATA = [dg.AssetKey("competition_data"), dg.AssetKey("kmeans_clusters")]
SCORES = dg.AssetKey("submission_scores")


def test_nothing_new_is_a_skip(deployment, instance):
    result = evaluate_sensor(instance)
    assert isinstance(result, dg.SkipReason)


def test_new_round_adds_its_partition_and_requests_a_run_with_its_data(seeded, instance):
    ids = list(seeded.submit_demo(4).values())
    result = evaluate_sensor(instance)
    assert isinstance(result, dg.SensorResult)
    (add,) = result.dynamic_partitions_requests
    assert (add.partitions_def_name, list(add.partition_keys)) == ("rounds", ["7"])
    (request,) = result.run_requests
    assert request.partition_key == "7"
    assert request.run_config == batch_run_config(ids).to_config_dict()  # created order
    assert request.tags["round"] == "7"
    assert set(request.asset_selection) == {*ROUND_DATA, SCORES}
    claims = [seeded.deployment.store.get(i)["queued"]["run_key"] for i in ids]
    assert claims == [request.run_key] * len(ids)


def test_claimed_work_is_planned_once_and_late_clocks_are_found_on_the_next_tick(seeded, instance):
    seeded.submit_demo(3)
    first = evaluate_sensor(instance)
    assert isinstance(evaluate_sensor(instance), dg.SkipReason)  # claimed: nothing twice

    later = seeded.submit("late", b"id,probability\n")
    store = seeded.deployment.store
    skewed = store.insert_submission(  # an upload server whose clock is an hour behind
        username="skewed",
        round=7,
        filename="7/skewed/p.csv",
        created=datetime.now(timezone.utc) - timedelta(hours=1),
    )
    (request,) = evaluate_sensor(instance).run_requests
    assert request.run_config == batch_run_config([str(skewed), later]).to_config_dict()
    assert request.run_key not in {r.run_key for r in first.run_requests}


def test_materialized_round_is_not_materialized_again(seeded, instance):
    seeded.submit_demo(2)
    first = evaluate_sensor(instance)
    assert all(r.success for r in launch(instance, first))
    seeded.submit("late", b"id,probability\n")
    (request,) = evaluate_sensor(instance, first.cursor).run_requests
    assert list(request.asset_selection) == [SCORES]


def test_big_rounds_are_split_into_batches_only_the_first_with_data(seeded, instance, monkeypatch):
    monkeypatch.setenv("NUMERAI_BATCH_SIZE", "3")
    ids = list(seeded.submit_demo(8).values())
    result = evaluate_sensor(instance)
    configs = [r.run_config for r in result.run_requests]
    assert configs == [batch_run_config(ids[i : i + 3]).to_config_dict() for i in (0, 3, 6)]
    assert set(result.run_requests[0].asset_selection) == {*ROUND_DATA, SCORES}
    assert [list(r.asset_selection) for r in result.run_requests[1:]] == [[SCORES], [SCORES]]
    # The run with the data is dequeued ahead of the round's other runs, which load it.
    assert [r.tags.get("dagster/priority") for r in result.run_requests] == ["1", None, None]
    assert len({r.run_key for r in result.run_requests}) == 3


def test_several_rounds_in_one_tick(seeded, instance):
    other = seed_round(seeded.deployment, 8, rows=300, seed=1)
    a = seeded.submit("alice", b"x")
    b = other.submit("bob", b"y")
    result = evaluate_sensor(instance)
    (add,) = result.dynamic_partitions_requests
    assert sorted(add.partition_keys) == ["7", "8"]
    by_round = {r.partition_key: r.run_config for r in result.run_requests}
    assert by_round == {
        "7": batch_run_config([a]).to_config_dict(),
        "8": batch_run_config([b]).to_config_dict(),
    }


@pytest.mark.parametrize("interval", ["5", "30"])
def test_interval_comes_from_the_environment(monkeypatch, interval):
    monkeypatch.setenv("NUMERAI_SENSOR_INTERVAL_SECONDS", interval)
    sensor = build_definitions().resolve_sensor_def("new_submissions")
    assert sensor.minimum_interval_seconds == int(interval)
