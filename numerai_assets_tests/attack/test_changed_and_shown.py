"""A document changed between the sensor's tick and its run; `status` showing foreign documents."""

from __future__ import annotations

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
