"""`submit` stores documents the sensor then sets aside as malformed: two homes for one rule."""

from __future__ import annotations

import json

import pytest

from numerai_assets.cli.main import main


@pytest.mark.parametrize(
    ("round", "user"),
    [("-1", "alice"), ("7", "u" * 150), ("99999999999999999999", "alice")],
    ids=["negative round", "user name over 100 characters", "round over 8 bytes"],
)
def test_submit_refuses_what_the_pipeline_would_set_aside(local_env, tmp_path, capsys, round, user):
    """Expected: exit 2 with one line, nothing stored (today: stored and later set aside as
    malformed by the sensor, or a traceback from BSON's OverflowError with the file left
    in the bucket)."""
    path = tmp_path / "mine.csv"
    path.write_bytes(b"id,probability\nn1,0.5\n")
    assert main(["submit", "--round", round, "--user", user, str(path)]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "user",
    ["a/b", "a/", "/a", "a//b", ".", "..", "a\\b", "..\\.."],
)
def test_submit_refuses_a_user_name_that_is_not_one_folder(local_env, tmp_path, capsys, user):
    """A user name fills one folder of the upload's key (``{round}/{username}/``): with a '/' or
    a '\\', or as '.' or '..', user ``a/b``'s folder would lie inside user ``a``'s (or resolve
    elsewhere). Refused before anything is stored, by the rule the sensor applies."""
    path = tmp_path / "mine.csv"
    path.write_bytes(b"id,probability\nn1,0.5\n")
    assert main(["submit", "--round", "7", "--user", user, str(path)]) == 2
    err = capsys.readouterr().err
    assert "cannot name a folder of the upload bucket" in err and "Traceback" not in err
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    uploads = local_env / "s3" / "numerai-submissions"
    assert not uploads.exists() or not any(uploads.rglob("*"))


def test_submit_keeps_a_percent_in_a_user_name_literal(local_env, tmp_path, capsys):
    """S3 decodes no percent-escape in a key: ``a%2Fb`` is one folder of its own, not ``a/b``."""
    path = tmp_path / "mine.csv"
    path.write_bytes(b"id,probability\nn1,0.5\n")
    assert main(["submit", "--round", "7", "--user", "a%2Fb", str(path)]) == 0
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    folder, name = doc["filename"].rsplit("/", 1)
    assert folder == "7/a%2Fb" and name.endswith("-mine.csv")
    assert (local_env / "s3" / "numerai-submissions" / "7" / "a%2Fb" / name).is_file()
