"""An upload asks for its scoring run at once, through the Dagster webserver's GraphQL API.

Why: Dagster 1.13's sensor daemon evaluates sensors once every 5 s (``MIN_INTERVAL_LOOP_TIME``,
not a setting), so an upload left to the ``new_submissions`` sensor waits 2.5 s on average, and
up to 5 s, before anything starts. Asked for at upload, the run is in the queue at once; the
queue (``dequeue_interval_seconds: 1``) and the run's own process start follow as for any run.

The sensor stays the safety net and the one planner of everything else. The upload plans the run
the sensor would plan for it alone (:func:`numerai_assets.batch.planning.plan_upload`, which
also says when to leave it to the sensor: a burst is batched by the sensor, a round without
data is materialized by it), claims it in the store (a compare-and-set: if the sensor claimed
it first, the upload asks for nothing), and launches the run with the planned run key as its
``dagster/run_key`` tag, so recovery finds it exactly as it finds the sensor's runs
(:func:`numerai_assets.pipeline.runs.claimed_runs`). When the webserver cannot be reached, or
Dagster refuses the launch before making a run (:data:`REFUSED`), the claim is released and the
sensor's next tick plans the upload; when the answer is lost after the request was sent, the
claim stays and recovery re-plans it if no run carries its key. An upload the sensor planned
before the upload read it (``submit`` imports Dagster first) is left to it.

Nothing here decides a score, and nothing here can lose a submission: at worst it waits for the
sensor. Off with ``NUMERAI_LAUNCH_ON_UPLOAD=off``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

import requests

from numerai_assets.batch.planning import UPLOAD_TURN, PlannedRun, plan_upload
from numerai_assets.batch.run_shape import (
    PARTITION_TAG,
    ROUND_DATA_ASSETS,
    RUN_KEY_TAG,
    run_shape,
)
from numerai_assets.settings import Settings
from numerai_assets.store import SubmissionStore
from numerai_assets.store.documents import claim_of, status_of
from numerai_assets.store.validation import malformed_reason

LOCATION = "numerai_assets"  # workspace.yaml's code location
REPOSITORY = "__repository__"  # the repository Dagster makes of a module's Definitions
CONNECT_SECONDS = 2.0  # a webserver on the same machine or network answers in milliseconds
ANSWER_SECONDS = 30.0  # launching writes the run to Dagster's storage

ROUND_DATA = """
query RoundData($path: [String!]!, $partition: String!) {
  assetNodeOrError(assetKey: {path: $path}) {
    __typename
    ... on AssetNode { assetMaterializations(partitions: [$partition], limit: 1) { runId } }
  }
}"""
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message }
    ... on RunConflict { message }
    ... on UnauthorizedError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey }
    ... on PresetNotFoundError { message }
    ... on ConflictingExecutionParamsError { message }
    ... on NoModeProvidedError { message }
  }
}"""
# launchRun's answers that say no run was made: refused before the run is created (the job,
# its config, the selection or the caller's rights). A PythonError or RunConflict may come
# after, so those stay ambiguous.
REFUSED = frozenset(
    {
        "RunConfigValidationInvalid",
        "InvalidSubsetError",
        "PipelineNotFoundError",
        "UnauthorizedError",
        "InvalidStepError",
        "InvalidOutputError",
        "PresetNotFoundError",
        "ConflictingExecutionParamsError",
        "NoModeProvidedError",
    }
)


class WebserverUnreachable(Exception):
    """The request was not delivered, or Dagster refused it before making a run: nothing was
    asked of Dagster."""


class WebserverError(Exception):
    """Dagster refused the request, or its answer was lost: a run may or may not exist."""


@dataclass(frozen=True)
class Launch:
    """What became of an upload's request for its run: the run's id, or why none was asked
    for (the sensor's next tick plans the upload then)."""

    run_id: str | None
    why_not: str = ""


