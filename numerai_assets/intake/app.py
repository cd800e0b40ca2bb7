"""The intake endpoint: ``POST /`` with ``{"submission_id", "api_key"}`` flags a submission for
(re)scoring, as the original system's endpoint did, so the systems that still call it keep working.
``GET /submissions/{id}`` with the same key in the ``X-API-Key`` header returns the submission's
decision and diagnostics as JSON, so the tournament's site can tell a participant why.

The key is checked before the submission is looked up, so a caller without it cannot learn which
ids exist. Neither the key nor the body is ever logged: the app writes its own access line
(client, method, path without query string, status) instead of uvicorn's, which would show a
query string.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import anyio
from bson import ObjectId
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from numerai_assets.store import SubmissionNotFound, SubmissionStore, malformed_reason
from numerai_assets.views.report import one_line
from numerai_assets.views.round_view import explain

MAX_BODY_BYTES = 4096
API_KEY_HEADER = "x-api-key"  # GET requests carry the key here: never in a logged URL
BODY_TIMEOUT_SECONDS = 10.0
OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")
PATH_SHOWN = 200  # characters of a request's path in the access log

logger = logging.getLogger(__name__)


class _Reject(Exception):
    """An answer other than 202, raised from wherever the request is found wanting."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def create_app(api_key: str, store_factory: Callable[[], SubmissionStore]) -> Starlette:
    """The intake app. ``store_factory`` is called in a worker thread for every request: the
    embedded store needs one client per thread (``open_database`` caches them per thread)."""
    if not api_key:
        raise ValueError("api_key must be a non-empty string")
    expected = api_key.encode("utf-8", "surrogatepass")

    async def intake(request: Request) -> JSONResponse:
        try:
            oid = _authorized_id(await _read_body(request), expected)
            await run_in_threadpool(_flag, store_factory, oid)
        except _Reject as reject:
            # The rest of a refused body is not read: the connection cannot carry another request.
            headers = {"connection": "close"} if reject.status in (408, 413) else None
            return JSONResponse({"error": reject.message}, reject.status, headers=headers)
        return JSONResponse({"status": "accepted", "submission_id": str(oid)}, 202)

    async def read_submission(request: Request) -> JSONResponse:
        """``GET /submissions/{id}`` with the key in the ``X-API-Key`` header: the decision and
        its diagnostics (:func:`numerai_assets.views.round_view.explain`), for the site."""
        try:
            header = request.headers.get(API_KEY_HEADER)
            # Starlette decodes headers as latin-1: back to the bytes sent (a UTF-8 key's).
            _check_key(None if header is None else header.encode("latin-1"), expected)
            oid = _object_id(request.path_params["submission_id"])
            diagnostic = await run_in_threadpool(_read, store_factory, oid)
        except _Reject as reject:
            return JSONResponse({"error": reject.message}, reject.status)
        return JSONResponse(diagnostic)

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        return JSONResponse({"error": error.detail}, error.status_code, headers=error.headers)

    return Starlette(
        routes=[
            Route("/", intake, methods=["POST"]),
            Route("/submissions/{submission_id}", read_submission, methods=["GET"]),
        ],
        middleware=[Middleware(AccessLog)],
        exception_handlers={HTTPException: http_error},
    )


async def _read_body(request: Request) -> bytes:
    """The body, refused past :data:`MAX_BODY_BYTES` (413): by ``Content-Length`` before reading,
    and while reading, so a chunked body (which has none) cannot grow past it either; and refused
    (408) when it is not all there :data:`BODY_TIMEOUT_SECONDS` after the headers."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise _Reject(400, "bad Content-Length")
        if int(declared) > MAX_BODY_BYTES:
            raise _Reject(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    body = bytearray()
    try:
        with anyio.fail_after(BODY_TIMEOUT_SECONDS):
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise _Reject(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    except TimeoutError:
        raise _Reject(408, f"the body was not received within {BODY_TIMEOUT_SECONDS:g} s") from None
    except ClientDisconnect:  # nobody is listening for the answer: no traceback for it
        raise _Reject(400, "the client disconnected before sending the body") from None
    return bytes(body)


def _authorized_id(body: bytes, expected: bytes) -> ObjectId:
    """The submission id of a well-formed request carrying the right key.

    Order matters: the key is judged (400 if absent or not a string, 401 if wrong) before the id
    is even parsed, so nothing about ids is revealed to a caller without the key.
    """
    try:
        payload: Any = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise _Reject(400, "the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise _Reject(400, "the body must be a JSON object")
    _check_key(_field(payload, "api_key").encode("utf-8", "surrogatepass"), expected)
    return _object_id(_field(payload, "submission_id"))


def _check_key(key: bytes | None, expected: bytes) -> None:
    """401 unless ``key`` is the intake's key (compared in constant time)."""
    if key is None or not hmac.compare_digest(key, expected):
        logger.warning("refused a request with a wrong api_key")
        raise _Reject(401, "wrong api_key")


def _object_id(submission_id: str) -> ObjectId:
    if not OBJECT_ID.fullmatch(submission_id):
        raise _Reject(400, "submission_id must be a 24-hex-digit ObjectId")
    return ObjectId(submission_id)


def _field(payload: dict, name: str) -> str:
    if name not in payload:
        raise _Reject(400, f"{name} is missing")
    value = payload[name]
    if not isinstance(value, str):
        raise _Reject(400, f"{name} must be a string")
    return value


def _flag(store_factory: Callable[[], SubmissionStore], oid: ObjectId) -> None:
    """Flag ``oid`` for scoring (blocking: runs in a worker thread).

    Every 202 is kept: a submission whose record the pipeline cannot score as stored (another
    system's, set aside) is refused with the reason (422) instead of being flagged for a run
    that would never be planned. Any other one, invalid or not, is planned by the next tick.
    """
    try:
        store = store_factory()
        problem = malformed_reason(store.get(oid))
        if problem is not None:
            raise _Reject(422, f"submission {oid} cannot be scored as stored: {problem}")
        store.request_scoring(oid, at=datetime.now(timezone.utc))
    except SubmissionNotFound:
        raise _Reject(404, f"no submission with id {oid}") from None
    except _Reject:
        raise
    except Exception:
        logger.exception("could not flag submission %s for scoring", oid)
        raise _Reject(500, "the submissions store failed") from None
    logger.info("submission %s flagged for scoring", oid)


def _read(store_factory: Callable[[], SubmissionStore], oid: ObjectId) -> dict:
    """The diagnostic of ``oid`` (blocking: runs in a worker thread)."""
    try:
        return explain(store_factory().get(oid))
    except SubmissionNotFound:
        raise _Reject(404, f"no submission with id {oid}") from None
    except Exception:
        logger.exception("could not read submission %s", oid)
        raise _Reject(500, "the submissions store failed") from None


class AccessLog:
    """One line per request: client, method, path (never the query string or body), status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the server answers if the app fails before starting a response

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            client = scope.get("client") or ("-", 0)
            # The path is the client's, percent-decoded: a %0A or %E2%80%AE in it must not
            # start a forged log line or reorder this one.
            path = one_line(scope["path"], PATH_SHOWN)
            logger.info('%s "%s %s" %d', client[0], scope["method"], path, status)
