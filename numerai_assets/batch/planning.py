"""What one sensor tick decides, as a plain function of the store's and the runs' state.

The sensor reads the state (:class:`TickState`), calls :func:`plan_tick`, then carries the plan
out: marks what it gives up on, claims each run's submissions in the store, and returns the run
requests. Nothing here depends on a clock the uploads share: new work is whatever the store
holds that no run has claimed (see :meth:`SubmissionStore.unclaimed`), so a submission stamped
with a lagging clock is found on the next tick like any other, and an intake request is planned
for exactly once, however many share a timestamp.

Kinds of work, each ending in runs of one round:

- ``new`` / ``requested``: unclaimed uploads and intake requests, in (``created``, ``_id``)
  order, in batches of ``batch_size``; a round's first run also materializes its data when it
  has none. A round with a run still queued (planned, alive, its submissions not yet taken up)
  holds its new uploads until that run starts: they could not run before it ends anyway, and
  then join the next batch instead of each tick's arrivals making a run of their own, each
  paying a run's fixed start (a burst of 2,000 through ``dg dev`` went in 7 runs). Intake
  requests are never held, and a claim holds for ``retry_seconds`` at most (a run that never
  starts must not hold its round for ever).
- ``retry``: claimed submissions whose run has ended without deciding them. **Only a run that
  has ended counts as dead**, whatever its age: a queued, starting or running one is waited
  for (:class:`RunOutcome`). What ended it decides what happens next:

  ======================  ===================================================================
  the run                 then
  ======================  ===================================================================
  lost (never started,    one run again for the same submissions, the attempt not counted:
  canceled, or failed     the fault was the deployment's (Dagster's storage, the store, S3,
  outside the scoring     a configuration error, another run holding the round). Planned at
  code)                   once the first time, then after a delay doubling each time.
  missing (the tick that  the same, once the claim is ``retry_seconds`` old.
  claimed died first)
  died (failed in the     a batch: run again once as a batch; if it dies again, each
  scoring code, or its    submission in a run of its own. A run of one submission: its
  process was killed)     attempt counts; after ``max_attempts`` it is given up as invalid.
  succeeded, but left     that submission failed on its own (its file could not be read for a
  it claimed              reason of ours): a run of its own, its attempt counted.
  ======================  ===================================================================

  So a fault of the deployment never costs a participant an attempt, a dead run is followed by
  at most one retry run, and a file that kills its run fails only itself.
"""

from __future__ import annotations

import enum
import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby

from numerai_assets.store.documents import Claim, claim_of, order_of

# Run statuses (Dagster's names) of a run that has not ended: wait for it.
ALIVE_STATUSES = frozenset({"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"})
# Exceptions that say the deployment failed, not the submission: a run failing on one of these
# lost its submissions through no fault of theirs. By class name (what a failed run records).
INFRASTRUCTURE_ERRORS = frozenset(
    {
        # ours: configuration, the round's lease, storage (transient), the store, datasets
        "ConfigurationError",
        "RoundBusy",
        "LeaseLost",
        "StorageError",
        "ObjectNotFound",
        "StoreError",
        "DatasetError",
        # pymongo: the submissions store unreachable or failing over
        "AutoReconnect",
        "ConnectionFailure",
        "ServerSelectionTimeoutError",
        "NetworkTimeout",
        "NotPrimaryError",
        "WaitQueueTimeoutError",
        "ExecutionTimeout",
        "WTimeoutError",
        # botocore: S3 unreachable or refusing
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "NoCredentialsError",
        "ClientError",
        # a file of the deployment's missing: on the local IO manager, a round asset the run
        # loads but that was never written (the run queued to materialize it died first; S3's
        # IO manager says ClientError). A participant's missing file never gets this far: it is
        # refused, or left pending, where it is read.
        "FileNotFoundError",
        # Dagster's own storage (PostgreSQL) and the operating system's connections
        "DagsterPostgresException",
        "OperationalError",
        "InterfaceError",
        "ConnectionError",
        "ConnectionRefusedError",
        "ConnectionResetError",
        "BrokenPipeError",
        "TimeoutError",
    }
)
MAX_RETRY_DELAY = timedelta(hours=1)
# At most one upload of a round asks for its own run this often (plan_upload): a burst's others
# are the sensor's to batch, and each asking upload reads the round's work once.
UPLOAD_TURN = timedelta(seconds=2)


