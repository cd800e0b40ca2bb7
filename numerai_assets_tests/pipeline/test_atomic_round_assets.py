"""The round's assets are written whole: a reader sees the old value or the new one, never part
of one; and two rescores of one round at once end with both scored one after the other, or one
stopped by ``RoundBusy``, never with a torn pickle (``EOFError: Ran out of input``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from numerai_assets.cli import main
from numerai_assets.cli.context import Deployment
from numerai_assets.pipeline.resources import build_resources
from numerai_assets_tests.conftest import REPO

from .torn_writes import hooked_pickle

KEY = dg.AssetKey("competition_data")
OLD, NEW = b"old " * 250_000, b"new " * 250_000


def round_assets_io_manager():
    """The IO manager the definitions store the round's data and clusters with."""
    return build_resources()["io_manager"].create_io_manager(dg.build_init_resource_context())


def load(io_manager) -> bytes:
    output = dg.build_output_context(asset_key=KEY)
    return io_manager.load_input(dg.build_input_context(asset_key=KEY, upstream_output=output))


def test_a_reader_during_a_write_sees_the_old_value_or_the_new(local_env):
    io_manager = round_assets_io_manager()
    io_manager.handle_output(dg.build_output_context(asset_key=KEY), OLD)
    half_written, finish = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    output = dg.build_output_context(asset_key=KEY)  # built here: it opens a SQLite instance

    def write_new() -> None:
        try:
            io_manager.handle_output(output, NEW)
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)
            half_written.set()

    def pause() -> None:
        half_written.set()
        assert finish.wait(30)

    with hooked_pickle(mid_write=pause):
        writer = threading.Thread(target=write_new)
        writer.start()
        assert half_written.wait(30)
        try:
            during = load(io_manager)  # half of NEW is on disk now
        finally:
            finish.set()
            writer.join(30)
    assert not errors
    assert during == OLD
    assert load(io_manager) == NEW


def test_a_write_that_dies_half_way_leaves_the_old_value(local_env):
    io_manager = round_assets_io_manager()
    io_manager.handle_output(dg.build_output_context(asset_key=KEY), OLD)

    def die() -> None:
        raise OSError("disk gone half way")

    with hooked_pickle(mid_write=die), pytest.raises(OSError, match="disk gone half way"):
        io_manager.handle_output(dg.build_output_context(asset_key=KEY), NEW)
    assert load(io_manager) == OLD
    assert os.listdir(local_env / "dagster_storage") == ["competition_data"]  # no leftovers


TORN = re.compile(r"EOFError|UnpicklingError|pickle data was truncated|Ran out of input")


@pytest.fixture
def rescores(local_env, tmp_path, monkeypatch, capsys):
    """Round 7 seeded and scored once, a ``DAGSTER_HOME`` (the ``make run`` instance) for
    ``rescore --in-process``, and a function running rescores side by side, each
    ``python -m numerai_assets_tests.pipeline.torn_writes ROLE MARKERS 7``, returning each one's
    outcome: "scored", or "busy" (stopped by ``RoundBusy``). Anything else fails the test."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text((REPO / "deploy/local/dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("NUMERAI_ROUND_PICTURE", "off")
    main(["demo", "seed", "--round", "7", "--submissions", "4", "--rows", "3000"])
    assert main(["rescore", "--round", "7", "--in-process"]) == 0  # the round's data stored
    capsys.readouterr()

    def run(*roles: str) -> list[str]:
        markers = Path(tempfile.mkdtemp(dir=tmp_path))
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "numerai_assets_tests.pipeline.torn_writes"]
                + [role, str(markers), "7"],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for role in roles
        ]
        outcomes = []
        for process in processes:
            out, err = process.communicate(timeout=240)
            torn = sorted(set(TORN.findall(err)))
            assert not torn, f"a run read a torn pickle ({torn}):\n{err[-4000:]}"
            if process.returncode == 0:
                assert "round 7 rescored in run" in out
                outcomes.append("scored")
            else:
                last = err.strip().splitlines()[-1]
                assert "RoundBusy: round 7 is being scored by run" in last, err[-4000:]
                outcomes.append("busy")
        return outcomes

    return run


@pytest.mark.slow
def test_a_scoring_run_reading_the_round_while_a_rescore_rewrites_it(rescores):
    """A rescore that rematerializes the round's data, and a scores-only one (as every run of
    the sensor is) started while that write is half done: the second loads the round's data
    during the write (a scoring run loads its inputs before its first step takes the lease).
    With Dagster's own filesystem IO manager it read a truncated pickle every time."""
    for _ in range(2):
        outcomes = rescores("rewrite", "read")
        assert outcomes[0] == "scored"
        assert outcomes[1] in ("scored", "busy")  # after the rewrite, or stopped by its lease


@pytest.mark.slow
def test_two_rescores_of_a_round_at_once(rescores):
    """The reported case: two ``rescore --in-process`` of a round together. One takes the
    round's lease before it writes the round's data; the other waits for it (the step's
    retries) and rescores after it, or stops with ``RoundBusy``: the round is never written by
    both at once. (When the lease was first taken in the scoring graph, both rewrote the
    round's data together and one loaded the other's write half done: ``EOFError``.)"""
    for _ in range(2):
        assert sorted(rescores("plain", "plain")) in (["scored", "scored"], ["busy", "scored"])
        spans = sorted(written_spans(last=2))
        assert all(
            earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:], strict=False)
        ), spans


def written_spans(last: int) -> list[tuple[float, float]]:
    """For each of the ``last`` runs of round 7 that wrote anything: from its materialization
    of the round's data to that of the scores."""
    written = {dg.AssetKey("competition_data"), dg.AssetKey("submission_scores")}
    instance = dg.DagsterInstance.get()
    try:
        spans = []
        for record in instance.get_run_records(dg.RunsFilter(tags={"round": "7"}), limit=last):
            times = [
                entry.timestamp
                for entry in instance.all_logs(
                    record.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
                )
                if entry.dagster_event.asset_key in written
            ]
            if times:
                spans.append((min(times), max(times)))
        return spans
    finally:
        instance.dispose()


def test_a_rescore_meeting_the_rounds_lease_stops_before_rewriting_its_data(
    rescores, local_env, capsys
):
    """A rescore while another run holds the round stops before rewriting the round's data and
    says why in one line (exit status 2), the step's own ``RoundBusy`` beneath Dagster's retry
    wrapper; the stored data is as it was."""
    stored = local_env / "dagster_storage" / "competition_data" / "7"
    before = (stored.read_bytes(), stored.stat().st_mtime_ns)
    now = datetime.now(timezone.utc)
    # Held by a run the instance does not know: its lease is trusted.
    Deployment.from_env().store.acquire_round(
        7, owner="another-run", until=now + timedelta(minutes=10), now=now
    )
    assert main(["rescore", "--round", "7", "--in-process"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("numerai-assets rescore: the rescore run ")
    assert "failed: step competition_data: " in last
    assert "RoundBusy: round 7 is being scored by run another-run" in last
    assert (stored.read_bytes(), stored.stat().st_mtime_ns) == before
