"""The scoring run's report: the policy that decided, then one row per submission of the batch.

Shown as the ``scores`` metadata of the ``submission_scores`` materialization in Dagster's UI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from numerai_assets.scoring.policy import ScoringPolicy
from numerai_assets.views.report import markdown_cell


def summary_markdown(summary: Sequence[Mapping], policy: ScoringPolicy) -> str:
    """The run's report: the policy that decided, then a markdown table of the decisions
    (user, concordance, concordant, original, why).

    Every cell of a submission's row is a :func:`markdown_cell`: what a participant chose (the
    user name) or caused (a reason quoting their file) shows as typed, its invisible characters
    as escapes, and cannot add a link, emphasis or a column.
    """
    rules = ", ".join(f"{name}={value}" for name, value in policy.rules().items())
    lines = [
        f"Decided under scoring policy **{policy.version}** ({rules}).",
        "",
        "| user | concordance | concordant | original | why | submission |",
        "| --- | ---: | --- | --- | --- | --- |",
    ]
    for row in summary:
        user, submission = markdown_cell(row["username"]), markdown_cell(row["id"])
        if "invalid" in row or "pending" in row:
            why = (
                "invalid: " + row["invalid"]
                if "invalid" in row
                else "pending: its file could not be read this time; retried on its own"
            )
            lines.append(f"| {user} | | | | {markdown_cell(why, 200)} | {submission} |")
            continue
        lines.append(
            f"| {user} | {row['concordance']:.4f} | "
            f"{'yes' if row['concordant'] else 'no'} | {'yes' if row['original'] else 'no'} | "
            f"{markdown_cell(row['reason'])} | {submission} |"
        )
    return "\n".join(lines)
