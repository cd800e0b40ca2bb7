"""Bad input: each submission refused with a reason a participant understands, the rest scored."""

import bz2
import gzip
from datetime import datetime, timedelta, timezone

import dagster as dg
import numpy as np
import pytest
from bson import ObjectId

from numerai_assets.datasets.synthetic import submission_csv
from numerai_assets.definitions import build_definitions
from numerai_assets.pipeline.resources import build_resources

from .conftest import evaluate_sensor, launch


def bad_files(ids: np.ndarray) -> dict[str, tuple[bytes, str]]:
    good = np.linspace(0.2, 0.8, len(ids))
    csv = submission_csv(ids, good)
    lines = csv.decode().splitlines()
    return {
        "wrong_header": (csv.replace(b"id,probability", b"id,prediction", 1), "header must be"),
        "no_header": ("\n".join(lines[1:]).encode(), "the file has no header line"),
        "extra_column": (
            "\n".join([lines[0] + ",x", *[line + ",1" for line in lines[1:]]]).encode(),
            "found 'id,probability,x'",
        ),
        "repeated_id": ("\n".join([*lines, lines[1]]).encode(), "1 id appears more than once"),
        "missing_id": ("\n".join(lines[:-1]).encode(), "1 id of this round is missing"),
        "unknown_id": ("\n".join([*lines, "zz999,0.5"]).encode(), "1 id is not in this round"),
        "nan": (csv.replace(lines[3].split(",")[1].encode(), b"nan", 1), "NaN or infinite"),
        "outside": (
            "\n".join([lines[0], *[ln.split(",")[0] + ",1.5" for ln in lines[1:]]]).encode(),
            "outside [0, 1]",
        ),
        "not_numeric": (csv.replace(lines[2].split(",")[1].encode(), b"high", 1), "not a number"),
        "empty": (b"", "the file is empty"),
        "header_only": (b"id,probability\n", "header but no rows"),
        "truncated_gzip": (gzip.compress(csv)[:200], "the gzip file is truncated"),
        "truncated_bz2": (bz2.compress(csv)[:200], "the bzip2 file is truncated"),
        "binary": (bytes(range(256)) * 4, "binary data"),
        "huge": (csv + b"#" * (2 << 20), "bytes a submission for this round can take"),
    }


def test_every_bad_file_gets_its_reason_and_the_rest_are_scored(seeded, instance):
    files = bad_files(seeded.ids)
    for user, (data, _) in files.items():
        seeded.submit(user, data)
    seeded.submit("good", submission_csv(seeded.ids, np.linspace(0.2, 0.8, len(seeded.ids))))
    (run,) = launch(instance, evaluate_sensor(instance))
    assert run.success
    docs = seeded.by_user()
    for user, (_, reason) in files.items():
        assert reason in docs[user]["invalid"]["reason"], user
        assert docs[user]["original"] == {"pending": False, "value": False}
    assert "invalid" not in docs["good"] and docs["good"]["original"]["value"] is True


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("competition_id", "seven", "competition_id is 'seven' (str), not a round number"),
        ("username", None, "has no username"),
        ("created", "2024-01-01", "created is '2024-01-01' (str), not a date and time"),
    ],
)
def test_malformed_documents_are_set_aside_by_the_sensor(seeded, instance, field, value, reason):
    good = seeded.submit("alice", b"id,probability\n")
    bad = seeded.submit("bob", b"id,probability\n")
    database = seeded.deployment.store._database
    database["submissions"].update_one({"_id": ObjectId(bad)}, {"$set": {field: value}})
    result = evaluate_sensor(instance)
    (request,) = result.run_requests
    ids = request.run_config["ops"]["submission_scores"]["ops"]["prepare_submissions"]["config"]
    assert ids["submission_ids"] == [good]
    stored = database["submissions"].find_one({"_id": ObjectId(bad)})
    assert reason in stored["invalid"]["reason"]


def batch_of(request) -> list[str]:
    return request.run_config["ops"]["submission_scores"]["ops"]["prepare_submissions"]["config"][
        "submission_ids"
    ]


def test_intake_requests_are_a_queue_and_rescore_scored_submissions(seeded, instance):
    ids = seeded.submit_demo(3)
    launch(instance, evaluate_sensor(instance))
    store = seeded.deployment.store
    stamp = datetime.now(timezone.utc)
    store.request_scoring(ids["bob"], at=stamp)
    store.request_scoring(ids["alice"], at=stamp)  # the same millisecond: both taken
    late = seeded.submit("zed", b"id,probability\n")
    (request,) = evaluate_sensor(instance).run_requests
    assert request.tags["reason"] == "requested"
    assert batch_of(request) == [ids["alice"], ids["bob"], late]  # (created, _id) order
    assert isinstance(evaluate_sensor(instance), dg.SkipReason)  # claimed: planned once
    store.request_scoring(ids["bob"], at=stamp - timedelta(seconds=5))  # a lagging intake
    (again,) = evaluate_sensor(instance).run_requests
    assert batch_of(again) == [ids["bob"]] and again.run_key != request.run_key
    first, second = launch(instance, dg.SensorResult(run_requests=[request, again]))
    assert first.success and second.success
    docs = seeded.by_user()
    assert docs["bob"]["original"]["run_id"] == second.run_id
    assert docs["alice"]["original"]["run_id"] == first.run_id
    assert "queued" not in docs["bob"] and "rescore_requested" not in docs["bob"]


def test_secrets_stay_out_of_resource_config(monkeypatch):
    secrets = {
        "MONGO_URL": "mongodb://scorer:hunter2-secret@db.example:27017/numerai",
        "S3_SECRET_KEY": "s3-secret-value",
        "S3_ACCESS_KEY": "AKIA-secret-id",
        "S3_UPLOAD_BUCKET": "uploads",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    resources = build_resources()
    shown = repr(resources) + repr(build_definitions().resolve_job_def("score_round"))
    for value in secrets.values():
        if value != "uploads":
            assert value not in shown
    # Nothing of the deployment is held in a resource's config: they have no fields.
    assert {name: type(r).model_fields for name, r in resources.items()} == {
        name: {} for name in resources
    }
