"""One round holding every hostile input beside honest submissions, through the real sensor and job.

Each honest submission must be scored exactly as in a round without the hostile ones; each hostile
one ends invalid with a short reason naming its problem; the sensor keeps ticking and scores a
later upload; and the run's process stays under 1 GiB of peak memory (the scenario runs in a
process of its own, as the daemon would launch it, so the figure is the run's alone).
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import numpy as np
from bson import ObjectId

from numerai_assets.cli.context import Deployment
from numerai_assets.cli.submissions import upload_submission
from numerai_assets.datasets.hostile import hostile_files, unlucky_files
from numerai_assets.datasets.synthetic import model_probabilities, submission_csv
from numerai_assets.scoring.submission_format import REASON_CHARS

from .conftest import evaluate_sensor, launch, seed_round

ROUND = 7
PEAK_RSS_LIMIT = 1 << 30
HONEST_USERS = ("alice", "bob", "carol", "dave")
MARKDOWN_USER = "[evil](javascript:x) | **bold** <b>x<b>"  # no '/': a user name is one folder
T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)

# Documents another system could write, and the reason each must be set aside with.
FOREIGN_DOCUMENTS = {
    "string _id": (
        {"_id": "legacy-0042", "username": "old", "filename": "7/old/p.csv"},
        "_id is 'legacy-0042' (str), not an ObjectId",
    ),
    "string created": ({"created": "2026-01-05T10:00:00"}, "created is '2026-01-05T10:00:00'"),
    "no created": ({"created": ...}, "has no created"),
    "integer username": ({"username": 12345}, "username is 12345 (int), not a user name"),
    "huge username": ({"username": "u" * 10_000}, "username is longer than 100 characters"),
    "NUL in filename": ({"filename": "7/nul/a\x00b.csv"}, "is not a valid object key"),
}
# Keys the bucket refuses, or that do not lie directly in their owner's folder.
REFUSED_KEYS = {
    "7/eve/../../x": "'7/eve/../../x' is not a plain key",
    "7/eve/" + "a" * 300: "7/eve/" + "a" * 50,  # not found, or a name too long: named, cut
    "../x": "'../x' is not a plain key",
    "7/eve/b/x.csv": "'7/eve/b/x.csv' lies in a folder inside '7/eve/'",
    "7/mallory/x.csv": "'7/mallory/x.csv' does not lie under '7/eve/'",
}


def honest_files(ids: np.ndarray, tournament) -> dict[str, bytes]:
    files = {
        user: submission_csv(ids, model_probabilities(tournament, seed=k))
        for k, user in enumerate(HONEST_USERS)
    }
    probabilities = model_probabilities(tournament, seed=40)
    files.update({f"u-{name}": data for name, data in unlucky_files(ids, probabilities).items()})
    files[MARKDOWN_USER] = submission_csv(ids, model_probabilities(tournament, seed=41))
    return files


def _insert_raw(deployment: Deployment, k: int, fields: dict) -> None:
    doc = {
        "_id": ObjectId(),
        "username": f"foreign-{k}",
        "competition_id": ROUND,
        "filename": f"7/foreign-{k}/p.csv",
        "created": T0,
        "concordant": {"pending": True, "value": None},
        "original": {"pending": True, "value": None},
        **fields,
    }
    if doc["created"] is ...:
        del doc["created"]
    deployment.store._database["submissions"].insert_one(doc)


def upload_round(home: Path, hostile: bool) -> tuple[dict[str, str], str | None, bytes]:
    """Seed the round and upload every file; returns the expected reasons, the submission
    that will vanish while its run is queued, and a file to upload after the first run."""
    deployment = Deployment.from_env()
    seeded = seed_round(deployment, ROUND)
    ids = seeded.ids
    expected: dict[str, str] = {}
    vanishing = None
    for user, data in honest_files(ids, seeded.tournament).items():
        seeded.submit(user, data)
        if hostile and user == "bob":  # hostile files sit between the honest ones
            for name, (content, reason) in hostile_files(ids).items():
                expected[seeded.submit(f"h-{name}", content)] = reason
            for key, reason in REFUSED_KEYS.items():
                refused = deployment.store.insert_submission(
                    username="eve", round=ROUND, filename=key
                )
                expected[str(refused)] = reason
            vanishing = seeded.submit("vanishing", data)
    if hostile:
        for k, (fields, _) in enumerate(FOREIGN_DOCUMENTS.values()):
            _insert_raw(deployment, k, fields)
    late = submission_csv(ids, model_probabilities(seeded.tournament, seed=77))
    return expected, vanishing, late


CHILD_SECONDS = 300  # the scoring process takes about 7 s


def _peak_rss() -> int:
    """This process's peak resident memory in bytes (``VmHWM``). Not ``ru_maxrss``: that one
    survives ``exec``, so a child spawned from a large test process would report the parent's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def score_round(home: str, vanishing: str | None, late_file: bytes) -> dict:
    """Tick, run, upload once more, tick and run again; return the stored documents and the
    peak RSS of this process, which only scores (the files were made and uploaded elsewhere)."""
    os.environ["NUMERAI_ASSETS_HOME"] = home
    deployment = Deployment.from_env()
    with dg.instance_for_test() as instance:
        tick = evaluate_sensor(instance)
        if vanishing:  # deleted while its run is queued
            deployment.store._database["submissions"].delete_one({"_id": ObjectId(vanishing)})
        runs = launch(instance, tick)
        peak = _peak_rss()
        late = str(upload_submission(deployment, round=ROUND, user="late", data=late_file))
        later_runs = launch(instance, evaluate_sensor(instance))
        reports = [
            r.get_asset_materialization_events()[-1].materialization.metadata["scores"].value
            for r in runs
        ]
    return {
        "docs": list(deployment.store._database["submissions"].find()),
        "late": late,
        "runs_succeeded": [r.success for r in [*runs, *later_runs]],
        "peak_rss": peak,
        "reports": reports,
    }


