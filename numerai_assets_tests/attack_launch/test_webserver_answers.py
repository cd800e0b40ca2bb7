"""launch_on_upload against webservers that answer badly (a scripted HTTP server on localhost).

The module promises: "Never raises for Dagster's sake: an unreachable or refusing webserver is a
``why_not``", and "When the webserver cannot be reached the claim is released".
"""

from __future__ import annotations

import json
import socket
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from numerai_assets.batch.planning import TickState, plan_tick
from numerai_assets.pipeline.launch import Webserver, launch_on_upload
from numerai_assets.settings import Settings
from numerai_assets.store.documents import utc
from numerai_assets_tests.store.helpers import ROUND, add, at

HAS_DATA = {
    "data": {
        "assetNodeOrError": {"__typename": "AssetNode", "assetMaterializations": [{"runId": "x"}]}
    }
}  # noqa: E501


class Scripted:
    """An HTTP server answering each POST with the next (status, body) of ``answers``."""

    def __init__(self, answers: list[tuple[int, bytes | dict]]) -> None:
        self.answers = list(answers)
        self.asked: list[dict] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                scripted.asked.append(json.loads(self.rfile.read(length)))
                status, body = scripted.answers.pop(0)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"NUMERAI_ASSETS_HOME": str(tmp_path)})


def _launch(store, settings, answers):
    server = Scripted(answers)
    try:
        mine = add(store, "mine", 10)
        launch = launch_on_upload(
            settings, store, mine, webserver=Webserver(server.url), now=at(11)
        )
        return mine, launch, server
    finally:
        server.close()


@pytest.mark.parametrize(
    "answer",
    [
        {"data": None},
        {"data": []},
        {"data": {"assetNodeOrError": "AssetNode"}},
    ],
    ids=["data-null", "data-list", "node-text"],
)
def test_a_webserver_that_is_not_dagster_never_makes_the_upload_raise(store, settings, answer):
    """A 200 with JSON of another shape (another GraphQL service at that URL): round_has_data
    calls .get on whatever came, and the AttributeError leaves launch_on_upload (`submit` fails
    with a traceback after the upload was stored; an upload service retrying makes a second
    submission)."""
    mine, launch, _ = _launch(store, settings, [(200, answer)])
    assert launch.run_id is None
    assert store.get(mine).get("queued") is None  # left to the sensor


@pytest.mark.parametrize(
    "answer",
    [
        {"data": {"launchRun": {"__typename": "LaunchRunSuccess", "run": None}}},
        {"data": {"launchRun": {"__typename": "LaunchRunSuccess"}}},
        {"data": {"launchRun": "ok"}},
        {"data": None},
    ],
    ids=["run-null", "no-run", "launch-text", "data-null"],
)
def test_an_odd_launch_answer_never_makes_the_upload_raise(store, settings, answer):
    """The claim stays (a run may exist); recovery re-plans it if none carries its key. But the
    TypeError/AttributeError must not leave launch_on_upload."""
    mine, launch, _ = _launch(store, settings, [(200, HAS_DATA), (200, answer)])
    assert launch.run_id is None
    assert store.get(mine)["queued"]["run_key"]  # kept: recovery finds or re-plans it


@pytest.mark.parametrize(
    "typename",
    [
        "PipelineNotFoundError",
        "RunConfigValidationInvalid",
        "InvalidSubsetError",
        "UnauthorizedError",
        "ConflictingExecutionParamsError",
    ],
)
def test_a_launch_dagster_refused_releases_the_claim(store, settings, typename):
    """Dagster answered that it created no run (a wrong code location name is enough:
    LOCATION is fixed to "numerai_assets"; `dagster dev -m ...` names it otherwise). The claim
    is kept as if the answer were lost, so every upload waits NUMERAI_PENDING_RETRY_SECONDS
    (60 s) for recovery instead of the sensor's next tick (5 s), and is re-planned as a
    "retry"."""
    refused = {"data": {"launchRun": {"__typename": typename, "message": "no"}}}
    mine, launch, _ = _launch(store, settings, [(200, HAS_DATA), (200, refused)])
    assert launch.run_id is None
    assert store.get(mine).get("queued") is None
    assert [d["_id"] for d in store.unclaimed()] == [mine]


@pytest.mark.parametrize(
    "answer",
    [
        (500, b"oops"),
        (200, b"<html>not json</html>"),
        (200, {"errors": [{"message": "boom"}], "data": None}),
        (200, {"data": {"launchRun": {"__typename": "PythonError", "message": "x"}}}),
    ],
    ids=["http-500", "not-json", "graphql-errors", "python-error"],
)
def test_an_ambiguous_launch_answer_keeps_the_claim(store, settings, answer):
    """Not a bug (checked): the request was delivered and may have made a run; the claim stays
    and recovery finds the run by its key or re-plans after NUMERAI_PENDING_RETRY_SECONDS."""
    mine, launch, server = _launch(store, settings, [(200, HAS_DATA), answer])
    assert launch.run_id is None and launch.why_not
    assert store.get(mine)["queued"]["run_key"]
    tags = server.asked[1]["variables"]["params"]["executionMetadata"]["tags"]
    assert {"key": "dagster/run_key", "value": store.get(mine)["queued"]["run_key"]} in tags


