"""The intake endpoint over real HTTP on loopback, against a real embedded store in tmp_path."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from urllib.parse import quote

import dagster as dg
import pytest
import uvicorn
from bson import ObjectId

from numerai_assets.cli import main
from numerai_assets.cli.context import Deployment
from numerai_assets.cli.intake import store_factory
from numerai_assets.intake import MAX_BODY_BYTES, create_app, server_config
from numerai_assets.pipeline.jobs import batch_run_config
from numerai_assets.settings import Settings
from numerai_assets.store import SubmissionStore, open_database
from numerai_assets_tests.intake.command import running_intake
from numerai_assets_tests.pipeline.conftest import evaluate_sensor, seed_round

KEY = "k3y-of-the-intake-Ω-7f3a9c"
WRONG = "not-the-key-5e1d"
TIMEOUT = 5


@pytest.fixture
def store(home) -> SubmissionStore:
    return SubmissionStore(open_database())


@pytest.fixture
def submission(store) -> ObjectId:
    return store.insert_submission(username="ann", round=7, filename="ann.csv")


@contextlib.contextmanager
def serving(app, log_level: str = "warning") -> Iterator[int]:
    """``app`` under uvicorn in a thread on a free loopback port; yields the port."""
    config = server_config(
        app, host="127.0.0.1", port=0, log_level=log_level, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def port(home) -> Iterator[int]:
    with serving(create_app(KEY, store_factory(Settings.from_env()))) as bound:
        yield bound


def request(port, body=None, *, method="POST", path="/", headers=None):
    """(status, decoded JSON answer, headers); ``body``: raw bytes or str, an iterable of chunks,
    or a dict or list to send as JSON."""
    if isinstance(body, dict | list):
        body = json.dumps(body)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        if isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read()), response.headers
    finally:
        conn.close()


def post(port, body):
    status, answer, _ = request(port, body)
    return status, answer


def flagged(store) -> list:
    """The submissions flagged for scoring, in the order they were flagged."""
    docs = [doc for doc in store.all_documents() if doc.get("rescore_requested")]
    return [doc["_id"] for doc in sorted(docs, key=lambda d: d["rescore_requested"])]


def raw_exchange(port, head: bytes, body: bytes = b""):
    """Send ``head`` and ``body`` without finishing the request; the server must answer anyway."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(head + body)
        response = http.client.HTTPResponse(sock, method="POST")
        response.begin()  # a socket timeout here means the server waited for the rest
        return response.status, json.loads(response.read()), response.headers


def ms(when: datetime) -> datetime:
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


# 202


def test_accepted_flags_the_submission_and_a_repeat_moves_the_flag_later(port, store, submission):
    other = store.insert_submission(username="bob", round=7, filename="bob.csv")
    before = ms(datetime.now(timezone.utc))
    assert post(port, {"submission_id": str(submission), "api_key": KEY}) == (
        202,
        {"status": "accepted", "submission_id": str(submission)},
    )
    first = store.get(submission)["rescore_requested"]
    assert before <= first <= datetime.now(timezone.utc)
    assert "rescore_requested" not in store.get(other)
    assert flagged(store) == [submission]

    time.sleep(0.01)  # stored times are whole milliseconds
    status, answer = post(
        port, {"api_key": KEY, "submission_id": str(submission).upper(), "extra": [1, 2]}
    )
    assert (status, answer["submission_id"]) == (202, str(submission))
    assert store.get(submission)["rescore_requested"] > first
    assert flagged(store) == [submission]


def test_a_request_for_an_invalid_submission_is_planned_and_answered(port, store, submission, home):
    """202 means the pipeline will plan it: an invalid submission (its file landed after its
    record) is scored again by the next tick, and the flag does not stay set."""
    store.mark_invalid(
        submission, reason="the file was not found", at=datetime.now(timezone.utc), run_id="r"
    )
    assert post(port, {"submission_id": str(submission), "api_key": KEY})[0] == 202
    assert flagged(store) == [submission]
    with dg.instance_for_test() as instance:
        seed_round(Deployment.from_env(), 7)
        (request,) = evaluate_sensor(instance).run_requests
    assert request.run_config == batch_run_config([str(submission)]).to_config_dict()
    assert flagged(store) == []  # claimed: answered by the run planned for it


