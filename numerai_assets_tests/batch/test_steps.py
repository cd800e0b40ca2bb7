"""The batch steps as plain functions: every way one submission's file can fail fails only it."""

from __future__ import annotations

import os
import socket
from datetime import datetime
from pathlib import Path

import boto3
import numpy as np
import pytest
from botocore.config import Config
from bson import ObjectId

from numerai_assets.batch import (
    compute_pairs,
    plan_pairs,
    prepare_batch,
    score_concordance,
    score_originality,
    write_results,
)
from numerai_assets.batch.files import SubmissionFiles
from numerai_assets.cli.context import Deployment
from numerai_assets.cli.submissions import upload_submission
from numerai_assets.datasets import load_round_dataset
from numerai_assets.datasets.hostile import hostile_files, unlucky_files
from numerai_assets.datasets.synthetic import (
    make_round,
    model_probabilities,
    submission_csv,
    write_round_zip,
)
from numerai_assets.files import LocalBuckets, S3Buckets, StorageError
from numerai_assets.prediction_cache import RoundPredictionCache
from numerai_assets.scoring.concordance import cluster_round
from numerai_assets.scoring.policy import ScoringPolicy
from numerai_assets.scoring.sequence import judge_in_order
from numerai_assets.scoring.submission_format import REASON_CHARS
from numerai_assets.store.validation import malformed_reason

ROUND = 7
POLICY = ScoringPolicy()


@pytest.fixture(scope="module")
def round_data(tmp_path_factory):
    training, tournament = make_round(
        training_rows=1500, validation_rows=600, test_rows=600, live_rows=300, eras=6, seed=3
    )
    path = write_round_zip(training, tournament, tmp_path_factory.mktemp("round") / "r.zip")
    data = load_round_dataset(path)
    columns = list(data.features)
    clusters = cluster_round(
        data.all_features(),
        data.tournament[columns].to_numpy(),
        data.data_types,
        data.tournament_ids,
    )
    return data, clusters


@pytest.fixture
def deployment(local_env: Path) -> Deployment:
    return Deployment.from_env()


def upload(deployment: Deployment, user: str, data: bytes, *, filename: str | None = None) -> str:
    key = filename or f"{ROUND}/{user}/predictions.csv"
    if filename is None:
        deployment.buckets.put_bytes(deployment.settings.upload_bucket, key, data)
    return str(deployment.store.insert_submission(username=user, round=ROUND, filename=key))


def files_for(deployment: Deployment, data, buckets=None) -> SubmissionFiles:
    return SubmissionFiles(
        buckets or deployment.buckets, deployment.settings.upload_bucket, data.tournament_ids
    )


def run_steps(deployment, files, round_data, cache_dir, ids=(), log=None):
    """The batch's steps in order, as the scoring graph runs them (phase 1 in shards)."""
    data, clusters = round_data
    log = log if log is not None else (lambda message: None)
    cache = RoundPredictionCache(cache_dir, ROUND, data.tournament_ids)
    batch = prepare_batch(deployment.store, files, data, ROUND, list(ids), POLICY, cache, log)
    for shard in plan_pairs(batch, cache, workers=3, min_pairs=1):  # several shards
        compute_pairs(batch, cache, shard)
    concordance = score_concordance(batch, clusters, cache)
    originality = score_originality(batch, cache, log=log)
    summary = write_results(
        deployment.store,
        batch,
        concordance,
        originality,
        run_id="run-1",
        scored_at=datetime(2025, 1, 1),
        log=log,
    )
    return batch, summary


def honest(deployment, data, users=("alice", "bob", "carol")) -> dict[str, str]:
    return {
        user: upload(
            deployment,
            user,
            submission_csv(data.tournament_ids, model_probabilities(data.tournament, seed=k)),
        )
        for k, user in enumerate(users)
    }