class Webserver:
    """The Dagster webserver's GraphQL endpoint at ``url`` (``DAGSTER_WEBSERVER_URL``)."""

    def __init__(self, url: str) -> None:
        self.clock: datetime | None = None  # the webserver's time (HTTP Date) at its last answer
        self.url = url.rstrip("/")
        self.endpoint = self.url + "/graphql"
        self.shown = _without_credentials(self.url)  # for messages

    def graphql(self, query: str, variables: dict) -> dict:
        """The ``data`` of the answer.

        Raises
        ------
        WebserverUnreachable
            No connection could be made (nothing was sent).
        WebserverError
            The request was sent but no usable answer came (a timeout, a dropped connection,
            an HTTP error, GraphQL errors).
        """
        try:
            response = requests.post(
                self.endpoint,
                json={"query": query, "variables": variables},
                timeout=(CONNECT_SECONDS, ANSWER_SECONDS),
            )
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ):
            raise WebserverUnreachable(
                f"DAGSTER_WEBSERVER_URL {self.shown!r} is not the http(s) URL of a webserver"
            ) from None
        except requests.ConnectTimeout as error:
            raise WebserverUnreachable(f"{self.shown}: {type(error).__name__}") from None
        except requests.ConnectionError as error:
            if _never_sent(error):
                raise WebserverUnreachable(
                    f"cannot connect to {self.shown} (DAGSTER_WEBSERVER_URL)"
                ) from None
            raise WebserverError(f"{self.shown}: {type(error).__name__}") from None
        except requests.RequestException as error:
            raise WebserverError(f"{self.shown}: {type(error).__name__}") from None
        self.clock = _http_date(response.headers.get("Date"))
        endpoint = self.shown + "/graphql"
        if response.status_code != 200:
            raise WebserverError(f"{endpoint} answered HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise WebserverError(f"{endpoint} answered with no JSON") from None
        if (
            not isinstance(answer, dict)
            or answer.get("errors")
            or not isinstance(answer.get("data"), dict)
        ):
            errors = answer.get("errors") if isinstance(answer, dict) else answer
            raise WebserverError(f"{endpoint}: {str(errors or answer)[:300]}")
        return answer["data"]

    def round_has_data(self, round: int) -> bool:
        """Whether the round's clusters (the last of its data assets) were ever materialized."""
        data = self.graphql(ROUND_DATA, {"path": [ROUND_DATA_ASSETS[-1]], "partition": str(round)})
        node = data.get("assetNodeOrError")
        if not isinstance(node, Mapping):
            raise WebserverError(f"{self.shown}: no asset node in {str(data)[:300]}")
        materializations = node.get("assetMaterializations")
        return isinstance(materializations, list) and bool(materializations)

    def launch(self, run: PlannedRun, settings: Settings) -> str:
        """Launch ``run`` as the sensor would request it; the run's id."""
        shape = run_shape(run, settings)
        tags = {**shape.tags, PARTITION_TAG: str(run.round), RUN_KEY_TAG: run.run_key}
        params = {
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
                "jobName": shape.job_name,
                "assetSelection": [{"path": [name]} for name in shape.asset_names],
            },
            "runConfigData": shape.run_config,
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }
        answer = self.graphql(LAUNCH, {"params": params}).get("launchRun")
        answer = answer if isinstance(answer, Mapping) else {"__typename": repr(answer)[:100]}
        kind = answer.get("__typename")
        if kind != "LaunchRunSuccess":
            detail = {k: v for k, v in answer.items() if k != "__typename"}
            message = f"launchRun: {kind} {str(detail)[:300]}"
            raise (WebserverUnreachable if kind in REFUSED else WebserverError)(message)
        run_id = status_of(answer, "run").get("runId")
        if not isinstance(run_id, str) or not run_id:
            raise WebserverError(f"launchRun: LaunchRunSuccess without a run id: {answer}"[:400])
        return run_id


def _http_date(text: str | None) -> datetime | None:
    """An HTTP ``Date`` header (RFC 9110, whole seconds) as an aware UTC time, or None."""
    try:
        when = parsedate_to_datetime(text) if text else None
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return when.astimezone(timezone.utc)


def _without_credentials(url: str) -> str:
    """``url`` without a user name or password (a proxy's), for messages."""
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:  # not parseable: show its scheme only
        return url.split("://", 1)[0] + "://..." if "@" in url else url