def test_a_request_for_a_record_that_cannot_be_scored_is_refused_with_the_reason(
    port, store, submission, home
):
    """Another system's record with no user name: the sensor sets it aside, so a 202 would be a
    promise nobody keeps. 422 says why, and nothing is flagged."""
    store._submissions.update_one({"_id": submission}, {"$unset": {"username": ""}})
    status, answer = post(port, {"submission_id": str(submission), "api_key": KEY})
    assert status == 422
    assert answer["error"].endswith("the submission record has no username")
    assert flagged(store) == []


def test_a_body_of_exactly_the_limit_is_accepted(port, store, submission):
    body = {"submission_id": str(submission), "api_key": KEY, "pad": ""}
    body["pad"] = "x" * (MAX_BODY_BYTES - len(json.dumps(body)))
    assert len(json.dumps(body)) == MAX_BODY_BYTES
    assert post(port, body)[0] == 202
    assert flagged(store) == [submission]


# 401: the key is judged before the id, so a caller without it learns nothing about ids


@pytest.mark.parametrize(
    "key", [WRONG, "", KEY[:-1], KEY + " ", KEY.upper(), " " + KEY, "\ud800", KEY.encode().hex()]
)
def test_a_wrong_key_is_401_whatever_the_id_and_flags_nothing(port, store, submission, key):
    for submission_id in (str(submission), str(ObjectId()), "nope", 3, None):
        body = {"api_key": key, "submission_id": submission_id}
        if submission_id is None:
            del body["submission_id"]
        assert post(port, body) == (401, {"error": "wrong api_key"}), body
    assert flagged(store) == []


# 400


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "the body is not valid JSON"),
        (b"", "the body is not valid JSON"),
        (b"\xff\xfe\xfa", "the body is not valid JSON"),
        (b"[" * 3000, "the body is not valid JSON"),
        ([], "the body must be a JSON object"),
        ("null", "the body must be a JSON object"),
        ('"api_key"', "the body must be a JSON object"),
        ({}, "api_key is missing"),
        ({"submission_id": "0" * 24}, "api_key is missing"),
        ({"api_key": None, "submission_id": "0" * 24}, "api_key must be a string"),
        ({"api_key": [KEY], "submission_id": "0" * 24}, "api_key must be a string"),
        ({"api_key": KEY}, "submission_id is missing"),
        ({"api_key": KEY, "submission_id": 12}, "submission_id must be a string"),
        ({"api_key": KEY, "submission_id": {"$ne": None}}, "submission_id must be a string"),
    ],
)
def test_a_malformed_request_is_400_naming_what_is_wrong(port, store, submission, body, error):
    assert post(port, body) == (400, {"error": error})
    assert flagged(store) == []


@pytest.mark.parametrize(
    "bad_id",
    [
        "",
        "nope",
        "0" * 23,
        "0" * 25,
        "0" * 24 + "\n",
        "g" * 24,
        "00 11 22 33 44 55 66 77 8",
        "x" * 12,
    ],
)
def test_a_malformed_submission_id_is_400(port, store, submission, bad_id):
    assert post(port, {"api_key": KEY, "submission_id": bad_id}) == (
        400,
        {"error": "submission_id must be a 24-hex-digit ObjectId"},
    )
    assert flagged(store) == []


# 404


def test_an_unknown_submission_is_404(port, store, submission):
    unknown = ObjectId()
    assert post(port, {"api_key": KEY, "submission_id": str(unknown)}) == (
        404,
        {"error": f"no submission with id {unknown}"},
    )
    assert flagged(store) == []


# 413


def test_a_body_over_the_limit_is_413_even_with_the_right_key(port, store, submission):
    body = {"submission_id": str(submission), "api_key": KEY, "pad": "x" * MAX_BODY_BYTES}
    status, answer, headers = request(port, body)
    assert (status, answer) == (413, {"error": f"the body is larger than {MAX_BODY_BYTES} bytes"})
    assert headers["connection"] == "close"
    assert flagged(store) == []


def test_a_declared_length_over_the_limit_is_413_before_any_body_is_sent(port):
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n"
    status, answer, _ = raw_exchange(port, head)
    assert (status, answer) == (413, {"error": f"the body is larger than {MAX_BODY_BYTES} bytes"})


