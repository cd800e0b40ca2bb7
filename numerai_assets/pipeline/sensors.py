"""The ``new_submissions`` sensor: turns the submissions database into scoring runs per round.

Each tick, in this order:

1. **Requests** from the intake (``rescore_requested`` newer than the cursor), ahead of the
   polling order, even for submissions scored before.
2. **New submissions** after the cursor (``created``, then ``_id``). Rounds not seen before are
   added to the ``rounds`` partitions; a round whose dataset does not exist has its submissions
   marked invalid with that reason, and a document that cannot be scored as stored (a missing or
   wrong-typed field) is set aside with its reason.
3. **Recovery**: submissions pending for longer than ``NUMERAI_PENDING_RETRY_SECONDS`` with no
   scoring run of their round in flight are requested again, each attempt with a new run key; after
   ``NUMERAI_MAX_SCORING_ATTEMPTS`` attempts the submission is marked invalid with the reason.

Everything comes back in one ``SensorResult``. Run keys derive from the batch (and the attempt or
request time), so a repeated tick never launches the same batch twice. A round's data assets are
included in its first run when the round has never been materialized; later runs of the round
queue behind it under the per-round limit.
"""

import hashlib
import json
import os
import reprlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import groupby

import dagster as dg

from numerai_assets.files import dataset_key
from numerai_assets.pipeline.jobs import ROUND_ASSETS, batch_run_config, score_round
from numerai_assets.pipeline.partitions import rounds
from numerai_assets.pipeline.resources import FilesResource, StoreResource
from numerai_assets.pipeline.scoring import submission_scores
from numerai_assets.store import SubmissionStore, cursor_of, decode_cursor, encode_cursor

DEFAULT_INTERVAL_SECONDS = 30
_SHOWN = reprlib.Repr()  # a foreign _id in a log line: repr, long ones cut
_SHOWN.maxstring = _SHOWN.maxother = 64
ROUND_DATA_KEYS = [a.key for a in ROUND_ASSETS]
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    try:
        return int(value) if value else default
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {value!r}") from None


def interval_seconds() -> int:
    return _env_int("NUMERAI_SENSOR_INTERVAL_SECONDS", DEFAULT_INTERVAL_SECONDS)


BATCH_SIZE = _env_int("NUMERAI_BATCH_SIZE", 500)
MAX_PER_TICK = _env_int("NUMERAI_MAX_SUBMISSIONS_PER_TICK", 5000)


@dataclass(frozen=True)
class RecoveryPolicy:
    """When a pending submission counts as stuck, and how often it is tried again."""

    pending_seconds: int = 600
    max_attempts: int = 3
    stale_run_seconds: int = 1800  # a queued/started run older than this is presumed dead

    @classmethod
    def from_env(cls) -> "RecoveryPolicy":
        return cls(
            pending_seconds=_env_int("NUMERAI_PENDING_RETRY_SECONDS", cls.pending_seconds),
            max_attempts=_env_int("NUMERAI_MAX_SCORING_ATTEMPTS", cls.max_attempts),
            stale_run_seconds=_env_int("NUMERAI_RUN_STALE_SECONDS", cls.stale_run_seconds),
        )


@dataclass
class SensorCursor:
    """What the sensor has seen: new-submission position, intake requests, recovery attempts."""

    after: str | None = None  # encoded (created, _id) of the last new submission seen
    requests_after: str | None = None  # ISO time of the last intake request taken
    attempts: dict[str, int] = field(default_factory=dict)  # recovery attempts per submission

    @classmethod
    def decode(cls, text: str | None) -> "SensorCursor":
        if not text:
            return cls()
        if not text.startswith("{"):  # the first releases stored the position alone
            return cls(after=text)
        data = json.loads(text)
        return cls(data.get("after"), data.get("requests_after"), dict(data.get("attempts", {})))

    def encode(self) -> str:
        return json.dumps(
            {"after": self.after, "requests_after": self.requests_after, "attempts": self.attempts},
            sort_keys=True,
        )


