"""The partition is the round: after each run, the round's materialization lists every
submission of the round with its current decision, the run's batch marked."""

from __future__ import annotations

import base64
import io
import json
import re

import dagster as dg
import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from numerai_assets.cli import main
from numerai_assets.datasets.synthetic import submission_csv
from numerai_assets.views.round_view import ROUND_COLUMNS

from .conftest import evaluate_sensor, launch


def latest_materialization(instance: dg.DagsterInstance, round: str) -> dg.AssetMaterialization:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("submission_scores"), asset_partitions=[round]),
        limit=1,
        ascending=False,
    ).records
    return records[0].asset_materialization


def test_two_batches_in_one_round_the_latest_materialization_lists_every_submission(
    seeded, instance
):
    first = seeded.submit_demo(8)  # alice .. heidi: every outcome
    tick = evaluate_sensor(instance)
    (run,) = launch(instance, tick)
    assert run.success
    later = {
        "ivan": seeded.submit("ivan", near_copy_of(seeded, "bob")),
        "judy": seeded.submit("judy", b"id,probability\n"),
    }
    (second,) = launch(instance, evaluate_sensor(instance, tick.cursor))
    assert second.success

    metadata = latest_materialization(instance, "7").metadata
    table = metadata["round"].value
    assert [c.name for c in table.schema.columns] == [name for name, *_ in ROUND_COLUMNS]
    rows = {r.data["user"]: r.data for r in table.records}
    docs = seeded.by_user()
    assert set(rows) == set(docs) == set(first) | set(later)  # the whole round, both batches
    assert {user for user, row in rows.items() if row["this_run"]} == set(later)
    for user, doc in docs.items():  # every row is the submission's decision as stored now
        row = rows[user]
        assert row["submission"] == str(doc["_id"])
        if doc.get("invalid"):
            assert (row["status"], row["original"]) == ("invalid", None)
            assert row["why"].startswith("invalid: ")
        else:
            assert row["status"] == "scored"
            assert row["concordance"] == doc["concordant"]["score"]
            assert row["original"] is doc["original"]["value"]
            assert row["consistency"] == doc["consistency"]
    assert rows["carol"]["why"] == "duplicate" and rows["carol"]["against"].startswith("alice (KS")
    assert rows["ivan"]["why"] == "correlated" and rows["ivan"]["against"].startswith("bob (KS")
    assert rows["alice"]["against"] == ""

    numbers = {
        k: v.value for k, v in metadata.items() if k.startswith("round_") and k != "round_picture"
    }
    scored = [d for d in docs.values() if not d.get("invalid")]
    assert numbers["round_submissions"] == 10
    invalid = sum(bool(d.get("invalid")) for d in docs.values())
    assert invalid == 4  # a missing id, judy's header only, the demo's two constant files
    assert numbers["round_invalid"] == invalid and numbers["round_scored"] == len(docs) - invalid
    assert numbers["round_not_original_duplicate"] == 1  # carol (frank is constant: refused)
    assert numbers["round_not_original_correlated"] == 2  # dave, ivan
    assert numbers["round_pairs_flagged"] == sum(len(d["original"]["matches"]) for d in scored)
    assert 0 < numbers["round_share_pairs_flagged"] < 1
    assert isinstance(metadata["round_median_concordance"], dg.FloatMetadataValue)

    picture = metadata["round_picture"].value
    encoded = re.fullmatch(r"!\[round 7\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", picture)
    assert encoded and base64.b64decode(encoded[1]).startswith(b"\x89PNG\r\n\x1a\n")

    # The first run's materialization held the first batch only: the round as it was then.
    events = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("submission_scores"), asset_partitions=["7"]),
        limit=10,
        ascending=True,
    ).records
    earlier = events[0].asset_materialization.metadata
    assert len(events) == 2 and earlier["round_submissions"].value == 8
    assert all(r.data["this_run"] for r in earlier["round"].value.records)


def near_copy_of(seeded, user: str) -> bytes:
    """``user``'s file with noise of 0.001: correlated with it, not identical."""
    doc = seeded.by_user()[user]
    settings = seeded.deployment.settings
    stored = pd.read_csv(
        io.BytesIO(seeded.deployment.buckets.read_bytes(settings.upload_bucket, doc["filename"]))
    )
    noise = np.random.default_rng(5).normal(0, 1e-3, len(stored))
    return submission_csv(stored["id"].to_numpy(), np.clip(stored["probability"] + noise, 0, 1))


def test_explain_shows_the_decisive_pair_the_clusters_and_draws_the_cdfs(
    seeded, instance, capsys, tmp_path
):
    ids = seeded.submit_demo(8)
    (run,) = launch(instance, evaluate_sensor(instance))
    assert run.success
    carol = seeded.by_user()["carol"]

    assert main(["explain", ids["carol"]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "original: no (duplicate)" in lines
    decisive = next(line for line in lines if line.startswith("    alice "))
    match = carol["original"]["matches"][0]
    assert decisive.split() == [
        "alice",
        ids["alice"],
        f"{match['ks']:.4f}",
        f"{match['correlation']:.4f}",
    ]
    header = next(k for k, line in enumerate(lines) if "max KS" in line)
    rows = [line.split() for line in lines[header + 1 :]]
    assert [float(row[-1]) for row in rows] == pytest.approx(
        [c["max_ks"] for c in carol["concordant"]["clusters"]], abs=5e-5
    )

    picture = tmp_path / "carol.png"
    assert main(["explain", ids["carol"], "--json", "--plot", str(picture)]) == 0
    out = capsys.readouterr().out
    diagnostic = json.loads(out[: out.rindex("}") + 1])
    assert diagnostic["originality"]["matches"][0]["submission_id"] == ids["alice"]
    assert len(diagnostic["concordance"]["clusters"]) == 5
    assert out.rstrip().endswith(f"wrote {picture}")  # no note: the refitted clusters agree
    image = matplotlib.image.imread(picture)
    assert image.shape[0] > 400 and image.shape[1] > 800

    assert main(["explain", "0" * 24]) == 2
    assert "no submission with id" in capsys.readouterr().err