class RunOutcome(enum.Enum):
    """What became of the run a claim names (see the module's table)."""

    ALIVE = "alive"
    SUCCEEDED = "succeeded"
    LOST = "lost"
    DIED = "died"
    MISSING = "missing"


@dataclass(frozen=True)
class RunFacts:
    """What the sensor learned about one run: its outcome and, once ended, when."""

    run_id: str
    outcome: RunOutcome
    ended_at: datetime | None = None
    why: str = ""  # for a dead run: what ended it, shown when a submission is given up


def run_outcome(
    status: str,
    *,
    started: bool,
    failure_reason: str | None = None,
    exceptions: Sequence[str] = (),
    error_source: str | None = None,
) -> RunOutcome:
    """The outcome of a run from what Dagster records of it.

    Parameters
    ----------
    status : the run's status name (``"QUEUED"`` ... ``"SUCCESS"``, ``"FAILURE"``, ``"CANCELED"``).
    started : whether it ever started (Dagster recorded a start time).
    failure_reason : the ``dagster/failure_reason`` tag of a failed run: ``STEP_FAILURE``,
        ``START_TIMEOUT``, ``JOB_INITIALIZATION_FAILURE``, ``RUN_EXCEPTION``...; None when it
        was failed from outside (its process died, it ran too long, its dequeue failed).
    exceptions : for a step failure, the class names of the error and its causes.
    error_source : for a step failure, Dagster's ``USER_CODE_ERROR``, ``FRAMEWORK_ERROR`` or
        ``UNEXPECTED_ERROR`` (the last two: Dagster's own machinery, e.g. its storage, failed);
        for a run failed from outside, ``FRAMEWORK_ERROR`` when Dagster's machinery failed in
        its run worker or the worker exited on its own (None: it was killed by a signal, or
        nothing was said: :func:`numerai_assets.pipeline.runs.run_facts` reads which).
    """
    if status in ALIVE_STATUSES:
        return RunOutcome.ALIVE
    if status == "SUCCESS":
        return RunOutcome.SUCCEEDED
    if status != "FAILURE" or not started:
        return RunOutcome.LOST  # canceled, or never began: nothing of the scoring ran
    if failure_reason == "STEP_FAILURE":
        if error_source not in (None, "USER_CODE_ERROR"):
            return RunOutcome.LOST
        if any(name in INFRASTRUCTURE_ERRORS for name in exceptions):
            return RunOutcome.LOST
        return RunOutcome.DIED
    if failure_reason is None:
        if error_source not in (None, "USER_CODE_ERROR"):
            return RunOutcome.LOST  # Dagster's own machinery failed (its storage went away)
        return RunOutcome.DIED  # its process died (killed, out of memory) or ran too long
    return RunOutcome.LOST  # START_TIMEOUT, JOB_INITIALIZATION_FAILURE, RUN_EXCEPTION


@dataclass(frozen=True)
class PlannedRun:
    """One run request: a batch of one round, and the claim recorded on its submissions."""

    kind: str  # "new", "requested" or "retry"
    round: int
    submission_ids: list[str]  # (created, _id) order
    run_key: str
    with_data: bool  # also materialize the round's dataset and clusters
    attempt: int = 0  # failures in the scoring code on this submission alone
    retries: int = 0  # runs planned again after a lost or dead run

    def claim(self, at: datetime) -> Claim:
        return Claim(self.run_key, None, at, self.attempt, self.retries)


@dataclass(frozen=True)
class TickState:
    """What the tick reads from the store and the Dagster instance."""

    work: Sequence[Mapping]  # unclaimed, well-formed: new uploads and intake requests
    claimed: Sequence[Mapping]  # claimed, well-formed, not yet decided
    runs: Mapping[str, RunFacts]  # what became of each run a claim names, by run key and by id
    known_rounds: set[int]  # rounds already added as partitions
    rounds_with_data: set[int]  # rounds materialized or being materialized
    missing_datasets: Mapping[int, str]  # round -> why it cannot be scored
    now: datetime


@dataclass
class TickPlan:
    runs: list[PlannedRun] = field(default_factory=list)
    new_rounds: list[int] = field(default_factory=list)
    invalid: list[tuple[Mapping, str]] = field(default_factory=list)  # (document, reason)
    waiting: int = 0  # claims of dead runs whose retry is not due yet
    held: int = 0  # new uploads held for the next batch: their round has a run queued