def test_a_huge_answer_is_read_whole(store, settings):
    """Not a bug in practice (the webserver is the operator's): 20 MB of JSON is parsed."""
    body = json.dumps({"data": {"x": "y" * 20_000_000}}).encode()
    mine, launch, _ = _launch(store, settings, [(200, body)])
    assert launch.run_id is None
    assert store.get(mine).get("queued") is None


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "url",
    ["not a url", "ftp://x", "http://", "localhost:3000", "http://[::1"],
)
def test_a_malformed_webserver_url_is_named_in_the_reason(store, settings, url):
    """`submit` prints the reason; an operator's mistake is told with the variable's name (the
    settings accept any text for DAGSTER_WEBSERVER_URL)."""
    settings = Settings.from_env(
        {"NUMERAI_ASSETS_HOME": str(settings.home), "DAGSTER_WEBSERVER_URL": url}
    )
    mine = add(store, "mine", 10)
    launch = launch_on_upload(settings, store, mine, now=at(11))
    assert launch.run_id is None
    assert "DAGSTER_WEBSERVER_URL" in launch.why_not, launch.why_not
    assert store.get(mine).get("queued") is None


def test_credentials_in_the_webserver_url_are_not_printed(store, settings):
    """`submit` prints why_not; a URL with a password (behind an authenticating proxy) is
    printed whole."""
    url = f"http://operator:s3cret@127.0.0.1:{_closed_port()}"
    settings = Settings.from_env(
        {"NUMERAI_ASSETS_HOME": str(settings.home), "DAGSTER_WEBSERVER_URL": url}
    )
    mine = add(store, "mine", 10)
    launch = launch_on_upload(settings, store, mine, now=at(11))
    assert launch.run_id is None
    assert "s3cret" not in launch.why_not, launch.why_not


LAUNCHED = {"data": {"launchRun": {"__typename": "LaunchRunSuccess", "run": {"runId": "r-1"}}}}


def test_the_claim_is_stamped_by_the_webservers_clock_not_the_uploading_machines(store, settings):
    """With the uploading machine's clock 90 s behind, a claim stamped by it would look older
    than ``NUMERAI_PENDING_RETRY_SECONDS`` to a tick during the launch request (its run not made
    yet): planned again, a second run. Stamped by the webserver's ``Date`` (beside the sensor),
    it is as young as it is, and the tick waits for it."""
    server = Scripted([(200, HAS_DATA), (200, LAUNCHED)])
    try:
        mine = add(store, "mine", 10)
        behind = datetime.now(timezone.utc) - timedelta(seconds=90)
        webserver = Webserver(server.url)
        launch = launch_on_upload(settings, store, mine, webserver=webserver, now=behind)
    finally:
        server.close()
    assert launch.run_id == "r-1"
    stamped = utc(store.get(mine)["queued"]["at"])
    assert abs(stamped - datetime.now(timezone.utc)) < timedelta(seconds=5)
    tick = TickState(
        work=[],
        claimed=[store.get(mine)],
        runs={},  # the run not made yet: launchRun in flight
        known_rounds={ROUND},
        rounds_with_data={ROUND},
        missing_datasets={},
        now=datetime.now(timezone.utc),
    )
    assert plan_tick(tick, batch_size=10, max_attempts=3, retry_seconds=60).runs == []


def test_an_upload_that_names_its_round_takes_the_turn_before_reading_its_document(store, settings):
    """``submit`` names the round: a burst's second upload stops at the turn; a round that is
    not the document's asks for nothing (and leaves the document unclaimed)."""
    server = Scripted([(200, HAS_DATA), (200, LAUNCHED)])
    try:
        webserver = Webserver(server.url)
        first = add(store, "ann", 10)
        asked = launch_on_upload(settings, store, first, round=ROUND, webserver=webserver)
        second = add(store, "ben", 11)
        later = launch_on_upload(settings, store, second, round=ROUND, webserver=webserver)
        other = add(store, "cat", 12, round=ROUND + 1)
        wrong = launch_on_upload(settings, store, other, round=ROUND + 2, webserver=webserver)
    finally:
        server.close()
    assert asked.run_id == "r-1"
    assert later.why_not == f"another upload of round {ROUND} asked just now"
    assert wrong.why_not == f"the submission is in round {ROUND + 1}, not {ROUND + 2}"
    assert store.get(second).get("queued") is None and store.get(other).get("queued") is None
