"""Second hostile review of launch on upload: the sensor's tick against an upload that asks for
its run while the tick is under way (the tick reads the store in several steps)."""

from __future__ import annotations

import dagster as dg

from numerai_assets.pipeline.launch import launch_on_upload
from numerai_assets.settings import Settings
from numerai_assets.store import SubmissionStore
from numerai_assets_tests.daemon import evaluate_sensor


class FakeWebserver:
    """A webserver whose round has data; ``during_launch`` runs while the launch is in flight
    (the run does not exist yet: launchRun has not answered)."""

    def __init__(self, during_launch=lambda: None) -> None:
        self.launched: list = []
        self.during_launch = during_launch

    def round_has_data(self, round: int) -> bool:
        return True

    def launch(self, run, settings) -> str:
        self.during_launch()
        self.launched.append(run)
        return f"run-{len(self.launched)}"


def _requested_ids(result) -> list[str]:
    if not isinstance(result, dg.SensorResult):
        return []
    ids = []
    for request in result.run_requests:
        config = (
            request.run_config.to_config_dict()
            if hasattr(request.run_config, "to_config_dict")
            else request.run_config
        )
        ops = config["ops"]["submission_scores"]["ops"]["prepare_submissions"]
        ids += ops["config"]["submission_ids"]
    return ids


def test_an_upload_claimed_between_the_ticks_two_reads_is_not_claimed_again_by_the_tick(
    seeded, instance, monkeypatch
):
    """The tick reads the unclaimed work, then (after failing orphaned runs) the claimed
    submissions. An upload that claims its own in between is in both reads; the tick's
    ``by_id`` keeps the *claimed* copy, so the compare-and-set compares with the upload's claim,
    matches, and overwrites it: the tick requests a run for the upload, whose own run was
    launched too. Two runs score one submission."""
    store = seeded.deployment.store
    mine = seeded.submit("mine", b"id,probability\n")
    webserver = FakeWebserver()
    original_claimed = SubmissionStore.claimed
    asked = []

    def claimed_after_the_upload_asked(self):
        if not asked:  # the upload asks between the tick's two reads
            asked.append(launch_on_upload(Settings.from_env(), store, mine, webserver=webserver))
        return original_claimed(self)

    monkeypatch.setattr(SubmissionStore, "claimed", claimed_after_the_upload_asked)
    result = evaluate_sensor(instance)
    assert asked and asked[0].run_id == "run-1"  # the upload's run was launched
    upload_key = webserver.launched[0].run_key
    assert mine not in _requested_ids(result), "the tick requested a second run for it"
    assert store.get(mine)["queued"]["run_key"] == upload_key
