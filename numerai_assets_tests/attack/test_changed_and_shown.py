"""A document changed between the sensor's tick and its run; `status` showing foreign documents."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from unittest import mock

import dagster as dg
from bson import ObjectId

from numerai_assets.cli.main import main
from numerai_assets.datasets.synthetic import model_probabilities, submission_csv
from numerai_assets_tests.pipeline.conftest import evaluate_sensor, launch


def test_a_created_rewritten_between_tick_and_run_fails_only_itself(seeded, instance):
    """Expected: the document rewritten by another system after the tick (created now a string)
    is left out or set aside; its honest neighbours in the batch are scored in the same run."""
    honest = {
        user: seeded.submit(
            user, submission_csv(seeded.ids, model_probabilities(seeded.tournament, seed=k))
        )
        for k, user in enumerate(("alice", "bob", "carol"))
    }
    tick = evaluate_sensor(instance)
    seeded.deployment.store._database["submissions"].update_one(
        {"_id": ObjectId(honest["bob"])}, {"$set": {"created": "2026-01-05T10:00:00"}}
    )
    runs = launch(instance, tick, raise_on_error=False)
    assert runs and all(r.success for r in runs)
    by_user = seeded.by_user()
    for user in ("alice", "carol"):
        assert by_user[user]["original"]["pending"] is False, user


def test_status_lists_the_documents_the_sensor_set_aside(seeded, capsys):
    """Expected: `numerai-assets status` (no --round) lists every stored document, as the README
    says ("whatever a document holds"), so an operator sees the foreign ones set aside."""
    database = seeded.deployment.store._database
    database["submissions"].insert_one(
        {"_id": "legacy-0042", "username": "old", "competition_id": 7, "filename": "7/old/p.csv"}
    )
    database["submissions"].insert_one(
        {"_id": ObjectId(), "username": "older", "competition_id": 7, "created": "2020-01-01"}
    )
    assert main(["status"]) == 0
    shown = capsys.readouterr().out
    assert "legacy-0042" in shown
    assert "older" in shown


def test_the_sensor_logs_foreign_ids_and_reasons_printable(seeded, instance):
    """The sensor's log line names a foreign document by its ``_id`` and the reason it was set
    aside, both quoting what another system stored: ``repr`` escapes, never hidden characters
    or a line break that would forge a second line."""
    database = seeded.deployment.store._database["submissions"]
    when = datetime(2020, 1, 1, tzinfo=timezone.utc)
    pending = {"pending": True, "value": None}
    foreign = {"competition_id": 7, "filename": "7/x/p.csv", "created": when}
    foreign.update(concordant=pending, original=pending)
    database.insert_one({"_id": "leg\u061cacy\n\U000e0041", "username": "x", **foreign})
    database.insert_one({"_id": ObjectId(), "username": "a\u202e/b\u00ad", **foreign})
    logger = logging.getLogger("numerai_assets_tests.sensor")
    logged: list[str] = []
    with (
        mock.patch.object(logger, "warning", side_effect=logged.append),
        mock.patch.object(
            dg.SensorEvaluationContext, "log", new_callable=mock.PropertyMock, return_value=logger
        ),
    ):
        evaluate_sensor(instance)
    assert len(logged) == 2 and all(line.isprintable() for line in logged)
    assert "not scored: 'leg\\u061cacy\\n\\U000e0041': the submission record's _id" in logged[0]
    assert "username 'a\\u202e/b\\xad' has control characters" in logged[1]