def batch_run_key(kind: str, round: int, submission_ids: Sequence[str], now: datetime) -> str:
    """Unique per planning: the batch and the moment it was planned (claims make a repeated
    tick plan nothing twice; the stamp tells a second request for the same ids apart)."""
    digest = hashlib.sha1(",".join(submission_ids).encode()).hexdigest()[:12]
    stamp = now.strftime("%Y%m%dT%H%M%S.%f")
    return f"{kind}-round-{round}-{submission_ids[0]}-{len(submission_ids)}-{digest}-{stamp}"


def retry_delay(retries: int, retry_seconds: int) -> timedelta:
    """How long after a lost run its claims wait before the next run: none the first time (a
    passing fault is usually over), then ``retry_seconds`` doubling, at most an hour."""
    if retries == 0:
        return timedelta(0)
    return min(timedelta(seconds=retry_seconds) * 2 ** (retries - 1), MAX_RETRY_DELAY)


def claim_facts(claim: Claim, runs: Mapping[str, RunFacts]) -> RunFacts | None:
    """What became of the run(s) ``claim`` names: alive if any is; else the run that took the
    submission up (its id), else the planned one (its key); None when neither exists."""
    found = [runs[name] for name in (claim.run_id, claim.run_key) if name and name in runs]
    alive = [facts for facts in found if facts.outcome is RunOutcome.ALIVE]
    return (alive or found or [None])[0]


def plan_tick(
    state: TickState,
    *,
    batch_size: int,
    max_attempts: int,
    retry_seconds: int,
) -> TickPlan:
    """The runs, new rounds and refusals one tick makes of ``state`` (see the module docstring).

    ``retry_seconds``: how old a claim with no run must be before it is planned again, and the
    first delay between retries of a lost run.
    """
    plan = TickPlan()
    with_data = set(state.rounds_with_data)

    def add(kind: str, round: int, ids: list[str], attempt: int = 0, retries: int = 0) -> None:
        if round not in state.known_rounds and round not in plan.new_rounds:
            plan.new_rounds.append(round)
        for start in range(0, len(ids), batch_size):
            batch = ids[start : start + batch_size]
            needs_data = round not in with_data
            with_data.add(round)
            key = batch_run_key(kind, round, batch, state.now)
            plan.runs.append(PlannedRun(kind, round, batch, key, needs_data, attempt, retries))

    work = []
    for doc in state.work:
        reason = state.missing_datasets.get(doc["competition_id"])
        if reason is None:
            work.append(doc)
        else:
            plan.invalid.append((doc, reason))
    ordered = sorted(work, key=lambda d: (d["competition_id"], order_of(d)))
    queued = rounds_with_a_queued_run(state, timedelta(seconds=retry_seconds))
    for round, docs in groupby(ordered, key=lambda d: d["competition_id"]):
        docs = list(docs)
        kind = "requested" if any(d.get("rescore_requested") for d in docs) else "new"
        if kind == "new" and round in queued:
            plan.held += len(docs)
            continue
        add(kind, round, [str(d["_id"]) for d in docs])

    # Claimed submissions whose run ended without deciding them, grouped by that run: each dead
    # run is followed by at most one retry run (split only when it died as a batch twice).
    planned = {doc["_id"] for doc in work}
    dead: dict[tuple[str, RunOutcome], list[tuple[Mapping, Claim]]] = defaultdict(list)
    for doc in sorted(state.claimed, key=order_of):
        claim = claim_of(doc)
        if doc["_id"] in planned or claim is None:
            continue
        facts = claim_facts(claim, state.runs)
        if facts is None:  # no run carries it: the tick that claimed it died first
            if state.now - claim.at < timedelta(seconds=retry_seconds):
                continue
            facts = RunFacts(claim.run_key or claim.run_id or "?", RunOutcome.MISSING, claim.at)
        if facts.outcome is RunOutcome.ALIVE:
            continue
        if facts.outcome in (RunOutcome.LOST, RunOutcome.MISSING):
            ended = facts.ended_at or claim.at
            if state.now - ended < retry_delay(claim.retries, retry_seconds):
                plan.waiting += 1
                continue
        dead[(facts.run_id, facts.outcome)].append((doc, claim))

    for (run_id, outcome), members in dead.items():
        by_round: dict[int, list[tuple[Mapping, Claim]]] = defaultdict(list)
        for doc, claim in members:
            by_round[doc["competition_id"]].append((doc, claim))
        for round, group in by_round.items():
            solo = outcome is RunOutcome.SUCCEEDED or (
                outcome is RunOutcome.DIED
                and (len(group) == 1 or any(claim.retries for _, claim in group))
            )
            retries = max(claim.retries for _, claim in group) + 1
            if not solo:
                attempt = max(claim.attempt for _, claim in group)
                add("retry", round, [str(doc["_id"]) for doc, _ in group], attempt, retries)
                continue
            for doc, claim in group:
                # The submission's own attempt counts only when its run held it alone (or it
                # was left behind by a run that succeeded with everything else).
                counted = outcome is RunOutcome.SUCCEEDED or len(group) == 1
                attempt = claim.attempt + 1 if counted else claim.attempt
                if attempt >= max_attempts and counted:
                    plan.invalid.append((doc, give_up_reason(attempt, run_id, outcome)))
                    continue
                add("retry", round, [str(doc["_id"])], attempt, retries)
    return plan


