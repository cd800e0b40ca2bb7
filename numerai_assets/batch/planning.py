"""What one sensor tick decides, as a plain function of the store's state (no Dagster).

The sensor reads the state (:class:`TickState`), calls :func:`plan_tick`, then carries the plan
out: marks what it gives up on, claims each run's submissions in the store, and returns the run
requests. Nothing here depends on a clock the uploads share: new work is whatever the store
holds that no run has claimed (see :meth:`SubmissionStore.unclaimed`), so a submission stamped
with a lagging clock is found on the next tick like any other, and an intake request is planned
for exactly once, however many share a timestamp.

Kinds of work, each ending in runs of one round:

- ``new`` / ``requested``: unclaimed uploads and intake requests, in (``created``, ``_id``)
  order, in batches of ``batch_size``; a round's first run also materializes its data when it
  has none.
- ``retry``: submissions whose run was claimed more than ``pending_seconds`` ago and is no longer
  in flight, one run each (so a file that kills its run fails only itself); after
  ``max_attempts`` they are given up as invalid. The attempt is recorded with the claim in the
  store, so the sensor's cursor holds nothing that grows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby

from numerai_assets.store.documents import claim_attempt


@dataclass(frozen=True)
class PlannedRun:
    """One run request: a batch of one round, and the submissions it claims."""

    kind: str  # "new", "requested" or "retry"
    round: int
    submission_ids: list[str]  # (created, _id) order
    run_key: str
    with_data: bool  # also materialize the round's dataset and clusters
    attempt: int = 0  # recovery attempt (0: first planning), recorded with the claim


@dataclass(frozen=True)
class TickState:
    """What the tick reads from the store and the Dagster instance."""

    work: Sequence[Mapping]  # unclaimed, well-formed: new uploads and intake requests
    stuck: Sequence[Mapping]  # claimed, still pending, claimed before the retry deadline
    known_rounds: set[int]  # rounds already added as partitions
    rounds_with_data: set[int]  # rounds materialized or being materialized
    rounds_in_flight: set[int]  # rounds with a scoring run queued or running
    missing_datasets: Mapping[int, str]  # round -> why it cannot be scored
    now: datetime


@dataclass
class TickPlan:
    runs: list[PlannedRun] = field(default_factory=list)
    new_rounds: list[int] = field(default_factory=list)
    invalid: list[tuple[Mapping, str]] = field(default_factory=list)  # (document, reason)


def order_key(doc: Mapping) -> tuple:
    return doc["created"], doc["_id"]


def batch_run_key(kind: str, round: int, submission_ids: Sequence[str], now: datetime) -> str:
    """Unique per planning: the batch and the moment it was planned (claims make a repeated
    tick plan nothing twice; the stamp tells a second request for the same ids apart)."""
    digest = hashlib.sha1(",".join(submission_ids).encode()).hexdigest()[:12]
    stamp = now.strftime("%Y%m%dT%H%M%S.%f")
    return f"{kind}-round-{round}-{submission_ids[0]}-{len(submission_ids)}-{digest}-{stamp}"


def plan_tick(
    state: TickState, *, batch_size: int, max_attempts: int, give_up_reason: str
) -> TickPlan:
    """The runs, new rounds and refusals one tick makes of ``state`` (see the module docstring).

    ``give_up_reason`` is stored on a submission whose ``max_attempts`` recovery runs all failed.
    """
    plan = TickPlan()
    with_data = set(state.rounds_with_data)

    def add(kind: str, round: int, ids: list[str], attempt: int = 0) -> None:
        if round not in state.known_rounds and round not in plan.new_rounds:
            plan.new_rounds.append(round)
        for start in range(0, len(ids), batch_size):
            batch = ids[start : start + batch_size]
            needs_data = round not in with_data
            with_data.add(round)
            key = batch_run_key(kind, round, batch, state.now)
            plan.runs.append(PlannedRun(kind, round, batch, key, needs_data, attempt))

    work = []
    for doc in state.work:
        reason = state.missing_datasets.get(doc["competition_id"])
        if reason is None:
            work.append(doc)
        else:
            plan.invalid.append((doc, reason))
    ordered = sorted(work, key=lambda d: (d["competition_id"], order_key(d)))
    for round, docs in groupby(ordered, key=lambda d: d["competition_id"]):
        docs = list(docs)
        kind = "requested" if any(d.get("rescore_requested") for d in docs) else "new"
        add(kind, round, [str(d["_id"]) for d in docs])

    planned = {doc["_id"] for doc in work}
    for doc in sorted(state.stuck, key=order_key):
        if doc["_id"] in planned or doc["competition_id"] in state.rounds_in_flight:
            continue
        attempt = claim_attempt(doc) + 1
        if attempt > max_attempts:
            plan.invalid.append((doc, give_up_reason))
            continue
        add("retry", doc["competition_id"], [str(doc["_id"])], attempt)
    return plan
