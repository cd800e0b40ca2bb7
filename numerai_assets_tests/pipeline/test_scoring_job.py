import dagster as dg
import numpy as np
import pytest

from numerai_assets.cli.context import Deployment
from numerai_assets.datasets.synthetic import submission_csv
from numerai_assets.definitions import build_definitions
from numerai_assets.pipeline.jobs import batch_run_config
from numerai_assets.scoring.policy import ScoringPolicy

from .conftest import evaluate_sensor, launch, seed_round


def outcome(doc: dict) -> tuple:
    """What a participant sees of a submission, comparable across deployments."""
    if doc.get("invalid"):
        return ("invalid", doc["invalid"]["reason"])
    concordant, original = doc["concordant"], doc["original"]
    return (
        round(concordant["score"], 12),
        concordant["value"],
        original["value"],
        original["reason"],
        tuple(sorted(m["username"] for m in original["matches"])),
        round(doc["consistency"], 12),
    )


def test_sensor_runs_score_and_write_back_every_submission(seeded, instance):
    ids = seeded.submit_demo(8)
    (result,) = launch(instance, evaluate_sensor(instance))
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert {name: e.passed for name, e in evaluations.items()} == {
        "competition_data_is_valid": True,
        "every_cluster_in_every_split": True,
        # 2,000 rows: P(KS <= 0.03) for independent same-distribution submissions is ~0.69.
        "ks_false_alarm_rate": False,
    }
    docs = seeded.by_user()
    assert all(
        not d["concordant"]["pending"] and not d["original"]["pending"] for d in docs.values()
    )

    assert "1 id of this round is missing" in docs["grace"]["invalid"]["reason"]
    assert docs["grace"]["original"]["value"] is False
    version = ScoringPolicy().version
    for user in ("erin", "frank"):  # constant files: refused by the policy, with its version
        assert docs[user]["invalid"]["reason"] == (
            "every probability is 0.5: a constant file carries no prediction"
        )
        assert docs[user]["invalid"]["policy"] == version
    for user, reason, culprit in [
        ("carol", "duplicate", "alice"),
        ("dave", "correlated", "bob"),
    ]:
        original = docs[user]["original"]
        assert (original["value"], original["reason"]) == (False, reason)
        assert [m["submission_id"] for m in original["matches"]] == [ids[culprit]]
    for user in ("alice", "bob", "carol", "dave", "heidi"):
        assert docs[user]["original"]["policy"] == docs[user]["concordant"]["policy"] == version
    for user in ("alice", "bob", "heidi"):
        assert docs[user]["original"] == {**docs[user]["original"], "value": True, "reason": None}
        concordant = docs[user]["concordant"]
        assert concordant["value"] is (concordant["score"] < 0.12)
        assert len(concordant["clusters"]) == 5
        assert docs[user]["original"]["run_id"] == result.run_id
        assert 0 <= docs[user]["consistency"] <= 100

    board = {e["username"]: e for e in seeded.deployment.store.leaderboard(7)}
    assert "grace" not in board
    assert board["carol"]["original"] == {"pending": False, "value": False}
    assert board["alice"]["logloss"]["consistency"] == docs["alice"]["consistency"]

    materialization = result.asset_materializations_for_node("submission_scores")[0]
    table = materialization.metadata["scores"].value
    assert (
        "| carol |" in table and "duplicate" in table and "1 id of this round is missing" in table
    )
    assert f"Decided under scoring policy **{version}**" in table
    assert materialization.metadata["policy"].value == version
    assert materialization.metadata["invalid"].value == 3


def test_results_do_not_depend_on_batching(tmp_path, monkeypatch, instance):
    """One run per submission, and one run for all, write the same scores."""
    outcomes = []
    for name in ("one-by-one", "all-at-once"):
        monkeypatch.setenv("NUMERAI_ASSETS_HOME", str(tmp_path / name))
        seeded = seed_round(Deployment.from_env(), 7)
        ids = seeded.submit_demo(10)
        with dg.instance_for_test() as run_instance:
            run_instance.add_dynamic_partitions("rounds", ["7"])
            job = build_definitions().resolve_job_def("score_round")
            batches = [[i] for i in ids.values()] if name == "one-by-one" else [list(ids.values())]
            for batch in batches:
                assert job.execute_in_process(
                    run_config=batch_run_config(batch), instance=run_instance, partition_key="7"
                ).success
        outcomes.append({user: outcome(doc) for user, doc in seeded.by_user().items()})
    assert outcomes[0] == outcomes[1]
    assert outcomes[0]["dave"][3] == "correlated"