def test_a_chunked_body_is_cut_off_at_the_limit_without_waiting_for_the_end(
    port, store, submission
):
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    start = json.dumps({"submission_id": str(submission), "api_key": KEY, "pad": ""})[:-2]
    chunks = [start.encode(), b"x" * 1000, *[b"x" * 1000] * 4]  # no final 0-chunk: never ends
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
    status, answer, _ = raw_exchange(port, head, body)
    assert (status, answer) == (413, {"error": f"the body is larger than {MAX_BODY_BYTES} bytes"})
    assert flagged(store) == []


def test_a_small_chunked_body_is_accepted(port, store, submission):
    payload = json.dumps({"submission_id": str(submission), "api_key": KEY}).encode()
    chunks = iter([payload[:10], payload[10:]])  # http.client sends an iterable chunked
    status, answer, _ = request(port, chunks)
    assert (status, answer["status"]) == (202, "accepted")
    assert flagged(store) == [submission]


# 405, 404 for other paths, 500


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(port, store, submission, method):
    body = json.dumps({"submission_id": str(submission), "api_key": KEY})
    status, answer, headers = request(port, body, method=method)
    assert (status, answer, headers["allow"]) == (405, {"error": "Method Not Allowed"}, "POST")
    assert flagged(store) == []


def test_other_paths_are_404(port, store, submission):
    body = {"submission_id": str(submission), "api_key": KEY}
    assert request(port, body, path="/submit")[:2] == (404, {"error": "Not Found"})
    assert flagged(store) == []


def test_a_failing_store_is_500_without_details(home):
    def broken() -> SubmissionStore:
        raise RuntimeError("the store is down")

    with serving(create_app(KEY, broken)) as port:
        answer = post(port, {"submission_id": str(ObjectId()), "api_key": KEY})
    assert answer == (500, {"error": "the submissions store failed"})


# Logs


