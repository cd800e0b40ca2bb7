"""Whatever the interleaving, a quiet round's decisions equal one clean scoring of it.

Seeded schedules of uploads (some stamped by clocks running behind, some asking for their run
at once as ``submit`` does), sensor ticks (some repeated), intake requests (some sharing a
timestamp, some from a lagging intake), runs that die before writing anything, files replaced
and rescored, and in-process rescores, drive the real sensor and job in-process on small rounds.
Then the round is brought to quiet (ticks and runs until nothing is left to do) and its stored
decisions are compared with those of a clean rescore of the whole round, with the prediction
cache off. ``NUMERAI_INTERLEAVINGS`` sets how many
schedules run (CI: 200; more for a longer search).
"""

from __future__ import annotations

import os
import random
import time
import uuid
from datetime import datetime, timedelta, timezone

import dagster as dg
import numpy as np
import pytest
from bson import ObjectId

from numerai_assets.batch.run_shape import run_shape
from numerai_assets.datasets.synthetic import model_probabilities, submission_csv
from numerai_assets.definitions import build_definitions
from numerai_assets.pipeline.jobs import batch_run_config
from numerai_assets.pipeline.launch import launch_on_upload
from numerai_assets.pipeline.partitions import rounds
from numerai_assets.settings import Settings
from numerai_assets_tests.daemon import add_partitions, evaluate_sensor

from .conftest import seed_round

# 50 seeded schedules in the suite (about a minute and a half on 2 idle cores); set
# NUMERAI_INTERLEAVINGS to search longer (README, Ordering).
SCHEDULES = int(os.environ.get("NUMERAI_INTERLEAVINGS", "50"))
USERS = ("ann", "ben", "cat", "dan")
SCORES = dg.AssetKey("submission_scores")
OPERATIONS = (
    *("upload",) * 2,
    "upload_and_ask",
    *("tick",) * 3,
    *("run",) * 3,
    *("request", "replace", "rescore"),
)


class Schedule:
    """One seeded interleaving against one round of a shared deployment and instance."""

    def __init__(self, seeded, instance: dg.DagsterInstance, seed: int) -> None:
        self.seeded, self.instance = seeded, instance
        self.rng = random.Random(seed)
        self.queue: list[dg.RunRequest] = []
        self.submitted: list[str] = []
        self.job = build_definitions().resolve_job_def("score_round")
        base = [model_probabilities(seeded.tournament, seed=seed * 10 + k) for k in range(3)]
        self.pool = [*base, base[0].copy(), np.clip(base[1] + 0.001, 0, 1)]  # copies, near-copies
        self.log: list[str] = []

    # What participants, the intake and operators do

    def upload(self) -> None:
        user = self.rng.choice(USERS)
        skew = self.rng.choice([0, 0, -20, -90, 2])  # seconds: clocks behind and ahead
        data = submission_csv(self.seeded.ids, self.rng.choice(self.pool))
        deployment = self.seeded.deployment
        key = f"{self.seeded.round}/{user}/{uuid.uuid4().hex[:8]}.csv"
        deployment.buckets.put_bytes(deployment.settings.upload_bucket, key, data)
        created = datetime.now(timezone.utc) + timedelta(seconds=skew)
        oid = deployment.store.insert_submission(
            username=user, round=self.seeded.round, filename=key, created=created
        )
        self.submitted.append(str(oid))
        self.log.append(f"upload {user} skew {skew}")

    def upload_and_ask(self) -> None:
        """What ``numerai-assets submit`` does: the upload, then its run asked for at once
        (:func:`launch_on_upload`), through this schedule's in-process daemon."""
        self.upload()
        settings = Settings.from_env()
        launch = launch_on_upload(
            settings, self.seeded.deployment.store, self.submitted[-1], webserver=self
        )
        self.log.append(f"asked: {launch.run_id or launch.why_not}")

    # What the webserver does for launch_on_upload (pipeline/launch.py's Webserver)

    def round_has_data(self, round: int) -> bool:
        status = self.instance.get_status_by_partition(
            dg.AssetKey("kmeans_clusters"), partition_keys=[str(round)], partitions_def=rounds
        )
        return (status or {}).get(str(round)) == dg.AssetPartitionStatus.MATERIALIZED

    def launch(self, run, settings) -> str:
        """Queue ``run`` as the webserver's launchRun would (its shape, its run key)."""
        shape = run_shape(run, settings)
        self.queue.append(
            dg.RunRequest(
                run_key=run.run_key,
                run_config=shape.run_config,
                asset_selection=[dg.AssetKey(name) for name in shape.asset_names],
                tags=shape.tags,
            )
        )
        return f"asked-{run.run_key}"

    def request(self) -> None:
        if not self.submitted:
            return
        at = datetime.now(timezone.utc) - timedelta(seconds=self.rng.choice([0, 2]))
        for submission in self.rng.sample(self.submitted, min(2, len(self.submitted))):
            self.seeded.deployment.store.request_scoring(submission, at=at)  # one timestamp
        self.log.append("requests")

    def replace(self) -> None:
        if not self.submitted:
            return
        submission = self.rng.choice(self.submitted)
        deployment = self.seeded.deployment
        doc = deployment.store.get(submission)
        data = submission_csv(self.seeded.ids, self.rng.choice(self.pool))
        deployment.buckets.put_bytes(deployment.settings.upload_bucket, doc["filename"], data)
        deployment.store.request_scoring(submission, at=datetime.now(timezone.utc))
        self.log.append("replace")

    def tick(self) -> None:
        result = evaluate_sensor(self.instance)
        add_partitions(self.instance, result)
        if isinstance(result, dg.SensorResult):
            self.queue.extend(result.run_requests)
        self.log.append("tick")

    def run(self, *, may_die: bool = True) -> None:
        if not self.queue:
            return
        request = self.queue.pop(0)  # the per-round limit: one at a time, oldest first
        if may_die and self.rng.random() < 0.2:  # the run's process dies before it writes
            self.log.append("run died")
            return
        self._execute(request.run_config, request.asset_selection, request.run_key)
        self.log.append("run")

    def rescore(self) -> None:
        """What ``numerai-assets rescore --in-process`` does: the round's partition, then a run
        of the whole round (``--scores-only`` once the round's data exists)."""
        round_key = str(self.seeded.round)
        if round_key not in self.instance.get_dynamic_partitions("rounds"):
            self.instance.add_dynamic_partitions("rounds", [round_key])
        materialized = self.round_has_data(self.seeded.round)
        self._execute(batch_run_config([]), [SCORES] if materialized else None, None)
        self.log.append("rescore")

    def _execute(self, run_config, asset_selection, run_key) -> None:
        tags = {"round": str(self.seeded.round)}
        if run_key:
            tags["dagster/run_key"] = run_key
        result = self.job.execute_in_process(
            run_config=run_config,
            instance=self.instance,
            partition_key=str(self.seeded.round),
            asset_selection=asset_selection,
            tags=tags,
            raise_on_error=False,
        )
        assert result.success, self.log

    # The schedule, and what it must end in

    def play(self, steps: int) -> None:
        for _ in range(steps):
            getattr(self, self.rng.choice(OPERATIONS))()

    def quiesce(self) -> None:
        for _ in range(12):
            self.tick()
            if not self.queue:
                return
            while self.queue:
                self.run(may_die=False)
        raise AssertionError(f"the round never became quiet: {self.log}")

    def decisions(self) -> dict[str, tuple]:
        docs = self.seeded.deployment.store.round_submissions(self.seeded.round)
        return {str(d["_id"]): decision(d) for d in docs}