def test_every_hostile_file_is_refused_and_its_neighbours_scored(deployment, round_data, tmp_path):
    data, _ = round_data
    good = honest(deployment, data)
    probabilities = model_probabilities(data.tournament, seed=99)
    unlucky = {
        name: upload(deployment, f"u-{name}", content)
        for name, content in unlucky_files(data.tournament_ids, probabilities).items()
    }
    hostile = {
        name: (upload(deployment, f"h-{name}", content), reason)
        for name, (content, reason) in hostile_files(data.tournament_ids).items()
    }
    batch, summary = run_steps(deployment, files_for(deployment, data), round_data, tmp_path)
    docs = {str(d["_id"]): d for d in deployment.store.round_submissions(ROUND)}
    for name, (submission_id, reason) in hostile.items():
        stored = docs[submission_id]["invalid"]["reason"]
        assert reason in stored, name
        assert len(stored) <= REASON_CHARS and "\n" not in stored
    for submission_id in [*good.values(), *unlucky.values()]:
        assert "invalid" not in docs[submission_id]
        assert docs[submission_id]["original"]["pending"] is False
    # The unlucky encodings are the same predictions: each is read exactly as the plain file.
    cache = RoundPredictionCache(tmp_path, ROUND, data.tournament_ids)  # what the steps read
    matrix, _ = cache.matrices()
    read = {entry.id: matrix[cache.row_of(entry.cache_key)] for entry in batch.valid()}
    for submission_id in unlucky.values():
        np.testing.assert_array_equal(read[submission_id], probabilities)
    assert len(summary) == len(docs)


def keys_the_store_refuses(deployment: Deployment, tmp_path: Path) -> dict[str, str]:
    bucket = deployment.settings.local_buckets_dir / deployment.settings.upload_bucket
    (bucket / str(ROUND) / "eve").mkdir(parents=True, exist_ok=True)
    secret = tmp_path / "secret.csv"
    secret.write_text("id,probability\n")
    (bucket / str(ROUND) / "eve" / "link.csv").symlink_to(secret)
    return {
        f"{ROUND}/eve/../../x": "'7/eve/../../x' is not a plain key",
        f"{ROUND}/eve/" + "a" * 300: "cannot be read",
        "../x": "'../x' is not a plain key",
        "6/eve/predictions.csv": "does not lie under '7/eve/'",
        f"{ROUND}/mallory/predictions.csv": "does not lie under '7/eve/'",
        f"{ROUND}/eve/link.csv": "it leads outside its bucket",
        f"{ROUND}/eve/missing.csv": "'7/eve/missing.csv' was not found",
    }


def test_a_key_the_store_refuses_fails_only_its_submission(deployment, round_data, tmp_path):
    data, _ = round_data
    good = honest(deployment, data)
    refused = {
        upload(deployment, "eve", b"", filename=key): reason
        for key, reason in keys_the_store_refuses(deployment, tmp_path).items()
    }
    run_steps(deployment, files_for(deployment, data), round_data, tmp_path / "cache")
    docs = {str(d["_id"]): d for d in deployment.store.round_submissions(ROUND)}
    for submission_id, reason in refused.items():
        assert reason in docs[submission_id]["invalid"]["reason"]
    assert all(docs[i]["original"]["value"] is not None for i in good.values())
    assert docs[good["alice"]]["original"]["value"] is True


# Ownership: a file lies directly in its owner's folder, compared part by part.

# (user, key) -> the reason the user's submission of that key is refused.
NOT_THEIRS = {
    ("a", "7/a/b/x.csv"): "'7/a/b/x.csv' lies in a folder inside '7/a/'",  # user a/b's file
    ("a", "7/ab/predictions.csv"): "'7/ab/predictions.csv' does not lie under '7/a/'",
    ("a", "7/a"): "'7/a' does not lie under '7/a/'",
    ("a", "7/a/"): "'7/a/' is not a plain key",
    ("a", "7/a//x.csv"): "is not a plain key",
    ("a", "7//a/x.csv"): "is not a plain key",
    ("a", "7/a/./x.csv"): "is not a plain key",
    ("a", "7/a/../b/x.csv"): "is not a plain key",
    ("a", "7/a/..\\b\\x.csv"): "is not a plain key",
    ("a", "7/a\\b/x.csv"): "is not a plain key",
    ("a", "7/a%2Fb/predictions.csv"): "does not lie under '7/a/'",  # S3 decodes no %-escape
    ("a", "/7/a/x.csv"): "is not a plain key",
}