def rounds_with_a_queued_run(state: TickState, hold_for: timedelta) -> set[int]:
    """The rounds with a run planned and alive that has not taken up its submissions yet (their
    claims name no run id): a run queued behind the round's limit, or starting. A run that has
    taken up some of its batch has started, though others of its claims may name no run id
    until it ends (a refused file's decision is written last, an unreadable file's never).
    Only claims younger than ``hold_for`` count: a run that never starts (created, never
    submitted) must not hold its round's uploads for ever; after that they get runs of their
    own, as without the hold."""
    claims = [(doc, claim) for doc in state.claimed if (claim := claim_of(doc)) is not None]
    started = {claim.run_key for _, claim in claims if claim.run_id is not None and claim.run_key}
    rounds = set()
    for doc, claim in claims:
        if claim.run_id is not None or claim.run_key in started:
            continue
        if state.now - claim.at >= hold_for:
            continue
        facts = claim_facts(claim, state.runs)
        if facts is not None and facts.outcome is RunOutcome.ALIVE:
            rounds.add(doc["competition_id"])
    return rounds


def give_up_reason(attempts: int, run_id: str, outcome: RunOutcome) -> str:
    """Stored on a submission whose own runs failed ``attempts`` times."""
    what = (
        "its file could not be read for a reason of ours"
        if outcome is RunOutcome.SUCCEEDED
        else "its scoring run failed in the scoring code or was killed"
    )
    return (
        f"could not be scored after {attempts} attempts: {what} (last run {run_id}; see the "
        "Dagster UI); an operator can rescore it"
    )


def plan_upload(
    doc: Mapping, *, round_has_data: bool, other_work_waiting: bool, now: datetime
) -> PlannedRun | None:
    """The run a new upload asks for at once (:mod:`numerai_assets.pipeline.launch`), or None
    to leave it to the sensor's next tick, which plans it as any other work.

    Asking at once saves waiting for the tick (Dagster's sensor daemon looks every 5 s), but a
    run of one submission costs a run's fixed start; so only when it cannot be batched with
    anything: none when other work of the round waits (``other_work_waiting``: an upload no run
    has claimed, or a run queued and not begun; the sensor takes them together, so a burst is
    one batch, not a run per upload), nor when the round has no data yet (``round_has_data``:
    the sensor's first run of a round materializes it). Before asking whether other work
    waits, an upload takes the round's turn (one upload a round every :data:`UPLOAD_TURN`;
    :meth:`~numerai_assets.store.SubmissionStore.take_upload_turn`): in a burst, the others
    do not read the round at all. The run is the one :func:`plan_tick`
    would plan for ``doc`` alone: the same kind, key and claim.
    """
    if not round_has_data or other_work_waiting:
        return None
    round = doc["competition_id"]
    state = TickState(
        work=[doc],
        claimed=[],
        runs={},
        known_rounds={round},
        rounds_with_data={round},
        missing_datasets={},
        now=now,
    )
    (run,) = plan_tick(state, batch_size=1, max_attempts=1, retry_seconds=0).runs
    return run