def batch_run_key(kind: str, round: int, submission_ids: list[str]) -> str:
    digest = hashlib.sha1(",".join(submission_ids).encode()).hexdigest()[:12]
    return f"{kind}-round-{round}-{submission_ids[0]}-{len(submission_ids)}-{digest}"


def _round_has_data(instance: dg.DagsterInstance, round_key: str) -> bool:
    """Materialized, or being materialized by a queued or running run."""
    status = instance.get_status_by_partition(
        ROUND_DATA_KEYS[-1], partition_keys=[round_key], partitions_def=rounds
    )
    return bool(status) and status.get(round_key) in (
        dg.AssetPartitionStatus.MATERIALIZED,
        dg.AssetPartitionStatus.IN_PROGRESS,
    )


def _rounds_in_flight(instance: dg.DagsterInstance, stale_after: timedelta) -> set[str]:
    now = datetime.now(timezone.utc)
    records = instance.get_run_records(
        dg.RunsFilter(job_name=score_round.name, statuses=IN_FLIGHT), limit=1000
    )
    return {
        record.dagster_run.tags.get("dagster/partition", "")
        for record in records
        if now - record.create_timestamp.astimezone(timezone.utc) < stale_after
    }


def _by_round(docs: Iterable[Mapping]) -> list[tuple[int, list[str]]]:
    """Submission ids per round, rounds in order, ids in (created, _id) order."""
    ordered = sorted(docs, key=lambda d: (d["competition_id"], d["created"], d["_id"]))
    return [
        (round, [str(d["_id"]) for d in group])
        for round, group in groupby(ordered, key=lambda d: d["competition_id"])
    ]


class _Planner:
    """Collects a tick's run requests and new partitions."""

    def __init__(self, context: dg.SensorEvaluationContext) -> None:
        self.context = context
        self.known_rounds = set(context.instance.get_dynamic_partitions(rounds.name))
        self.new_rounds: list[str] = []
        self.with_data: set[str] = set()  # rounds whose data is already requested this tick
        self.run_requests: list[dg.RunRequest] = []

    def add(self, kind: str, docs: Iterable[Mapping], *, key_suffix: str = "") -> None:
        for round, ids in _by_round(docs):
            round_key = str(round)
            if round_key not in self.known_rounds and round_key not in self.new_rounds:
                self.new_rounds.append(round_key)
            for start in range(0, len(ids), BATCH_SIZE):
                batch = ids[start : start + BATCH_SIZE]
                needs_data = round_key not in self.with_data and (
                    round_key in self.new_rounds
                    or not _round_has_data(self.context.instance, round_key)
                )
                if needs_data:
                    self.with_data.add(round_key)
                self.run_requests.append(
                    dg.RunRequest(
                        run_key=batch_run_key(kind, round, batch) + key_suffix,
                        partition_key=round_key,
                        run_config=batch_run_config(batch),
                        tags={"round": round_key, "submissions": str(len(batch)), "reason": kind},
                        asset_selection=[
                            *(ROUND_DATA_KEYS if needs_data else []),
                            submission_scores.key,
                        ],
                    )
                )


def _set_aside_unscorable(
    store: SubmissionStore, files: FilesResource, docs: list[dict], known_rounds: set[str]
) -> tuple[list[dict], list[str]]:
    """Drop (and mark) malformed documents, wherever they are in the store, and submissions to
    rounds without a dataset."""
    now = datetime.now(timezone.utc)
    scorable, set_aside = store.set_aside_malformed([*store.mistyped_submissions(), *docs], at=now)
    notes = [f"{_SHOWN.repr(raw_id)}: {reason}" for raw_id, reason in set_aside]
    buckets = files.get_buckets()
    missing: dict[int, str] = {}
    for round in sorted({d["competition_id"] for d in scorable} - {int(r) for r in known_rounds}):
        key = dataset_key(files.dataset_key_template, round)
        if not buckets.exists(files.dataset_bucket, key):
            missing[round] = (
                f"round {round} has no dataset ({buckets.describe(files.dataset_bucket, key)} "
                "does not exist)"
            )
    for doc in scorable:
        if doc["competition_id"] in missing:
            reason = missing[doc["competition_id"]]
            store.mark_invalid(doc["_id"], reason=reason, at=now, run_id=None)
            notes.append(f"{doc['_id']}: {reason}")
    return [d for d in scorable if d["competition_id"] not in missing], notes


