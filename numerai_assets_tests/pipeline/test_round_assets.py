"""The per-round assets materialized for one partition, with their metadata and checks."""

import dagster as dg
import numpy as np

from numerai_assets.definitions import build_definitions


def materialize_round(instance, round_key="7", **kwargs):
    instance.add_dynamic_partitions("rounds", [round_key])
    defs = build_definitions()
    return dg.materialize(
        [defs.get_assets_def("competition_data"), defs.get_assets_def("kmeans_clusters")],
        resources=defs.resources,
        partition_key=round_key,
        instance=instance,
        **kwargs,
    )


def test_round_assets_carry_their_metadata_and_pass_their_checks(seeded, instance):
    result = materialize_round(instance, selection=None)
    assert result.success
    data = result.asset_materializations_for_node("competition_data")[0].metadata
    assert data["validation_rows"].value == 600 and data["live_rows"].value == 300
    assert data["features"].value == 21 and data["validation_eras"].value == 3
    assert data["source"].value.endswith("numerai-datasets/7/numerai_datasets.zip")
    clusters = result.asset_materializations_for_node("kmeans_clusters")[0].metadata
    assert clusters["random_state"].value == 1337 and clusters["clusters"].value == 5
    table = clusters["cluster_sizes"].value.splitlines()
    assert table[0] == "| cluster | validation | test | live |" and len(table) == 7
    assert sum(int(row.split("|")[2]) for row in table[2:]) == 600

    fitted = result.output_for_node("kmeans_clusters")
    np.testing.assert_array_equal(fitted.tournament_ids, seeded.ids)
    status = instance.get_status_by_partition(
        dg.AssetKey("kmeans_clusters"), ["7"], dg.DynamicPartitionsDefinition(name="rounds")
    )
    assert status == {"7": dg.AssetPartitionStatus.MATERIALIZED}


def test_clusters_are_reproducible_and_seeded_by_config(seeded, instance):
    first = materialize_round(instance).output_for_node("kmeans_clusters")
    again = materialize_round(instance).output_for_node("kmeans_clusters")
    np.testing.assert_array_equal(first.clusters.labels, again.clusters.labels)
    other = materialize_round(
        instance,
        run_config={"ops": {"kmeans_clusters": {"config": {"random_state": 7}}}},
    ).output_for_node("kmeans_clusters")
    assert other.random_state == 7
