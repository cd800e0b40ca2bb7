"""The ``numerai-assets`` commands as a user runs them: files made by hand, exit codes, output."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from numerai_assets.cli import main
from numerai_assets.datasets.synthetic import make_round, model_probabilities, write_round_zip
from numerai_assets.scoring.policy import ScoringPolicy


@pytest.fixture(scope="module")
def round_zip(tmp_path_factory):
    training, tournament = make_round(
        training_rows=3000, validation_rows=2000, test_rows=2000, live_rows=1000, seed=4
    )
    path = write_round_zip(training, tournament, tmp_path_factory.mktemp("r") / "round.zip")
    return path, tournament


def write(path, ids, p):
    pd.DataFrame({"id": ids, "probability": p}).to_csv(path, index=False)
    return str(path)


def score(capsys, *args):
    code = main(["score", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_shuffled_copy_of_itself_is_a_duplicate(tmp_path, round_zip, capsys):
    path, t = round_zip
    p = model_probabilities(t, seed=1)
    shuffled = np.random.default_rng(0).permutation(p)
    mine = write(tmp_path / "mine.csv", t["id"], p)
    copy = write(tmp_path / "copy.csv", t["id"], shuffled)
    code, out, _ = score(
        capsys, "--dataset", path, "--submission", mine, "--against", copy, "--json"
    )
    assert code == 0
    result = json.loads(out)
    assert result["originality"]["original"] is False
    assert result["originality"]["reason"] == "duplicate"
    # Both files hold the same values (written with 6 decimals), so KS is 0; their correlation
    # is that of a series with its own permutation, computed here by numpy.
    expected_r = np.corrcoef(p, shuffled)[0, 1]
    assert abs(expected_r) < 0.1
    assert result["originality"]["matches"] == [
        {"file": copy, "correlation": pytest.approx(expected_r, abs=1e-12), "ks": 0.0}
    ]
    assert set(result) == {
        "policy",
        "concordance",
        "originality",
        "consistency",
        "validation_logloss",
    }
    assert result["policy"] == ScoringPolicy().version
    assert len(result["concordance"]["clusters"]) == 5
    assert result["concordance"]["concordant"] == (result["concordance"]["score"] < 0.12)
    assert 0 <= result["consistency"] <= 100


def test_a_constant_file_is_refused_with_exit_status_2(tmp_path, round_zip, capsys):
    path, t = round_zip
    constant = write(tmp_path / "a.csv", t["id"], np.full(len(t), 0.5))
    code, out, err = score(capsys, "--dataset", path, "--submission", constant)
    assert code == 2 and out == ""
    assert err.strip() == (
        f"numerai-assets score: {constant}: every probability is 0.5: "
        "a constant file carries no prediction"
    )


def test_identical_constant_files_are_duplicates_when_the_policy_allows_them(
    tmp_path, round_zip, capsys, monkeypatch
):
    monkeypatch.setenv("NUMERAI_SCORING_POLICY", '{"refuse_constant": false}')
    path, t = round_zip
    first = write(tmp_path / "a.csv", t["id"], np.full(len(t), 0.5))
    second = write(tmp_path / "b.csv", t["id"], np.full(len(t), 0.5))
    code, out, _ = score(capsys, "--dataset", path, "--submission", second, "--against", first)
    assert code == 0
    assert "NOT original (duplicate" in out
    assert "concordance  0.0000  concordant" in out
    assert "consistency  0.0%" in out  # every era's logloss is exactly ln 2: no era beats it
    assert f"policy       {ScoringPolicy(refuse_constant=False).version}" in out


def test_against_files_are_judged_by_the_comparison_rule(tmp_path, round_zip, capsys):
    path, t = round_zip
    p = model_probabilities(t, seed=1)
    rng = np.random.default_rng(3)
    first = write(tmp_path / "first.csv", t["id"], p)
    # A shuffled copy of the first file: not original itself, so nothing is compared with it.
    copy = write(tmp_path / "copy.csv", t["id"], rng.permutation(p))
    constant = write(tmp_path / "constant.csv", t["id"], np.full(len(t), 0.25))
    mine = write(tmp_path / "mine.csv", t["id"], rng.permutation(p))
    code, out, _ = score(
        capsys,
        *("--dataset", path, "--submission", mine, "--json"),
        *("--against", first, "--against", copy, "--against", constant),
    )
    assert code == 0
    result = json.loads(out)["originality"]
    assert (result["reason"], result["compared"]) == ("duplicate", 1)
    assert [m["file"] for m in result["matches"]] == [first]
    assert result["not_compared"] == [
        {"file": copy, "why": "not original"},
        {
            "file": constant,
            "why": "every probability is 0.25: a constant file carries no prediction",
        },
    ]


def test_an_honest_file_alone_is_original(tmp_path, round_zip, capsys):
    path, t = round_zip
    mine = write(tmp_path / "mine.csv", t["id"], model_probabilities(t, seed=2))
    code, out, _ = score(capsys, "--dataset", path, "--submission", mine, "--json")
    assert code == 0 and json.loads(out)["originality"] == {
        "original": True,
        "reason": None,
        "compared": 0,
        "matches": [],
        "not_compared": [],
    }


def test_a_missing_id_is_named_with_exit_status_2(tmp_path, round_zip, capsys):
    path, t = round_zip
    mine = write(tmp_path / "mine.csv", t["id"][1:], model_probabilities(t, seed=1)[1:])
    code, out, err = score(capsys, "--dataset", path, "--submission", mine)
    assert code == 2 and out == ""
    assert err.strip() == (
        f"numerai-assets score: {mine}: 1 id of this round is missing (e.g. '{t['id'][0]}')"
    )


def test_a_bad_dataset_is_one_line_with_exit_status_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = score(capsys, "--dataset", tmp_path / "empty", "--submission", tmp_path / "x")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "numerai_training_data.csv (or .csv.bz2, .csv.gz, .parquet) not found" in err


def test_the_installed_command_on_the_real_sample(sample_round_dir, sample_data):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "numerai_assets.cli.main",
            "score",
            "--dataset",
            str(sample_round_dir),
            "--submission",
            str(sample_data / "sample_result.csv.bz2"),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout)["originality"]["original"] is True


def test_demo_seed_then_status_shows_every_submission_pending(home, capsys):
    assert main(["demo", "seed", "--round", "4", "--submissions", "9", "--rows", "500"]) == 0
    seeded = capsys.readouterr().out
    assert "round 4: dataset at" in seeded and str(home) in seeded
    assert (home / "s3" / "numerai-datasets" / "4" / "numerai_datasets.zip").exists()
    assert main(["status", "--json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert len(docs) == 9 and {d["competition_id"] for d in docs} == {4}
    assert all(d["concordant"] == {"pending": True, "value": None} for d in docs)
    assert all(isinstance(d["_id"], str) and d["created"].endswith("+00:00") for d in docs)
    assert main(["status", "--round", "4"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 10 and all("pending" in row for row in table[1:])
    assert main(["demo", "seed", "--if-empty"]) == 0
    assert "not seeding" in capsys.readouterr().out


def test_submit_stores_the_file_unjudged(home, tmp_path, capsys):
    upload = tmp_path / "garbage.csv"
    upload.write_text("not,a,submission\n")
    assert main(["submit", "--round", "2", "--user", "zoe", str(upload)]) == 0
    assert "pending" in capsys.readouterr().out
    main(["status", "--json"])
    (doc,) = json.loads(capsys.readouterr().out)
    assert doc["username"] == "zoe" and doc["filename"].endswith("garbage.csv")
    assert (home / "s3" / "numerai-submissions" / doc["filename"]).read_text() == upload.read_text()
    assert main(["submit", "--round", "2", "--user", "zoe", str(tmp_path / "nope.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_rescore_of_an_empty_round_or_without_a_webserver(home, capsys):
    assert main(["rescore", "--round", "3"]) == 2
    assert "round 3 has no submissions" in capsys.readouterr().err
    main(["demo", "seed", "--round", "3", "--submissions", "2", "--rows", "200"])
    capsys.readouterr()
    assert main(["rescore", "--round", "3", "--dagster-url", "http://127.0.0.1:9"]) == 2
    assert "cannot reach the Dagster webserver at http://127.0.0.1:9" in capsys.readouterr().err


def test_rescore_in_process_scores_the_round(home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    main(["demo", "seed", "--round", "6", "--submissions", "8", "--rows", "2000"])
    assert main(["rescore", "--round", "6", "--in-process"]) == 0
    assert "round 6 rescored in run" in capsys.readouterr().out
    main(["status", "--json"])
    docs = {d["username"]: d for d in json.loads(capsys.readouterr().out)}
    assert all(not d["original"]["pending"] for d in docs.values())
    assert docs["carol"]["original"]["reason"] == "duplicate"
    version = ScoringPolicy().version
    assert docs["frank"]["invalid"]["reason"] == (
        "every probability is 0.5: a constant file carries no prediction"
    )
    assert docs["frank"]["invalid"]["policy"] == docs["erin"]["invalid"]["policy"] == version
    scored = [d for d in docs.values() if "invalid" not in d]
    assert len(scored) == 5
    assert all(d["original"]["policy"] == d["concordant"]["policy"] == version for d in scored)


def test_alternatives_are_shown_on_request_and_decide_nothing(tmp_path, round_zip, capsys):
    path, t = round_zip
    p = model_probabilities(t, seed=1)
    first = write(tmp_path / "first.csv", t["id"], p)
    mine = write(tmp_path / "mine.csv", t["id"], np.random.default_rng(1).permutation(p))
    args = ("--dataset", path, "--submission", mine, "--against", first, "--json")
    code, out, _ = score(capsys, *args, "--alternatives")
    assert code == 0
    result = json.loads(out)
    # A reordered copy: KS 0 under both KS rules, the smallest AD statistic there is.
    assert result["alternatives"] == {
        "policy": "duplicate",
        "size-aware": "duplicate",
        "anderson-darling": "similar",
    }
    assert result["originality"]["reason"] == "duplicate"
    code, out, _ = score(capsys, *args)
    assert "alternatives" not in json.loads(out)
