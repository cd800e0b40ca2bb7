"""One writer per round: every step of a scoring run holds the round's lease while it works.

The lease lives on the round's competition document (:class:`~numerai_assets.store.lease.
LeaseMixin`), so every entry point meets it: queued runs, an in-process rescore, a manual
materialization. A step takes it (or renews it, when its run already holds it) for
``NUMERAI_ROUND_LEASE_SECONDS`` (60) and a heartbeat thread renews it every sixth of that while
the step runs, so:

- a second run of the round meets :class:`~numerai_assets.store.RoundBusy` naming the holder;
- a holder whose run has ended (failed, canceled) is taken over at once, and one whose process
  died without a word (the daemon killed with it) stops renewing and loses the round a lease's
  length later; the sensor then reports that run failed (:func:`orphaned`), so recovery plans
  its submissions again; so does a started run that died before its first step took the lease
  and has logged nothing for a lease's length;
- a step that finds its lease gone (another run took it) raises :class:`LeaseLost` at its next
  check and writes nothing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone

import dagster as dg

from numerai_assets.pipeline.resources import StoreResource
from numerai_assets.pipeline.runs import ALIVE
from numerai_assets.settings import Settings

# A live run keeps its lease through a store outage of up to five heartbeats (5/6 of a lease).
HEARTBEATS_PER_LEASE = 6


class LeaseLost(RuntimeError):
    """Another run took the round's lease: this run must not write its results."""


class HeldRound:
    """The lease a step holds; :meth:`check` before anything that writes."""

    def __init__(self, round: int, run_id: str) -> None:
        self.round = round
        self.run_id = run_id
        self.lost = threading.Event()

    def check(self) -> None:
        if self.lost.is_set():
            raise LeaseLost(
                f"round {self.round}'s lease was taken by another run; run {self.run_id} "
                "writes nothing"
            )


def _until(lease: timedelta) -> datetime:
    return datetime.now(timezone.utc) + lease


@contextlib.contextmanager
def holding_round(
    context: dg.OpExecutionContext | dg.AssetExecutionContext, store: StoreResource, round: int
) -> Iterator[HeldRound]:
    """Take (or renew) ``round``'s lease for this run, and keep renewing it until the block ends.

    Raises :class:`~numerai_assets.store.RoundBusy` when a live run holds it (the step's retries
    wait a little; then the run fails with that message and the sensor plans it again later).
    """

    def ended(holder: Mapping) -> bool:
        run = context.instance.get_run_by_id(str(holder["owner"]))
        return run is not None and run.status not in ALIVE  # unknown here: trust its lease

    lease = timedelta(seconds=Settings.from_env().round_lease_seconds)
    now = datetime.now(timezone.utc)
    store.get_store().acquire_round(
        round,
        owner=context.run_id,
        until=_until(lease),
        now=now,
        owner_alive=lambda holder: not ended(holder),
    )
    held = HeldRound(round, context.run_id)
    stop = threading.Event()

    def beat() -> None:
        submissions = store.get_store()  # this thread's own client (the embedded store's rule)
        while not stop.wait(lease.total_seconds() / HEARTBEATS_PER_LEASE):
            try:
                if not submissions.renew_round(round, owner=context.run_id, until=_until(lease)):
                    held.lost.set()
                    return
            except Exception:  # noqa: BLE001 - the store is down: try again at the next beat
                continue

    thread = threading.Thread(target=beat, name=f"lease-round-{round}", daemon=True)
    thread.start()
    try:
        yield held
        held.check()
    finally:
        stop.set()
        thread.join(timeout=5)


def orphaned(
    lease: Mapping | None,
    run_id: str,
    now: datetime,
    *,
    last_event: datetime | None = None,
    lease_length: timedelta | None = None,
) -> str | None:
    """Why a started run is dead though Dagster still shows it started, or None.

    - The round's lease names it and has expired: its steps stopped renewing it (its process
      is gone).
    - The lease does not name it, and it has logged nothing (``last_event``) for longer than a
      lease (``lease_length``): a live run holds the lease whenever it works on the round
      (from its first step until its last write) and logs every step it starts, so this is a
      run whose process died before its first step took the lease.
    """
    holder = (lease or {}).get("owner")
    until = (lease or {}).get("until")
    if holder == run_id and isinstance(until, datetime):
        until = until if until.tzinfo is not None else until.replace(tzinfo=timezone.utc)
        if until < now:
            return f"its steps stopped renewing its round's lease at {until:%H:%M:%S} UTC"
        return None
    if last_event is None or lease_length is None or holder == run_id:
        return None
    if now - last_event > lease_length:
        return (
            f"it holds no lease on its round and has logged nothing since "
            f"{last_event:%H:%M:%S} UTC (more than a lease, {lease_length.total_seconds():.0f} s)"
        )
    return None