def test_neither_the_key_nor_the_body_reaches_the_logs(home, store, submission, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    marker = "body-marker-0c9e"

    def broken() -> SubmissionStore:
        raise RuntimeError("the store is down")

    good = {"submission_id": str(submission), "api_key": KEY, "note": marker}
    with serving(create_app(KEY, store_factory(Settings.from_env())), "debug") as port:
        assert post(port, good)[0] == 202
        assert post(port, {**good, "api_key": WRONG})[0] == 401
        assert post(port, {**good, "submission_id": str(ObjectId())})[0] == 404
        assert post(port, {**good, "submission_id": marker})[0] == 400
        assert post(port, f'{{"api_key": "{KEY}", "{marker}')[0] == 400
        assert post(port, {**good, "pad": "x" * MAX_BODY_BYTES})[0] == 413
        assert request(port, good, path=f"/?api_key={quote(KEY)}")[0] == 202
        assert request(port, good, method="PUT")[0] == 405
    with serving(create_app(KEY, broken), "debug") as port:
        assert post(port, good)[0] == 500
    out, err = capfd.readouterr()
    logs = "\n".join([caplog.text, out, err])
    for line in ['"POST /" 202', '"POST /" 401', '"POST /" 413', '"PUT /" 405', '"POST /" 500']:
        assert line in logs  # the logs were captured, so what is absent from them is absent
    assert f"submission {submission} flagged for scoring" in logs
    assert "the store is down" in logs  # the traceback of the 500 is logged
    for secret in (KEY, WRONG, marker, quote(KEY), KEY.encode().decode("latin-1")):
        assert secret not in logs


# The command


def test_the_command_defaults_to_loopback_port_5151():
    from numerai_assets.cli.main import build_parser

    args = build_parser().parse_args(["intake"])
    assert (args.host, args.port) == ("127.0.0.1", 5151)


@pytest.mark.parametrize("value", [None, "", "  "])
def test_the_command_refuses_to_start_without_api_key(home, monkeypatch, capsys, value):
    def serve(self, *args, **kwargs):
        raise AssertionError("the server must not start")

    monkeypatch.setattr(uvicorn.Server, "run", serve)
    if value is None:
        monkeypatch.delenv("API_KEY", raising=False)
    else:
        monkeypatch.setenv("API_KEY", value)
    assert main(["intake"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "numerai-assets intake: API_KEY must be set (the key callers send as api_key)"
    ]


def test_the_real_command_serves_and_flags(home, store, submission):
    with running_intake({**os.environ, "API_KEY": KEY}) as intake:
        assert post(intake.port, {"submission_id": str(submission), "api_key": KEY}) == (
            202,
            {"status": "accepted", "submission_id": str(submission)},
        )
        assert post(intake.port, {"submission_id": str(submission), "api_key": WRONG})[0] == 401
    out, err = intake.output["out"], intake.output["err"]
    assert flagged(store) == [submission]
    assert f"Uvicorn running on http://127.0.0.1:{intake.port}" in err
    assert '"POST /" 202' in err and '"POST /" 401' in err
    assert str(home / "store") in out
    assert KEY not in out + err and WRONG not in out + err


# GET /submissions/{id}: the decision and its diagnostics, for the tournament's site


def read(port, submission_id, key=KEY, path=None):
    headers = {} if key is None else {"X-API-Key": key.encode()}
    status, answer, _ = request(
        port, method="GET", path=path or f"/submissions/{submission_id}", headers=headers
    )
    return status, answer


def test_get_returns_the_decision_the_decisive_pair_and_the_clusters(port, store, submission):
    ann = store.insert_submission(username="ann-earlier", round=7, filename="a.csv")
    clusters = [
        {
            "cluster": 0,
            "sizes": {"validation": 3, "test": 2, "live": 0},
            "ks": {"validation/test": 0.25, "validation/live": None, "test/live": None},
            "max_ks": 0.25,
        }
    ]
    store.mark_pending(submission, consistency=75.0, validation_logloss=0.6875)
    pair = {"username": "ann-earlier", "submission_id": str(ann), "ks": 0.0025, "correlation": 0.5}
    store.write_scores(
        submission,
        concordance={"value": False, "score": 0.25, "clusters": clusters},
        originality={
            "value": False,
            "reason": "duplicate",
            "matches": [pair],
            "pairs": {"compared": 1, "correlated": 0, "duplicate": 1, "similar": 0},
        },
        scored_at=datetime(2024, 5, 1, tzinfo=timezone.utc),
        run_id="run-7",
        policy="tournament-test",
    )
    status, answer = read(port, submission)
    assert status == 200
    assert answer["originality"] == {
        "value": False,
        "reason": "duplicate",
        "matches": [pair],
        "nearest": {},
        "pairs": {"compared": 1, "correlated": 0, "duplicate": 1, "similar": 0},
    }
    assert answer["concordance"] == {"value": False, "score": 0.25, "clusters": clusters}
    assert (answer["submission_id"], answer["user"], answer["round"]) == (str(submission), "ann", 7)
    assert (answer["consistency"], answer["status"], answer["run_id"]) == (75.0, "scored", "run-7")
    assert answer["scored_at"] == "2024-05-01T00:00:00+00:00"
    assert read(port, ann)[1]["status"] == "pending"


def test_get_judges_the_key_before_the_id(port, store, submission):
    for key in (None, WRONG, "", KEY[:-1]):
        for submission_id in (str(submission), str(ObjectId()), "nope"):
            assert read(port, submission_id, key) == (401, {"error": "wrong api_key"})
    assert read(port, "nope") == (400, {"error": "submission_id must be a 24-hex-digit ObjectId"})
    unknown = ObjectId()
    assert read(port, unknown) == (404, {"error": f"no submission with id {unknown}"})
    status, _, headers = request(port, method="POST", path=f"/submissions/{submission}")
    assert (status, set(headers["allow"].split(", "))) == (405, {"GET", "HEAD"})
    assert flagged(store) == []  # reading flags nothing


def test_get_of_a_document_from_another_system_is_json(port, home):
    odd = ObjectId()
    open_database()["submissions"].insert_one(
        {"_id": odd, "username": ["a"], "consistency": float("nan"), "original": "yes"}
    )
    status, answer = read(port, odd)
    assert (status, answer["consistency"], answer["user"]) == (200, None, "['a']")


def test_a_failing_store_is_500_for_get_too(home):
    def broken() -> SubmissionStore:
        raise RuntimeError("the store is down")

    with serving(create_app(KEY, broken)) as port:
        assert read(port, ObjectId()) == (500, {"error": "the submissions store failed"})