def _never_sent(error: requests.ConnectionError) -> bool:
    """Whether the connection failed before the request went out (refused, no route, name not
    resolved), as opposed to a connection dropped while waiting for the answer."""
    cause = error.args[0] if error.args else None
    reason = getattr(cause, "reason", cause)
    return type(reason).__name__ in {"NewConnectionError", "NameResolutionError"}


def launch_on_upload(
    settings: Settings,
    store: SubmissionStore,
    submission_id: object,
    *,
    round: int | None = None,
    webserver: Webserver | None = None,
    now: datetime | None = None,
) -> Launch:
    """Ask for the scoring run of the upload ``submission_id`` now (see the module docstring).

    ``round``: the upload's round, when the caller knows it (``submit`` does): the round's turn
    is then taken before the document is read back, so the other uploads of a burst cost one
    small write each (on the embedded store a read by id scans the collection: 16 ms at 1,000
    documents). ``webserver``: where to ask (default: ``DAGSTER_WEBSERVER_URL``'s); anything with
    :class:`Webserver`'s ``round_has_data`` and ``launch`` (the tests' in-process daemon).
    Never raises for Dagster's sake: an unreachable or refusing webserver is a ``why_not``
    (the sensor plans the upload instead). Errors of the store are raised (the upload itself
    was stored before; the sensor finds it).
    """
    if not settings.launch_on_upload:
        return Launch(None, "NUMERAI_LAUNCH_ON_UPLOAD is off")
    now = now or datetime.now(timezone.utc)
    turn_taken = round is not None and store.take_upload_turn(round, now=now, every=UPLOAD_TURN)
    if round is not None and not turn_taken:
        return Launch(None, f"another upload of round {round} asked just now")
    doc = store.get(submission_id)
    if not _new_upload(doc):  # the sensor planned it first (and its run may have decided it)
        return Launch(None, "already planned (the sensor claimed it first)")
    if round is not None and doc["competition_id"] != round:
        return Launch(None, f"the submission is in round {doc['competition_id']}, not {round}")
    round = doc["competition_id"]
    if not turn_taken and not store.take_upload_turn(round, now=now, every=UPLOAD_TURN):
        return Launch(None, f"another upload of round {round} asked just now")
    if store.round_has_waiting_work(round, besides=doc["_id"]):
        return Launch(None, f"round {round} has work waiting; the sensor batches it")
    webserver = webserver or Webserver(settings.webserver_url)
    try:
        has_data = webserver.round_has_data(round)
    except (WebserverUnreachable, WebserverError) as error:
        return Launch(None, str(error))
    # The claim is stamped on the Dagster side's clock (the webserver's Date, beside the
    # sensor), not the uploading machine's: with that clock a minute behind, a tick during the
    # launch request would find the claim "old" with no run yet and plan a second run.
    claimed_at = getattr(webserver, "clock", None) or now
    run = plan_upload(doc, round_has_data=has_data, other_work_waiting=False, now=claimed_at)
    if run is None:
        return Launch(None, f"round {round} has no data yet; left to the sensor")
    claim = run.claim(claimed_at)
    if not store.claim([doc], claim):
        return Launch(None, "already planned (the sensor claimed it first)")
    try:
        return Launch(webserver.launch(run, settings))
    except WebserverUnreachable as error:
        # Nothing was asked, or Dagster refused it before making a run: the sensor's next tick
        # plans it.
        store.release(doc, claim)
        return Launch(None, str(error))
    except WebserverError as error:
        # Perhaps launched: recovery finds the run by its key, or re-plans the claim.
        return Launch(None, f"{error}; the sensor checks for its run")


def _new_upload(doc: Mapping) -> bool:
    """Whether ``doc`` is still what an upload asks a run for: well-formed, pending, not
    invalid, unclaimed, no request on it (anything else is the sensor's to plan)."""
    return (
        malformed_reason(doc) is None
        and "invalid" not in doc
        and status_of(doc, "original").get("pending") is True
        and claim_of(doc) is None
        and doc.get("rescore_requested") is None
    )
