"""A round as its users see it: every submission with its current decision, the round's numbers,
and one submission's whole diagnostic, read from the stored documents. No Dagster here.

Documents may come from other systems, so every field is read defensively: a missing or
mistyped field shows as nothing, never as an error. Text a participant chose (a user name) or
caused (a reason quoting their file) is put on one bounded line with :func:`report.one_line`.

Decisions are shown as stored. The policy version is read where the scoring code records it
(``policy`` on a decision) and shown when present.
"""

from __future__ import annotations

import math
import numbers
import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from numerai_assets.scoring.comparison import latest_comparable_per_user
from numerai_assets.store.documents import ORIGINALITY_REASONS, member_of
from numerai_assets.store.validation import malformed_reason
from numerai_assets.views.report import DISPLAY_LIMIT, one_line

SCORED, INVALID, PENDING = "scored", "invalid", "pending"
REASON_LIMIT = 240  # characters of a reason shown in a table cell or a line

# The round's table: column name, Dagster table column type, description.
ROUND_COLUMNS = (
    ("submission", "string", "submission id"),
    ("user", "string", "participant"),
    ("created", "string", "upload time, UTC"),
    ("this_run", "bool", "scored (or refused) by the run that recorded this materialization"),
    ("status", "string", "scored, invalid, or pending"),
    ("consistency", "float", "% of validation eras whose logloss beats ln 2"),
    ("concordance", "float", "mean over clusters of the largest KS between splits"),
    ("concordant", "bool", "concordance below the threshold"),
    ("original", "bool", "no earlier submission of another user too close"),
    ("why", "string", "the originality reason, or why the file is invalid"),
    ("against", "string", "the decisive earlier submission(s): user (KS, r)"),
    ("policy", "string", "version of the scoring policy that decided"),
)


def mapping(value: Any) -> Mapping:
    """``value`` if it is a mapping, else an empty one (a field from another system)."""
    return value if isinstance(value, Mapping) else {}