def test_rescore_of_the_whole_round_reproduces_the_scores(seeded, instance):
    seeded.submit_demo(8)
    launch(instance, evaluate_sensor(instance))
    before = {user: outcome(doc) for user, doc in seeded.by_user().items()}
    result = (
        build_definitions()
        .resolve_job_def("score_round")
        .execute_in_process(run_config=batch_run_config([]), instance=instance, partition_key="7")
    )
    assert result.success
    after = seeded.by_user()
    assert {user: outcome(doc) for user, doc in after.items()} == before
    assert {d["original"].get("run_id") for d in after.values() if not d.get("invalid")} == {
        result.run_id
    }


def test_invalid_files_do_not_stop_the_batch(seeded, instance):
    good = seeded.submit(
        "alice", submission_csv(seeded.ids, np.linspace(0.3, 0.7, len(seeded.ids)))
    )
    seeded.submit("bob", b"\x00\x01binary")
    seeded.submit("carol", b"")
    seeded.deployment.store.insert_submission(username="dan", round=7, filename="7/dan/missing.csv")
    (result,) = launch(instance, evaluate_sensor(instance))
    assert result.success
    docs = seeded.by_user()
    assert docs["alice"]["original"]["value"] is True and str(docs["alice"]["_id"]) == good
    assert "binary" in docs["bob"]["invalid"]["reason"]
    assert "empty" in docs["carol"]["invalid"]["reason"]
    assert "'7/dan/missing.csv' was not found" in docs["dan"]["invalid"]["reason"]


def test_scoring_against_s3(s3_server, s3_client, tmp_path, monkeypatch, instance):
    """The same pipeline with datasets and uploads in an S3 server over HTTP."""
    for bucket in ("datasets-e2e", "uploads-e2e"):
        s3_client.create_bucket(Bucket=bucket)
    env = {
        "S3_ENDPOINT_URL": s3_server,
        "S3_DATASET_BUCKET": "datasets-e2e",
        "S3_UPLOAD_BUCKET": "uploads-e2e",
        "S3_ACCESS_KEY": "testing",
        "S3_SECRET_KEY": "testing",
        "S3_REGION": "us-east-1",
        "NUMERAI_ASSETS_HOME": str(tmp_path / "home"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    deployment = Deployment.from_env()
    assert type(deployment.buckets).__name__ == "S3Buckets"
    seeded = seed_round(deployment, 7)
    seeded.submit_demo(6)
    assert s3_client.list_objects_v2(Bucket="uploads-e2e")["KeyCount"] == 6
    (result,) = launch(instance, evaluate_sensor(instance))
    assert result.success
    docs = seeded.by_user()
    assert docs["carol"]["original"]["reason"] == "duplicate"
    assert all(not d["original"]["pending"] for d in docs.values())
    data = result.asset_materializations_for_node("competition_data")[0]
    assert data.metadata["source"].value == "s3://datasets-e2e/7/numerai_datasets.zip"


def test_a_round_without_a_dataset_is_refused_with_the_reason(seeded, instance):
    seeded.submit("alice", b"id,probability\n")
    orphan = seeded.deployment.store.insert_submission(username="x", round=99, filename="99/x.csv")
    result = evaluate_sensor(instance)
    assert {r.partition_key for r in result.run_requests} == {"7"}
    assert list(result.dynamic_partitions_requests[0].partition_keys) == ["7"]
    reason = seeded.deployment.store.get(orphan)["invalid"]["reason"]
    assert reason.startswith("round 99 has no dataset (") and "99/numerai_datasets.zip" in reason


def test_a_missing_bucket_stops_the_sensor_and_marks_nothing(deployment, instance):
    deployment.store.insert_submission(username="x", round=99, filename="99/x.csv")
    with pytest.raises(Exception, match="bucket 'numerai-datasets' does not exist"):
        evaluate_sensor(instance)
    assert deployment.store.round_submissions(99)[0]["original"]["pending"] is True


def test_a_failing_round_leaves_its_submissions_pending(seeded, instance):
    seeded.submit_demo(3)
    # The dataset turns unreadable after the sensor has seen it.
    path = seeded.deployment.settings.local_buckets_dir / "numerai-datasets" / "7"
    (path / "numerai_datasets.zip").write_bytes(b"not a zip")
    runs = launch(instance, evaluate_sensor(instance), raise_on_error=False)
    assert [r.success for r in runs] == [False]
    messages = " ".join(
        error_chain(e.event_specific_data.error)
        for e in runs[0].all_events
        if e.event_type == dg.DagsterEventType.STEP_FAILURE
    )
    assert "round 7: " in messages
    assert all(d["original"]["pending"] for d in seeded.by_user().values())


def error_chain(error) -> str:
    messages = []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return " ".join(messages)