@dg.sensor(
    job=score_round,
    minimum_interval_seconds=interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Polls the submissions database and launches round-partitioned scoring runs.",
)
def new_submissions(
    context: dg.SensorEvaluationContext, store: StoreResource, files: FilesResource
) -> dg.SensorResult | dg.SkipReason:
    state = SensorCursor.decode(context.cursor)
    submissions = store.get_store()
    policy = RecoveryPolicy.from_env()
    plan = _Planner(context)
    now = datetime.now(timezone.utc)

    requested = submissions.scoring_requested_after(
        datetime.fromisoformat(state.requests_after) if state.requests_after else None
    )
    new = submissions.submissions_after(decode_cursor(state.after), limit=MAX_PER_TICK)
    seen = {d["_id"] for d in requested} | {d["_id"] for d in new}
    if requested:
        state.requests_after = max(d["rescore_requested"] for d in requested).isoformat()
    if new:
        state.after = encode_cursor(cursor_of(new[-1]))

    scorable, notes = _set_aside_unscorable(
        submissions, files, [*requested, *new], plan.known_rounds
    )
    requested_ids = {d["_id"] for d in requested}
    stamp = f"-at-{state.requests_after}" if requested else ""
    plan.add("requested", [d for d in scorable if d["_id"] in requested_ids], key_suffix=stamp)
    plan.add("new", [d for d in scorable if d["_id"] not in requested_ids])

    # Recovery: stuck submissions of rounds with no run in flight.
    stuck_before = now - timedelta(seconds=policy.pending_seconds)
    busy = _rounds_in_flight(context.instance, timedelta(seconds=policy.stale_run_seconds))
    pending = [d for d in submissions.pending(created_before=stuck_before) if d["_id"] not in seen]
    stuck, set_aside = submissions.set_aside_malformed(pending, at=now)
    notes += [f"{_SHOWN.repr(raw_id)}: {reason}" for raw_id, reason in set_aside]
    state.attempts = {
        k: v for k, v in state.attempts.items() if k in {str(d["_id"]) for d in stuck}
    }
    retry = []
    for doc in stuck:
        if str(doc["competition_id"]) in busy or str(doc["competition_id"]) in plan.with_data:
            continue
        attempts = state.attempts.get(str(doc["_id"]), 0) + 1
        if attempts > policy.max_attempts:
            reason = (
                f"could not be scored after {policy.max_attempts} attempts (the scoring runs "
                "failed; see the Dagster UI); an operator can rescore it"
            )
            submissions.mark_invalid(doc["_id"], reason=reason, at=now, run_id=None)
            notes.append(f"{doc['_id']}: {reason}")
            continue
        state.attempts[str(doc["_id"])] = attempts
        retry.append((attempts, doc))
    for attempts, doc in retry:
        # One run each: a submission that fails its run (a file that kills the process) can
        # then only fail itself, never an honest neighbour.
        plan.add("retry", [doc], key_suffix=f"-attempt-{attempts}")

    for note in notes:
        context.log.warning(f"not scored: {note}")
    if not plan.run_requests:
        if state.encode() != SensorCursor.decode(context.cursor).encode():
            return dg.SensorResult(skip_reason="nothing to score", cursor=state.encode())
        return dg.SkipReason("no new submissions")
    kinds = [r.tags["reason"] for r in plan.run_requests]
    context.log.info(
        f"{len(plan.run_requests)} runs ("
        + ", ".join(f"{kinds.count(k)} {k}" for k in dict.fromkeys(kinds))
        + ")"
        + (f"; new rounds {', '.join(plan.new_rounds)}" if plan.new_rounds else "")
    )
    return dg.SensorResult(
        run_requests=plan.run_requests,
        dynamic_partitions_requests=(
            [rounds.build_add_request(plan.new_rounds)] if plan.new_rounds else []
        ),
        cursor=state.encode(),
    )