def test_no_user_is_scored_from_a_file_outside_their_own_folder(deployment, round_data, tmp_path):
    """User ``a`` claims the files of ``a/b`` (stored before user names with '/' were refused),
    of ``ab``, of ``a%2Fb``, and keys that tools resolve into their folder: each claim is refused
    with its reason, while the owners' own files are scored."""
    data, _ = round_data
    good = honest(deployment, data, ("alice", "ab", "a%2Fb"))
    csv = submission_csv(data.tournament_ids, model_probabilities(data.tournament, seed=5))
    deployment.buckets.put_bytes(deployment.settings.upload_bucket, "7/a/b/x.csv", csv)
    raw = deployment.store._database["submissions"]
    legacy = {  # the nested user's own record: the sensor sets it aside, the batch leaves it out
        "_id": ObjectId(),
        "username": "a/b",
        "competition_id": ROUND,
        "filename": "7/a/b/x.csv",
        "created": datetime(2024, 1, 1),
    }
    raw.insert_one(legacy)
    claims = {
        upload(deployment, user, b"", filename=key): reason
        for (user, key), reason in NOT_THEIRS.items()
    }
    logged: list[str] = []
    run_steps(deployment, files_for(deployment, data), round_data, tmp_path, log=logged.append)
    docs = {str(d["_id"]): d for d in deployment.store.round_submissions(ROUND)}
    for submission_id, reason in claims.items():
        assert reason in docs[submission_id].get("invalid", {}).get("reason", ""), reason
    for submission_id in good.values():
        assert "invalid" not in docs[submission_id]
        assert docs[submission_id]["original"]["pending"] is False
    assert "invalid" not in docs[str(legacy["_id"])]  # left out, never scored from its file
    assert any(str(legacy["_id"]) in line and "malformed" in line for line in logged)
    assert "cannot name a folder" in malformed_reason(legacy)


def test_a_pattern_that_names_no_single_folder_is_refused():
    ids = np.array(["n1"])
    for pattern in (
        "{round}/{username}",
        "{round}//{username}/",
        "{round}{username}/",
        "{username:.3}/",
    ):
        with pytest.raises(ValueError, match="upload key prefix"):
            SubmissionFiles(LocalBuckets(Path("/nonexistent")), "b", ids, key_prefix=pattern)


def test_submit_writes_the_layout_the_pipeline_checks(local_env, monkeypatch, round_data, tmp_path):
    """With ``NUMERAI_UPLOAD_KEY_PREFIX`` set, an upload lies where the pipeline looks for it."""
    monkeypatch.setenv("NUMERAI_UPLOAD_KEY_PREFIX", "uploads/{round}/{username}/")
    deployment = Deployment.from_env()
    data, _ = round_data
    csv = submission_csv(data.tournament_ids, model_probabilities(data.tournament, seed=6))
    submission_id = upload_submission(
        deployment, round=ROUND, user="zoe", data=csv, name="..\\odd\\name.csv"
    )
    doc = deployment.store.get(submission_id)
    assert doc["filename"].startswith("uploads/7/zoe/") and doc["filename"].count("/") == 3
    files = SubmissionFiles(
        deployment.buckets,
        deployment.settings.upload_bucket,
        data.tournament_ids,
        key_prefix=deployment.settings.upload_key_prefix,
    )
    run_steps(deployment, files, round_data, tmp_path)
    doc = deployment.store.get(submission_id)
    assert "invalid" not in doc and doc["original"]["pending"] is False


def test_a_missing_upload_bucket_fails_the_step_rather_than_every_submission(
    deployment, round_data, tmp_path
):
    data, _ = round_data
    honest(deployment, data)
    elsewhere = LocalBuckets(tmp_path / "no-buckets-here")
    with pytest.raises(StorageError, match="does not exist"):
        prepare_batch(
            deployment.store,
            files_for(deployment, data, elsewhere),
            data,
            ROUND,
            [],
            POLICY,
            RoundPredictionCache(tmp_path / "cache", ROUND, data.tournament_ids),
        )
    assert all(d["original"]["pending"] for d in deployment.store.round_submissions(ROUND))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens there


def test_a_transient_storage_failure_is_raised_and_nothing_is_marked(
    deployment, round_data, tmp_path
):
    data, _ = round_data
    honest(deployment, data)
    client = boto3.session.Session(
        aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1"
    ).client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{closed_port()}",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    with pytest.raises(StorageError) as error:
        prepare_batch(
            deployment.store,
            files_for(deployment, data, S3Buckets(client)),
            data,
            ROUND,
            [],
            POLICY,
            RoundPredictionCache(tmp_path / "cache", ROUND, data.tournament_ids),
        )
    assert error.value.transient
    docs = deployment.store.round_submissions(ROUND)
    assert all(d["original"]["pending"] and "invalid" not in d for d in docs)


