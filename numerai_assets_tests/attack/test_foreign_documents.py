"""Foreign documents (other systems' shapes) that still break the sensor or a round's runs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
from bson import ObjectId

from numerai_assets.datasets.synthetic import model_probabilities, submission_csv
from numerai_assets_tests.pipeline.conftest import evaluate_sensor, launch

ROUND = 7
OLD = datetime(2020, 1, 1, tzinfo=timezone.utc)


def _raw(seeded, **fields):
    doc = {
        "_id": ObjectId(),
        "username": "legacy",
        "competition_id": ROUND,
        "filename": f"{ROUND}/legacy/p.csv",
        "created": OLD,
        **fields,
    }
    seeded.deployment.store._database["submissions"].insert_one(doc)
    return doc["_id"]


def _honest(seeded, user="alice", seed=1):
    data = submission_csv(seeded.ids, model_probabilities(seeded.tournament, seed=seed))
    return seeded.submit(user, data)


def _assert_scored(seeded, user="alice"):
    doc = seeded.by_user()[user]
    assert "invalid" not in doc, doc.get("invalid")
    assert doc["original"]["pending"] is False


@pytest.mark.parametrize(
    "fields",
    [
        {"original": True},  # a legacy boolean flag instead of {pending, value}
        {"concordant": "yes"},
        {"logloss": 0.69},  # a number where the pipeline expects {validation: ...}
    ],
    ids=["bool original", "str concordant", "float logloss"],
)
def test_an_old_document_with_odd_status_fields_does_not_fail_its_round(seeded, instance, fields):
    """Expected: an odd-typed status field of a document already in the round (not new, not
    pending) fails nothing; the round's honest upload is scored."""
    _raw(seeded, **fields)
    _honest(seeded)
    runs = launch(instance, evaluate_sensor(instance), raise_on_error=False)
    assert runs and all(r.success for r in runs)
    _assert_scored(seeded)


def test_a_document_with_a_dict_id_does_not_fail_its_round(seeded, instance):
    """Expected: the document is set aside and the honest upload of its round is scored."""
    _raw(seeded, _id={"legacy": 42})
    _honest(seeded)
    runs = launch(instance, evaluate_sensor(instance), raise_on_error=False)
    assert runs and all(r.success for r in runs)
    _assert_scored(seeded)


def test_a_rescore_request_on_a_dict_id_does_not_make_the_sensor_raise(seeded, instance):
    """Expected: the sensor never raises because of a document's content."""
    _raw(seeded, _id={"legacy": 43}, rescore_requested=datetime.now(timezone.utc))
    _honest(seeded)
    tick = evaluate_sensor(instance)  # raises TypeError: unhashable type: 'dict'
    assert not isinstance(tick, dg.SkipReason) and tick.run_requests


def test_a_far_future_created_does_not_hide_later_uploads(seeded, instance):
    """A document created in year 9999 by another system is set aside (more than a day ahead of
    any clock) and hides nothing: the next honest upload is picked up by the next tick."""
    _raw(seeded, created=datetime(9999, 12, 31, tzinfo=timezone.utc), concordant={"pending": True})
    first = evaluate_sensor(instance)
    launch(instance, first, raise_on_error=False)
    late = _honest(seeded, "late", seed=2)
    tick = evaluate_sensor(instance)
    assert not isinstance(tick, dg.SkipReason), tick
    picked = [
        r.run_config["ops"]["submission_scores"]["ops"]["prepare_submissions"]["config"][
            "submission_ids"
        ]
        for r in tick.run_requests
    ]
    assert [late] in picked


def test_a_far_future_rescore_request_does_not_hide_later_requests(seeded, instance):
    """Expected: a rescore_requested in year 9999 does not swallow every later intake request."""
    store = seeded.deployment.store
    honest = _honest(seeded)
    first = evaluate_sensor(instance)
    launch(instance, first)
    _raw(seeded, rescore_requested=datetime(9999, 1, 1, tzinfo=timezone.utc))
    evaluate_sensor(instance)  # sets the foreign request aside
    store.request_scoring(honest, at=datetime.now(timezone.utc) + timedelta(seconds=1))
    third = evaluate_sensor(instance)
    assert not isinstance(third, dg.SkipReason), third
    assert any(r.tags["reason"] == "requested" for r in third.run_requests)