def number(value: Any) -> float | None:
    """``value`` as a finite float, or None for anything else (bools, text, NaN)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def flag(value: Any) -> bool | None:
    """Only a bool is a verdict."""
    return value if isinstance(value, bool) else None


def status_of(doc: Mapping) -> str:
    """``invalid`` (marked so), ``scored`` (both verdicts decided), else ``pending``."""
    if doc.get("invalid"):
        return INVALID
    concordant, original = mapping(doc.get("concordant")), mapping(doc.get("original"))
    if all(
        s.get("pending") is False and isinstance(s.get("value"), bool)
        for s in (concordant, original)
    ):
        return SCORED
    return PENDING


def invalid_reason(doc: Mapping) -> str | None:
    invalid = doc.get("invalid")
    if not invalid:
        return None
    reason = invalid.get("reason") if isinstance(invalid, Mapping) else invalid
    return one_line(reason, REASON_LIMIT)


def policy_of(doc: Mapping) -> str | None:
    """The version of the scoring policy recorded on the decision, if any."""
    for part in (doc.get("original"), doc.get("concordant"), doc.get("invalid"), doc):
        policy = mapping(part).get("policy")
        if policy not in (None, ""):
            return one_line(policy)
    return None


def decisive_pairs(doc: Mapping) -> list[dict]:
    """The earlier submissions that made ``doc`` not original: user, submission id, KS and r."""
    matches = mapping(doc.get("original")).get("matches")
    if not isinstance(matches, list):
        return []
    return [_pair(match) for match in matches if isinstance(match, Mapping)]


def _pair(match: Mapping) -> dict:
    return {
        "username": one_line(match.get("username")),
        "submission_id": one_line(match.get("submission_id")),
        "ks": number(match.get("ks")),
        "correlation": number(match.get("correlation")),
    }


def pair_text(pair: Mapping) -> str:
    """``alice (KS 0.0012, r 0.9712)``; an undefined r (a constant file) shows as ``r -``."""
    r = "-" if pair.get("correlation") is None else f"{pair['correlation']:.4f}"
    ks = "-" if pair.get("ks") is None else f"{pair['ks']:.4f}"
    return f"{pair.get('username', '')} (KS {ks}, r {r})"


def against(doc: Mapping, limit: int = REASON_LIMIT) -> str:
    """Against whom ``doc`` was judged not original, on one bounded line ("" when original)."""
    return one_line("; ".join(pair_text(p) for p in decisive_pairs(doc)), limit)


def why(doc: Mapping) -> str:
    reason = invalid_reason(doc)
    if reason is not None:
        return f"invalid: {reason}"
    return one_line(mapping(doc.get("original")).get("reason"))


def round_rows(docs: Iterable[Mapping], batch_ids: Iterable[str] = ()) -> list[dict]:
    """One row per submission of the round, keyed by :data:`ROUND_COLUMNS`.

    ``batch_ids`` are the submissions of the run being reported (``this_run``). Values are
    strings of at most :data:`~numerai_assets.views.report.DISPLAY_LIMIT` characters (reasons and
    "against" :data:`REASON_LIMIT`), floats, bools or None.
    """
    batch = {str(i) for i in batch_ids}
    rows = []
    for doc in docs:
        concordant, original = mapping(doc.get("concordant")), mapping(doc.get("original"))
        status = status_of(doc)
        scored = status == SCORED
        rows.append(
            {
                "submission": one_line(doc.get("_id")),
                "user": one_line(doc.get("username")),
                "created": _time(doc.get("created")),
                "this_run": str(doc.get("_id")) in batch,
                "status": status,
                "consistency": number(doc.get("consistency")),
                "concordance": number(concordant.get("score")) if scored else None,
                "concordant": flag(concordant.get("value")) if scored else None,
                "original": flag(original.get("value")) if scored else None,
                "why": why(doc),
                "against": against(doc),
                "policy": policy_of(doc) or "",
            }
        )
    return rows


# The round's table is kept in Dagster's event log with every run and loaded whole by the UI:
# uncapped, a round of 5,000 added about 1.5 MB to each run's materialization.
ROUND_TABLE_ROWS = 500


def round_table(
    docs: Sequence[Mapping], batch_ids: Iterable[str] = (), limit: int = ROUND_TABLE_ROWS
) -> tuple[list[dict], int]:
    """:func:`round_rows` of at most ``limit`` submissions, and how many were left out.

    The run's batch comes first (its earliest ``limit`` if it is larger), then the newest of the
    others; the rows stay in the order of ``docs`` (the round's order). Every submission is
    listed by ``numerai-assets status --round``.

    Examples
    --------
    >>> docs = [{"_id": k, "username": f"u{k}"} for k in range(6)]
    >>> rows, left_out = round_table(docs, ["1"], limit=3)
    >>> [r["user"] for r in rows], left_out
    (['u1', 'u4', 'u5'], 3)
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    batch = {str(i) for i in batch_ids}
    ours = [k for k, doc in enumerate(docs) if str(doc.get("_id")) in batch][:limit]
    taken = set(ours)
    others = [k for k in range(len(docs) - 1, -1, -1) if k not in taken]
    chosen = sorted([*ours, *others[: limit - len(ours)]])
    return round_rows([docs[k] for k in chosen], batch), len(docs) - len(chosen)


def _time(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat(timespec="seconds") if isinstance(value, datetime) else str(value)
    return one_line(value)


# Decisions that do not record how many pairs they compared (made before the scoring policy
# recorded it) are counted by applying the comparison rule again, which costs a pass over the
# round per decision: done for at most this many of them (about 0.5 s), else the round's pair
# figures are left out.
RECOUNT_LIMIT = 300


def recorded_pairs(doc: Mapping) -> int | None:
    """How many earlier submissions ``doc``'s originality was decided against, as recorded by
    the scoring (``original.pairs.compared``), or None."""
    recorded = mapping(mapping(doc.get("original")).get("pairs")).get("compared")
    if isinstance(recorded, int) and not isinstance(recorded, bool) and recorded >= 0:
        return recorded
    return None


def compared_pairs(docs: Sequence[Mapping], scored: Sequence[Mapping]) -> int | None:
    """The pairs compared by the ``scored`` submissions of the round ``docs``: as recorded, or
    by the round's comparison rule applied to its current decisions for those that record
    nothing; None when more than :data:`RECOUNT_LIMIT` would need that."""
    recorded = [recorded_pairs(doc) for doc in scored]
    missing = [doc for doc, count in zip(scored, recorded, strict=True) if count is None]
    if len(missing) > RECOUNT_LIMIT:
        return None
    members = [member_of(doc) for doc in docs if malformed_reason(doc) is None]
    return sum(c for c in recorded if c is not None) + sum(
        len(latest_comparable_per_user(members, member_of(doc)))
        for doc in missing
        if malformed_reason(doc) is None
    )


def round_numbers(docs: Iterable[Mapping]) -> dict[str, int | float]:
    """The round's figures, as plain numbers (Dagster plots them across materializations).

    ``submissions``, ``scored``, ``invalid``, ``pending``; ``not_original_<reason>`` for each
    originality reason; ``not_concordant``; ``median_concordance`` (only when some submission
    is scored); ``pairs_compared`` (pairs of a scored submission and an earlier one it was
    compared with), ``pairs_flagged`` (those that decided a "not original") and
    ``share_pairs_flagged`` (their ratio; only when some pair was compared). The pair figures
    are left out when too many decisions do not record their count (:data:`RECOUNT_LIMIT`).
    """
    docs = list(docs)
    statuses = [status_of(doc) for doc in docs]
    scored = [doc for doc, status in zip(docs, statuses, strict=True) if status == SCORED]
    originals = [mapping(doc.get("original")) for doc in scored]
    figures: dict[str, int | float] = {
        "submissions": len(docs),
        "scored": len(scored),
        "invalid": statuses.count(INVALID),
        "pending": statuses.count(PENDING),
    }
    for reason in ORIGINALITY_REASONS:
        figures[f"not_original_{reason}"] = sum(
            o.get("value") is False and o.get("reason") == reason for o in originals
        )
    figures["not_concordant"] = sum(
        mapping(doc.get("concordant")).get("value") is False for doc in scored
    )
    scores = [number(mapping(doc.get("concordant")).get("score")) for doc in scored]
    scores = [s for s in scores if s is not None]
    if scores:
        figures["median_concordance"] = float(statistics.median(scores))
    compared = compared_pairs(docs, scored)
    if compared is None:
        return figures
    flagged = sum(
        len(decisive_pairs(doc))
        for doc in scored
        if flag(mapping(doc.get("original")).get("value")) is False
    )
    figures["pairs_compared"] = compared
    figures["pairs_flagged"] = flagged
    if compared:
        figures["share_pairs_flagged"] = flagged / compared
    return figures


def nearest_of(doc: Mapping) -> tuple[float | None, float | None]:
    """(nearest KS, nearest |r|) of a scored submission: the recorded nearest pairs, else the
    decisive ones (documents scored before the nearest pairs were recorded)."""
    nearest = mapping(mapping(doc.get("original")).get("nearest"))
    ks = number(mapping(nearest.get("ks")).get("ks"))
    r = number(mapping(nearest.get("correlation")).get("correlation"))
    pairs = decisive_pairs(doc)
    if ks is None and pairs:
        ks = min((p["ks"] for p in pairs if p["ks"] is not None), default=None)
    if r is None and pairs:
        r = max(
            (abs(p["correlation"]) for p in pairs if p["correlation"] is not None), default=None
        )
    return ks, None if r is None else abs(r)


def explain(doc: Mapping) -> dict:
    """The whole diagnostic of one submission, JSON-ready (str, float, bool, None, lists, dicts).

    Keys: ``submission_id``, ``user``, ``round``, ``created``, ``status``, ``policy``,
    ``invalid`` (the reason or None), ``consistency`` (%), ``validation_logloss``,
    ``concordance`` (``value``, ``score``, ``clusters``: per cluster its rows per split, the KS
    of each pair of splits and their largest), ``originality`` (``value``, ``reason``,
    ``matches``: the decisive pairs, ``nearest``: the closest pairs by KS and by |r|,
    ``pairs``: the recorded pair counts), ``scored_at``, ``run_id``.
    """
    concordant, original = mapping(doc.get("concordant")), mapping(doc.get("original"))
    scored = status_of(doc) == SCORED
    nearest = mapping(original.get("nearest"))
    return {
        "submission_id": one_line(doc.get("_id")),
        "user": one_line(doc.get("username")),
        "round": doc.get("competition_id") if isinstance(doc.get("competition_id"), int) else None,
        "created": _time(doc.get("created")) or None,
        "status": status_of(doc),
        "policy": policy_of(doc),
        "invalid": invalid_reason(doc),
        "consistency": number(doc.get("consistency")),
        "validation_logloss": number(mapping(doc.get("logloss")).get("validation")),
        "concordance": {
            "value": flag(concordant.get("value")) if scored else None,
            "score": number(concordant.get("score")),
            "clusters": _clusters(concordant.get("clusters")),
        },
        "originality": {
            "value": flag(original.get("value")) if scored else None,
            "reason": one_line(original.get("reason")) or None,
            "matches": decisive_pairs(doc),
            "nearest": {
                by: _pair(mapping(nearest.get(by))) for by in ("ks", "correlation") if by in nearest
            },
            "pairs": {
                one_line(k): v
                for k, v in mapping(original.get("pairs")).items()
                if isinstance(v, int) and not isinstance(v, bool)
            },
        },
        "scored_at": _time(original.get("scored_at") or concordant.get("scored_at")) or None,
        "run_id": one_line(original.get("run_id") or concordant.get("run_id")) or None,
    }


def _clusters(value: Any) -> list[dict]:
    if not isinstance(value, list):
        return []
    clusters = []
    for item in value:
        item = mapping(item)
        sizes, ks = mapping(item.get("sizes")), mapping(item.get("ks"))
        clusters.append(
            {
                "cluster": item.get("cluster") if isinstance(item.get("cluster"), int) else None,
                "sizes": {one_line(k): v for k, v in sizes.items() if isinstance(v, int)},
                "ks": {one_line(k): number(v) for k, v in ks.items()},
                "max_ks": number(item.get("max_ks")),
            }
        )
    return clusters


def text_table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[bool]
) -> list[str]:
    """Aligned plain-text lines: cells on one line cut to the display limit, numbers right."""
    shown = [list(header)] + [[one_line(cell, DISPLAY_LIMIT) for cell in row] for row in rows]
    widths = [max(len(row[c]) for row in shown) for c in range(len(header))]
    return [
        "  ".join(
            cell.rjust(w) if r else cell.ljust(w)
            for cell, w, r in zip(row, widths, right, strict=True)
        ).rstrip()
        for row in shown
    ]


def _f(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _verdict(value: bool | None, yes: str, no: str) -> str:
    return yes if value is True else no if value is False else "not decided"


def explain_lines(diagnostic: Mapping) -> list[str]:
    """:func:`explain`'s diagnostic as lines of text for a terminal."""
    d = diagnostic
    concordance, originality = d["concordance"], d["originality"]
    lines = [
        f"submission {d['submission_id']}  user {d['user']}  round {d['round']}  "
        f"created {d['created'] or '-'}",
        f"status: {d['status']}"
        + (f"  (scored {d['scored_at']}, run {d['run_id']})" if d["scored_at"] else ""),
        f"policy: {d['policy'] or 'not recorded'}",
    ]
    if d["invalid"]:
        lines.append(f"invalid: {d['invalid']}")
    lines.append(
        f"consistency: {_f(d['consistency'], 1)} % of validation eras beat a coin flip"
        f" (validation logloss {_f(d['validation_logloss'])})"
    )
    reason = f" ({originality['reason']})" if originality["reason"] else ""
    lines.append("original: " + _verdict(originality["value"], "yes", "no") + reason)
    if originality["matches"]:
        lines.append("  decided against:")
        lines += [
            "    " + line
            for line in text_table(
                ("user", "submission", "KS", "r"),
                [
                    (p["username"], p["submission_id"], _f(p["ks"]), _f(p["correlation"]))
                    for p in originality["matches"]
                ],
                (False, False, True, True),
            )
        ]
    for by, what in (("ks", "smallest KS"), ("correlation", "largest |r|")):
        pair = originality["nearest"].get(by)
        if pair:
            named = {**pair, "username": f"{pair['username']} {pair['submission_id']}"}
            lines.append(f"  nearest by {what}: {pair_text(named)}")
    if originality["pairs"]:
        lines.append("  pairs: " + ", ".join(f"{k} {v}" for k, v in originality["pairs"].items()))
    lines.append(
        f"concordant: {_verdict(concordance['value'], 'yes', 'no')}"
        f" (score {_f(concordance['score'])}: mean over clusters of the largest KS)"
    )
    clusters = concordance["clusters"]
    if clusters:
        splits = list(dict.fromkeys(s for c in clusters for s in c["sizes"]))
        pairs = list(dict.fromkeys(p for c in clusters for p in c["ks"]))
        rows = [
            [
                c["cluster"],
                *(c["sizes"].get(s, "-") for s in splits),
                *(_f(c["ks"].get(p)) for p in pairs),
                _f(c["max_ks"]),
            ]
            for c in clusters
        ]
        header = ["cluster", *(f"{s} rows" for s in splits), *(f"KS {p}" for p in pairs), "max KS"]
        lines += ["  " + line for line in text_table(header, rows, [True] * len(header))]
    return lines
