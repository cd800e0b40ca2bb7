"""The round's rows and numbers and one submission's diagnostic, from documents as the store
keeps them (a real embedded store), including documents written by other systems."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from numerai_assets.store import SubmissionStore, open_database
from numerai_assets.views.report import DISPLAY_LIMIT
from numerai_assets.views.round_view import (
    ROUND_COLUMNS,
    explain,
    explain_lines,
    round_numbers,
    round_rows,
    round_table,
)

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
CLUSTERS = [
    {
        "cluster": 0,
        "sizes": {"validation": 40, "test": 30, "live": 0},
        "ks": {"validation/test": 0.05, "validation/live": None, "test/live": None},
        "max_ks": 0.05,
    },
    {
        "cluster": 1,
        "sizes": {"validation": 20, "test": 25, "live": 10},
        "ks": {"validation/test": 0.02, "validation/live": 0.09, "test/live": 0.07},
        "max_ks": 0.09,
    },
]


@pytest.fixture
def round_docs(home) -> dict:
    """ann and bob original, cat a duplicate of ann, dan invalid, eve pending; in that order."""
    store = SubmissionStore(open_database())
    ids = {
        user: store.insert_submission(
            username=user, round=3, filename=f"3/{user}/f.csv", created=T0 + timedelta(minutes=k)
        )
        for k, user in enumerate(["ann", "bob", "cat", "dan", "eve"])
    }

    def score(user, value, concordance, matches=(), reason=None, nearest=None):
        store.mark_pending(ids[user], consistency=60.0 + len(user), validation_logloss=0.69)
        compared = ["ann", "bob", "cat"].index(user)  # what the comparison rule gives
        originality = {
            "value": value,
            "reason": reason,
            "matches": list(matches),
            "pairs": {
                "compared": compared,
                "correlated": 0,
                "duplicate": len(matches),
                "similar": 0,
            },
        }
        if nearest is not None:
            originality["nearest"] = nearest
        store.write_scores(
            ids[user],
            concordance={"value": concordance < 0.12, "score": concordance, "clusters": CLUSTERS},
            originality=originality,
            scored_at=T0 + timedelta(hours=1),
            run_id="run-1",
            policy="tournament-test",
        )

    ann_pair = {
        "username": "ann",
        "submission_id": str(ids["ann"]),
        "ks": 0.0011,
        "correlation": 0.31,
    }
    score("ann", True, 0.05, nearest={})
    score("bob", True, 0.2, nearest={"ks": {**ann_pair, "ks": 0.2}})
    score("cat", False, 0.07, [ann_pair], "duplicate", nearest={"ks": ann_pair})
    store.mark_invalid(ids["dan"], reason="line 2 has 3 fields\n| *x*", at=T0, run_id="run-1")
    return {"store": store, "ids": ids, "docs": store.round_submissions(3)}


def test_round_numbers_count_every_outcome_and_the_compared_pairs(round_docs):
    figures = round_numbers(round_docs["docs"])
    assert figures == {
        "submissions": 5,
        "scored": 3,
        "invalid": 1,
        "pending": 1,
        "not_original_correlated": 0,
        "not_original_duplicate": 1,
        "not_original_similar": 0,
        "not_concordant": 1,  # bob, 0.2
        "median_concordance": 0.07,
        "pairs_compared": 3,  # ann against nobody, bob against ann, cat against ann and bob
        "pairs_flagged": 1,
        "share_pairs_flagged": 1 / 3,
    }


def test_recorded_pair_counts_are_used_as_recorded(round_docs):
    docs = round_docs["docs"]
    cat = next(d for d in docs if d["username"] == "cat")
    cat["original"]["pairs"] = {"compared": 10, "duplicate": 1, "similar": 2, "correlated": 0}
    assert round_numbers(docs)["pairs_compared"] == 0 + 1 + 10


def test_rows_hold_every_submission_with_the_batch_marked(round_docs):
    ids = round_docs["ids"]
    rows = {
        r["user"]: r for r in round_rows(round_docs["docs"], [str(ids["cat"]), str(ids["dan"])])
    }
    assert all(list(r) == [name for name, *_ in ROUND_COLUMNS] for r in rows.values())
    assert {u for u, r in rows.items() if r["this_run"]} == {"cat", "dan"}
    assert [rows[u]["status"] for u in ["ann", "bob", "cat", "dan", "eve"]] == [
        "scored", "scored", "scored", "invalid", "pending"
    ]  # fmt: skip
    assert rows["cat"]["why"] == "duplicate"
    assert rows["cat"]["against"] == "ann (KS 0.0011, r 0.3100)"
    assert rows["dan"]["why"] == "invalid: line 2 has 3 fields\\n| *x*"  # on one line
    assert (rows["eve"]["concordance"], rows["eve"]["original"]) == (None, None)
    assert rows["ann"]["created"] == "2024-05-01T00:00:00+00:00"
    assert rows["bob"]["concordant"] is False and rows["bob"]["consistency"] == 63.0


ODD = [
    {"_id": "legacy-1"},
    {"_id": 5, "username": ["a"], "competition_id": "x", "original": "yes", "concordant": 3},
    {
        "_id": "z",
        "username": "u" * 500 + "\n",
        "invalid": "bare",
        "original": {"matches": ["no", {"ks": "high", "username": None}], "pairs": "many"},
        "concordant": {"clusters": [None, {"ks": "x", "sizes": [1]}], "score": float("nan")},
    },
]


def test_documents_from_other_systems_never_raise_and_stay_bounded():
    rows = round_rows(ODD)
    assert [r["status"] for r in rows] == ["pending", "pending", "invalid"]
    assert all(len(v) <= 240 for r in rows for v in r.values() if isinstance(v, str))
    assert len(rows[2]["user"]) == DISPLAY_LIMIT
    assert round_numbers(ODD)["submissions"] == 3
    for doc in ODD:
        diagnostic = explain(doc)
        json.dumps(diagnostic, allow_nan=False)  # JSON-safe as it is
        assert explain_lines(diagnostic)
    assert explain(ODD[2])["originality"]["matches"] == [{
        "username": "", "submission_id": "", "ks": None, "correlation": None}
    ]  # fmt: skip


def test_explain_gives_the_decisive_pair_the_clusters_and_the_policy(round_docs):
    ids = round_docs["ids"]
    cat = round_docs["store"].get(ids["cat"])
    cat["original"]["policy"] = "tournament-1a2b"  # where the scoring policy records it
    diagnostic = explain(cat)
    assert diagnostic["policy"] == "tournament-1a2b"
    assert diagnostic["originality"]["matches"] == [
        {"username": "ann", "submission_id": str(ids["ann"]), "ks": 0.0011, "correlation": 0.31}
    ]
    assert diagnostic["concordance"]["clusters"][0]["ks"]["validation/live"] is None
    assert (diagnostic["consistency"], diagnostic["status"]) == (63.0, "scored")
    text = "\n".join(explain_lines(diagnostic))
    decisive = next(line for line in explain_lines(diagnostic) if line.startswith("    ann "))
    assert decisive.split() == ["ann", str(ids["ann"]), "0.0011", "0.3100"]
    assert f"nearest by smallest KS: ann {ids['ann']} (KS 0.0011, r 0.3100)" in text
    assert "policy: tournament-1a2b" in text and "original: no (duplicate)" in text
    cluster_1 = next(line for line in explain_lines(diagnostic) if line.strip().startswith("1 "))
    assert cluster_1.split() == ["1", "20", "25", "10", "0.0200", "0.0900", "0.0700", "0.0900"]
    legacy = {"$unset": {"original.policy": "", "concordant.policy": ""}}  # before policies
    round_docs["store"]._database["submissions"].update_one({"_id": ids["ann"]}, legacy)
    assert "policy: not recorded" in explain_lines(explain(round_docs["store"].get(ids["ann"])))


def test_pair_figures_are_left_out_when_too_many_decisions_need_a_recount(round_docs, monkeypatch):
    from numerai_assets.views import round_view

    monkeypatch.setattr(round_view, "RECOUNT_LIMIT", 2)
    for doc in round_docs["docs"]:  # decisions recorded before pair counts were
        (doc.get("original") or {}).pop("pairs", None)
    figures = round_numbers(round_docs["docs"])
    assert "pairs_compared" not in figures and figures["scored"] == 3
    for doc in round_docs["docs"][:2]:
        doc["original"]["pairs"] = {"compared": 4}
    assert round_numbers(round_docs["docs"])["pairs_compared"] == 4 + 4 + 2


def test_the_round_table_is_capped_with_the_run_first_then_the_newest(round_docs):
    docs = round_docs["docs"]  # ann, bob, cat, dan, eve in round order
    ids = round_docs["ids"]
    rows, left_out = round_table(docs, [str(ids["bob"])], limit=3)
    assert [r["user"] for r in rows] == ["bob", "dan", "eve"] and left_out == 2
    assert [r["this_run"] for r in rows] == [True, False, False]
    whole, none_left = round_table(docs, [str(ids["bob"])], limit=len(docs))
    assert whole == round_rows(docs, [str(ids["bob"])]) and none_left == 0
    batch = [str(ids[u]) for u in ("ann", "cat", "eve")]
    rows, left_out = round_table(docs, batch, limit=2)  # a batch larger than the table
    assert [r["user"] for r in rows] == ["ann", "cat"] and left_out == 3
    with pytest.raises(ValueError, match="limit must be at least 1"):
        round_table(docs, [], limit=0)