class FaultyBuckets(LocalBuckets):
    """Local buckets whose read of one key fails with an error nobody planned for."""

    def __init__(self, root: Path, faulty_key: str) -> None:
        super().__init__(root)
        self.faulty_key = faulty_key

    def read_bytes(self, bucket: str, key: str, *, max_bytes: int | None = None) -> bytes:
        if key == self.faulty_key:
            raise RuntimeError("a fault in reading this one file")
        return super().read_bytes(bucket, key, max_bytes=max_bytes)


def test_an_unexpected_failure_leaves_only_that_submission_pending(
    deployment, round_data, tmp_path
):
    data, _ = round_data
    good = honest(deployment, data, ("alice", "bob", "carol", "dave"))
    faulty_key = deployment.store.get(good["bob"])["filename"]
    buckets = FaultyBuckets(deployment.settings.local_buckets_dir, faulty_key)
    logged: list[str] = []
    _, summary = run_steps(
        deployment, files_for(deployment, data, buckets), round_data, tmp_path, log=logged.append
    )
    docs = {str(d["_id"]): d for d in deployment.store.round_submissions(ROUND)}
    assert docs[good["bob"]]["original"] == {"pending": True, "value": None}
    assert "invalid" not in docs[good["bob"]]
    assert any("RuntimeError: a fault in reading this one file" in line for line in logged)
    assert {row["id"]: "pending" in row for row in summary}[good["bob"]]
    for user in ("alice", "carol", "dave"):
        assert docs[good[user]]["original"]["pending"] is False


HIDDEN = "\u061c\u202e\U000e0041\u00ad\ufff9\u2028"  # format characters and a separator
SHOWN = "\\u061c\\u202e\\U000e0041\\xad\\ufff9\\u2028"


class HiddenFaultBuckets(FaultyBuckets):
    def read_bytes(self, bucket: str, key: str, *, max_bytes: int | None = None) -> bytes:
        if key == self.faulty_key:
            raise RuntimeError(f"a fault quoting {HIDDEN}\nforged log line")
        return super().read_bytes(bucket, key, max_bytes=max_bytes)


def test_what_the_steps_store_and_log_carries_no_hidden_character(deployment, round_data, tmp_path):
    """A reason quoting the file's bytes (here through the CSV parser's own error) is stored
    with escapes, and so is a log line quoting an unexpected error."""
    data, _ = round_data
    good = honest(deployment, data, ("alice", "bob"))
    probabilities = model_probabilities(data.tournament, seed=8)
    lines = submission_csv(data.tournament_ids, probabilities).decode().splitlines()
    lines[1] = f'"{lines[1].split(",")[0]}{HIDDEN},0.5"'  # one quoted field: the parser's error
    hidden = upload(deployment, "mallory", ("\n".join(lines) + "\n").encode())
    faulty_key = deployment.store.get(good["bob"])["filename"]
    buckets = HiddenFaultBuckets(deployment.settings.local_buckets_dir, faulty_key)
    logged: list[str] = []
    run_steps(
        deployment, files_for(deployment, data, buckets), round_data, tmp_path, log=logged.append
    )
    stored = deployment.store.get(hidden)["invalid"]["reason"]
    assert SHOWN in stored and stored.isprintable()
    (line,) = [line for line in logged if good["bob"] in line]
    assert f"a fault quoting {SHOWN}\\nforged log line" in line and line.isprintable()


def test_a_submission_deleted_mid_batch_is_left_out_and_the_rest_written(
    deployment, round_data, tmp_path
):
    data, clusters = round_data
    good = honest(deployment, data)
    files = files_for(deployment, data)
    logged: list[str] = []
    cache = RoundPredictionCache(tmp_path, ROUND, data.tournament_ids)
    batch = prepare_batch(deployment.store, files, data, ROUND, [], POLICY, cache, logged.append)
    for shard in plan_pairs(batch, cache, workers=2, min_pairs=1):
        compute_pairs(batch, cache, shard)
    concordance = score_concordance(batch, clusters, cache)
    originality = score_originality(batch, cache)
    database = deployment.store._database
    database["submissions"].delete_one({"_id": deployment.store.get(good["bob"])["_id"]})
    summary = write_results(
        deployment.store,
        batch,
        concordance,
        originality,
        run_id="r",
        scored_at=datetime(2025, 1, 1),
        log=logged.append,
    )
    assert [row["id"] for row in summary] == [good["alice"], good["carol"]]
    assert any(good["bob"] in line and "deleted" in line for line in logged)
    docs = deployment.store.round_submissions(ROUND)
    assert [d["original"]["pending"] for d in docs] == [False, False]