def decision(doc: dict) -> tuple:
    """What a participant is told: nothing about which run or when."""
    original, concordant = doc.get("original") or {}, doc.get("concordant") or {}
    return (
        (doc.get("invalid") or {}).get("reason"),
        original.get("pending"),
        original.get("value"),
        original.get("reason"),
        sorted(m["submission_id"] for m in original.get("matches") or []),
        concordant.get("value"),
        None if concordant.get("score") is None else round(concordant["score"], 12),
        doc.get("consistency"),
    )


@pytest.fixture
def quick_recovery(monkeypatch):
    """Recovery at once (a run that died is noticed on the next tick), never giving up."""
    monkeypatch.setenv("NUMERAI_PENDING_RETRY_SECONDS", "0")
    monkeypatch.setenv("NUMERAI_MAX_SCORING_ATTEMPTS", "1000")
    monkeypatch.setenv("NUMERAI_ROUND_PICTURE", "off")  # not what is under test: 0.8 s a run


def test_every_interleaving_ends_as_one_clean_scoring(
    deployment, instance, quick_recovery, monkeypatch
):
    started = time.monotonic()
    failures = []
    asks: list[str] = []
    for k in range(SCHEDULES):
        seeded = seed_round(deployment, 100 + k, rows=300, seed=k)
        schedule = Schedule(seeded, instance, seed=k)
        schedule.play(steps=schedule.rng.randint(3, 8))
        schedule.quiesce()
        quiet = schedule.decisions()
        assert all(not d[1] for d in quiet.values()), ("pending after quiet", schedule.log)
        with monkeypatch.context() as clean:
            clean.setenv("NUMERAI_PREDICTION_CACHE", "off")
            schedule.rescore()
        if schedule.decisions() != quiet:
            failures.append((k, schedule.log))
        asks += [entry for entry in schedule.log if entry.startswith("asked: ")]
    elapsed = time.monotonic() - started
    print(f"{SCHEDULES} schedules in {elapsed:.0f} s")
    assert not failures, failures[:3]
    # Both ways an upload's run comes about were exercised: asked at once, left to the sensor.
    launched = [a for a in asks if a.startswith("asked: asked-")]
    assert launched and len(launched) < len(asks), asks


def test_a_late_upload_is_compared_into_place(deployment, instance, quick_recovery):
    """The issue's example: two uploads of one file, the second under a clock 15 s behind.
    Recorded as a clean scoring records them: the earlier-stamped one original, the other
    a duplicate of it, whatever the order the pipeline learnt of them."""
    seeded = seed_round(deployment, 7, rows=300, seed=3)
    schedule = Schedule(seeded, instance, seed=3)
    data = submission_csv(seeded.ids, schedule.pool[0])
    store = deployment.store
    ids = {}
    for user, skew in (("ann", 0), ("ben", -15)):
        key = f"7/{user}/p.csv"
        deployment.buckets.put_bytes(deployment.settings.upload_bucket, key, data)
        created = datetime.now(timezone.utc) + timedelta(seconds=skew)
        ids[user] = store.insert_submission(username=user, round=7, filename=key, created=created)
        schedule.tick()
        while schedule.queue:
            schedule.run(may_die=False)
    docs = {d["_id"]: d for d in store.round_submissions(7)}
    assert docs[ObjectId(ids["ben"])]["original"]["value"] is True
    assert docs[ObjectId(ids["ann"])]["original"]["value"] is False
    assert docs[ObjectId(ids["ann"])]["original"]["reason"] in {"duplicate", "correlated"}
