"""`submit` stores documents the sensor then sets aside as malformed: two homes for one rule."""

from __future__ import annotations

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
