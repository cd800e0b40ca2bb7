"""Which submissions a scoring run decides: its batch, and what coming earlier than recorded
decisions makes it decide again."""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable, Mapping, Sequence

from numerai_assets.scoring.submission_format import counted
from numerai_assets.settings import MAX_BATCH_SIZE
from numerai_assets.store.documents import order_of, status_of
from numerai_assets.store.validation import malformed_reason

# An ObjectId as the store's documents spell it (``str(ObjectId)``): 24 lowercase hex digits.
_SUBMISSION_ID = re.compile(r"[0-9a-f]{24}")
_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = 64


def check_batch_ids(submission_ids: Sequence[object]) -> list[str]:
    """``submission_ids`` as a batch may name them, or :class:`ValueError` saying why not.

    At most :data:`~numerai_assets.settings.MAX_BATCH_SIZE` ids (none means the whole round),
    each the string of an ObjectId (24 lowercase hex digits, as :func:`select_submissions`
    compares them). A batch comes from the sensor or the ``rescore`` command, or from run config
    typed in the Dagster UI: this is checked before anything is read.
    """
    if len(submission_ids) > MAX_BATCH_SIZE:
        raise ValueError(
            f"a batch names at most {MAX_BATCH_SIZE:,} submissions, got {len(submission_ids):,}"
        )
    for position, value in enumerate(submission_ids):
        if not isinstance(value, str) or not _SUBMISSION_ID.fullmatch(value):
            raise ValueError(
                f"submission id {position} of the batch is {_SHOWN.repr(value)}, not an ObjectId "
                "(24 lowercase hex digits)"
            )
    return list(submission_ids)


def select_submissions(
    round_docs: Sequence[Mapping],
    round: int,
    submission_ids: Sequence[str],
    log: Callable[[str], None] = lambda message: None,
) -> list[dict]:
    """The batch's documents in (``created``, ``_id``) order; no ids means the whole round.

    ``round_docs`` is the round as the run read it (one read for the whole run). A requested
    id that is no longer in the round (deleted, or moved since the run was planned) is dropped
    with a log line: the rest of the batch is scored. The batch is extended by
    :func:`with_later_decisions`, so its decisions are those of a clean scoring of the round.
    """
    docs, changed = [], []
    for doc in round_docs:  # changed since the sensor checked it?
        (changed if malformed_reason(doc) else docs).append(doc)
    if changed:
        log(
            f"{counted(len(changed), 'submission')} of round {round} left out: their records "
            f"are malformed now (the sensor sets them aside): "
            + ", ".join(str(d["_id"]) for d in changed[:20])
        )
    if not submission_ids:
        return docs
    wanted = set(dict.fromkeys(str(i) for i in submission_ids))
    batch = [d for d in docs if str(d["_id"]) in wanted]
    gone = sorted(wanted - {str(d["_id"]) for d in batch})
    if gone:
        log(
            f"{counted(len(gone), 'submission')} of this batch no longer in round {round} "
            f"(deleted or moved since the run was planned), left out: {', '.join(gone[:20])}"
        )
    if gone:  # where they stood is unknown now: what came after them may have changed
        log(f"round {round} is scored whole again: submissions of this batch are gone")
        return docs
    extended = with_later_decisions(batch, docs)
    if len(extended) > len(batch):
        log(
            f"{counted(len(extended) - len(batch), 'later submission')} of round {round} "
            "scored again: this batch comes earlier than decisions already recorded, so they "
            "are compared anew, in (created, _id) order"
        )
    return extended


def with_later_decisions(batch: Sequence[Mapping], round_docs: Sequence[Mapping]) -> list[dict]:
    """``batch`` and, if any later submission of the round already has a decision, every
    submission from the batch's earliest on (invalid ones aside), in (``created``, ``_id``)
    order.

    Originality compares each submission with the ones before it, so a submission that
    arrives late (a skewed clock) or is scored late (a retry) changes what the later ones are
    compared against. Scoring the whole suffix again keeps the recorded decisions equal to one
    clean scoring of the round in (``created``, ``_id``) order, whatever the order of arrival.
    """
    if not batch:
        return []
    start = min(order_of(d) for d in batch)
    chosen = {d["_id"] for d in batch}
    later = [
        d
        for d in round_docs
        if d["_id"] not in chosen and order_of(d) > start and d.get("invalid") is None
    ]
    if not any(status_of(d, "original").get("pending") is False for d in later):
        return sorted((dict(d) for d in batch), key=order_of)
    return sorted([*(dict(d) for d in batch), *(dict(d) for d in later)], key=order_of)