def _score_round_reporting(*args) -> dict:
    """``score_round``, with any failure sent back as text (an exception of Dagster's or ours
    may not survive pickling, which would leave the pool waiting forever)."""
    try:
        return score_round(*args)
    except BaseException:  # noqa: BLE001 - reported to the test, which fails on it
        return {"error": traceback.format_exc()}


def run_apart(home: Path, hostile: bool, monkeypatch) -> dict:
    monkeypatch.setenv("NUMERAI_ASSETS_HOME", str(home))
    expected, vanishing, late_file = upload_round(home, hostile)
    # A worker that dies (or hangs) would leave apply() waiting for ever, and CI with it: a time
    # limit fails the test instead (the pool is terminated on the way out).
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        task = pool.apply_async(_score_round_reporting, (str(home), vanishing, late_file))
        result = task.get(timeout=CHILD_SECONDS)
    assert "error" not in result, result.get("error")
    return {**result, "expected": expected}


def scores(doc: dict) -> tuple:
    return (
        doc.get("consistency"),
        doc["concordant"].get("score"),
        doc["concordant"]["value"],
        doc["original"]["value"],
        doc["original"].get("reason"),
        [(m["username"], m["correlation"], m["ks"]) for m in doc["original"].get("matches", [])],
    )


def test_hostile_inputs_fail_only_themselves(local_env, tmp_path, monkeypatch):
    attacked = run_apart(tmp_path / "attacked", True, monkeypatch)
    clean = run_apart(tmp_path / "clean", False, monkeypatch)

    assert all(attacked["runs_succeeded"]) and attacked["runs_succeeded"]
    assert attacked["peak_rss"] < PEAK_RSS_LIMIT, f"peak RSS {attacked['peak_rss'] >> 20} MiB"

    docs = {str(d["_id"]): d for d in attacked["docs"]}
    for submission_id, reason in attacked["expected"].items():
        stored = docs[submission_id]["invalid"]["reason"]
        assert reason in stored and len(stored) <= REASON_CHARS and stored.isprintable()
        assert docs[submission_id]["original"] == {"pending": False, "value": False}
    by_user = {d["username"]: d for d in attacked["docs"] if isinstance(d["username"], str)}
    for _, reason in FOREIGN_DOCUMENTS.values():
        matching = [
            d for d in attacked["docs"] if reason in (d.get("invalid") or {}).get("reason", "")
        ]
        assert len(matching) == 1, reason
        assert len(matching[0]["invalid"]["reason"]) < 300
    assert "vanishing" not in by_user

    # Honest submissions: scored exactly as in the round without the hostile ones.
    clean_by_user = {d["username"]: d for d in clean["docs"]}
    for user, clean_doc in clean_by_user.items():
        assert "invalid" not in by_user[user], user
        assert scores(by_user[user]) == scores(clean_doc), user
    # The sensor kept ticking: the later upload was scored.
    assert docs[attacked["late"]]["original"]["pending"] is False

    # The user-supplied name cannot rewrite the run's report table.
    (report,) = attacked["reports"]
    rows = [line for line in report.splitlines() if line.startswith("|")]
    header_cells = rows[0].count("|")
    assert all(row.count("|") - row.count("\\|") == header_cells for row in rows)
    assert "](javascript" not in report and "<b>" not in report
