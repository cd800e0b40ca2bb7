"""Races between an upload asking for its run (pipeline/launch.py) and the sensor's tick.

The change promises: "if the sensor claimed it first, the upload asks for nothing", and a
claim is a compare-and-set on what was read, so each piece of work is planned for once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from numerai_assets.pipeline.launch import launch_on_upload
from numerai_assets.settings import Settings
from numerai_assets.store.documents import Claim
from numerai_assets_tests.store.helpers import ROUND, add, at, score


class FakeWebserver:
    """A webserver whose round has data and whose launches all succeed."""

    def __init__(self) -> None:
        self.launched: list = []

    def round_has_data(self, round: int) -> bool:
        return True

    def launch(self, run, settings) -> str:
        self.launched.append(run)
        return f"run-{len(self.launched)}"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"NUMERAI_ASSETS_HOME": str(tmp_path)})


def test_an_upload_the_sensor_claimed_before_the_upload_read_it_asks_for_nothing(store, settings):
    """`submit` stores the upload, then imports Dagster (a second or two) before it reads the
    document: a sensor tick in between claims it and requests its run. The upload then reads
    it claimed, and claim()'s compare-and-set compares with that claim, so it matches: the
    upload overwrites the sensor's claim and launches a second run for the same submission
    (prepare_batch scores whatever ids its config names, claim or not)."""
    mine = add(store, "mine", 10)
    store.claim([store.get(mine)], Claim("tick", None, at(11)))  # the sensor's run requested
    webserver = FakeWebserver()
    launch = launch_on_upload(settings, store, mine, webserver=webserver, now=at(12))
    assert launch.run_id is None
    assert webserver.launched == []
    assert store.get(mine)["queued"]["run_key"] == "tick"


def test_an_upload_already_scored_asks_for_nothing(store, settings):
    """The sensor claimed it, its run scored it, all before the upload read it (a slow
    `submit` on a loaded machine): the upload must not plan a decided submission again."""
    mine = add(store, "mine", 10)
    store.claim([store.get(mine)], Claim("tick", None, at(11)))
    score(store, mine)  # decided: the claim is cleared
    webserver = FakeWebserver()
    launch = launch_on_upload(settings, store, mine, webserver=webserver, now=at(12))
    assert launch.run_id is None
    assert webserver.launched == []
    assert store.get(mine).get("queued") is None


@pytest.mark.parametrize("decision", ["scored", "invalid"])
def test_a_tick_that_read_an_upload_before_the_uploads_run_decided_it_claims_nothing(
    store, decision
):
    """The tick reads the upload unclaimed; the upload claims it, its run takes it up and
    decides it (which clears the claim); then the tick claims what it read. The
    compare-and-set only asks "no claim now", which a decided submission also satisfies: the
    tick claims it again and requests a second run that scores it again."""
    mine = add(store, "mine", 10)
    tick_read = store.unclaimed()
    assert [d["_id"] for d in tick_read] == [mine]
    upload = Claim("upload", None, at(11))
    assert store.claim([store.get(mine)], upload)
    store.mark_pending(
        mine, consistency=0.5, validation_logloss=0.69, claim=Claim("upload", "run-1", at(11))
    )
    if decision == "scored":
        score(store, mine)
    else:
        store.mark_invalid(mine, reason="refused", at=at(12), run_id="run-1")
    assert store.claim(tick_read, Claim("tick", None, at(13))) == []
    assert store.get(mine).get("queued") is None


FOREIGN_QUEUED = {
    "string": "legacy",
    "null": None,
    "dict-without-at": {"run_key": "elsewhere"},
    "at-as-text": {"at": "2024-01-05T12:00:00Z"},
    "number": 7,
}
# mongomock's ``queued.at $not $type`` matches no ``queued`` that is not a document (MongoDB's
# and montydb's do): those shapes are checked on the real engines only.
REAL_ENGINES = ["embedded", pytest.param("mongodb", marks=pytest.mark.mongodb)]


def _claimed_once(store, queued) -> None:
    mine = add(store, "mine", 10)
    store._submissions.update_one({"_id": mine}, {"$set": {"queued": queued}})
    read = [store.get(mine)]
    assert [d["_id"] for d in store.claim(read, Claim("one", None, at(11)))] == [mine]
    assert store.claim(read, Claim("two", None, at(12))) == []
    assert store.get(mine)["queued"]["run_key"] == "one"


@pytest.mark.parametrize("queued", ["dict-without-at", "at-as-text"])
def test_foreign_queued_documents_are_claimed_once(store, queued):
    """Not a bug (checked): a ``queued`` document of another system's making reads as no claim
    and is claimed by the first planner only."""
    _claimed_once(store, FOREIGN_QUEUED[queued])


@pytest.mark.parametrize("database", REAL_ENGINES, indirect=True)
@pytest.mark.parametrize("queued", ["string", "null", "number"])
def test_foreign_queued_values_are_claimed_once(store, queued):
    """The same for a ``queued`` that is no document at all."""
    _claimed_once(store, FOREIGN_QUEUED[queued])


@pytest.mark.parametrize("requested", ["yes", True, 5, {"at": 1}])
def test_odd_rescore_requested_values_do_not_break_a_claim(store, requested):
    """Not a bug (checked): a request of a type we do not write is no request; the pending
    upload is claimed once, the odd value left as it was."""
    mine = add(store, "mine", 10)
    store._submissions.update_one({"_id": mine}, {"$set": {"rescore_requested": requested}})
    read = store.unclaimed()
    assert [d["_id"] for d in store.claim(read, Claim("one", None, at(11)))] == [mine]
    assert store.claim(read, Claim("two", None, at(12))) == []


def test_a_claim_at_with_microseconds_compares_with_what_is_read_back(store):
    """Not a bug (checked): a retry compares the ``at`` it read back (milliseconds)."""
    mine = add(store, "mine", 10)
    odd = at(11).replace(microsecond=123456)
    store.claim([store.get(mine)], Claim("first", None, odd))
    read = store.get(mine)
    assert [d["_id"] for d in store.claim([read], Claim("retry", None, at(70)))] == [mine]
    assert store.claim([read], Claim("again", None, at(71))) == []


def test_duplicates_in_the_docs_passed_to_claim(store):
    """Not a bug for the sensor (it never passes one twice): each copy is returned."""
    mine = add(store, "mine", 10)
    doc = store.get(mine)
    taken = store.claim([doc, doc], Claim("one", None, at(11)))
    assert [d["_id"] for d in taken] == [mine, mine]
    assert doc["competition_id"] == ROUND