def test_reading_is_never_given_more_than_the_limit(deployment, round_data, tmp_path):
    """A stored file over the round's limit is refused from its size, unread."""
    data, _ = round_data
    files = files_for(deployment, data)
    path = tmp_path / "huge"
    with path.open("wb") as f:
        f.truncate(files.max_bytes + 1)  # sparse: no disk used
    key = f"{ROUND}/zed/huge.csv"
    deployment.buckets.upload_file(path, deployment.settings.upload_bucket, key)
    submission_id = upload(deployment, "zed", b"", filename=key)
    run_steps(deployment, files, round_data, tmp_path / "cache")
    reason = deployment.store.get(submission_id)["invalid"]["reason"]
    assert reason == (
        f"the file is {files.max_bytes + 1:,} bytes, more than the {files.max_bytes:,} bytes a "
        "submission for this round can take"
    )
    assert os.path.getsize(path) == files.max_bytes + 1


def on_the_limits(rng, base: np.ndarray, count: int) -> np.ndarray:
    """``base`` (below 0.9) with its ``count`` smallest values moved just above its largest,
    shuffled: a valid file whose KS count against ``base`` is exactly ``count``."""
    values = base.copy()
    values[np.argsort(base, kind="stable")[:count]] = 0.9 + 1e-6 * (1 + np.arange(count))
    return rng.permutation(values)


def test_two_phases_decide_as_the_rule_on_pairs_built_on_every_threshold(
    deployment, round_data, tmp_path
):
    """Through the batch's steps (files, the pruned pair store in shards, the ordered pass) a
    round whose pairs sit on the duplicate and similar limits, one count either side, decides
    exactly as the rule applied to the files in memory with every count exact."""
    data, _ = round_data
    rng = np.random.default_rng(11)
    n = len(data.tournament_ids)
    limits = POLICY.ks_limits(n)
    base = np.round(rng.random(n) * 0.9, 6)
    files = {"base": base}
    for count in sorted(
        {
            limits.duplicate_below - 1,
            limits.duplicate_below,
            limits.similar_at_most,
            limits.similar_at_most + 1,
        }
    ):
        files[f"ks-{count}"] = on_the_limits(rng, base, count)
    files["near"] = np.clip(base + rng.normal(0, 0.01, n), 0, 1)  # correlated
    files["other"] = model_probabilities(data.tournament, seed=5)
    files["shuffled-other"] = rng.permutation(files["other"])
    ids = {
        name: upload(deployment, name, submission_csv(data.tournament_ids, p))
        for name, p in files.items()
    }
    run_steps(deployment, files_for(deployment, data), round_data, tmp_path)
    stored = {d["username"]: d["original"] for d in deployment.store.round_submissions(ROUND)}
    expected = judge_in_order(list(files.values()), POLICY)
    for (name, _), judged in zip(files.items(), expected, strict=True):
        assert stored[name]["value"] is judged.result.original, name
        assert stored[name]["reason"] == judged.result.reason, name
        assert stored[name]["pairs"] == judged.result.pairs, name
        ks = {m["username"]: m["ks"] for m in stored[name]["matches"]}
        assert ks == {
            list(files)[k]: float(m.ks)
            for k, m in zip(judged.decision.matched, judged.result.matches, strict=True)
        }, name
    # The built pairs do sit on the limits: each copy against the base, exactly.
    dl, sl = limits.duplicate_below, limits.similar_at_most
    assert stored[f"ks-{dl - 1}"]["reason"] == "duplicate"
    assert stored[f"ks-{dl - 1}"]["matches"][0]["ks"] == (dl - 1) / n
    assert stored[f"ks-{dl}"]["reason"] == "similar"
    assert stored[f"ks-{sl}"]["reason"] == "similar"
    assert stored[f"ks-{sl + 1}"]["value"] is True  # one past the similar limit: original
    assert stored[f"ks-{sl + 1}"]["nearest"]["ks"]["ks"] == (sl + 1) / n
    assert stored["near"]["reason"] == "correlated"
    assert set(ids) == set(files)
