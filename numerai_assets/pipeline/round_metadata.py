"""The round as the ``submission_scores`` materialization shows it: thin Dagster wrapping of
:mod:`numerai_assets.views.round_view` (rows and numbers) and
:mod:`numerai_assets.views.pictures`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import dagster as dg

from numerai_assets.settings import Settings
from numerai_assets.views.pictures import markdown_image, round_picture
from numerai_assets.views.round_view import ROUND_COLUMNS, round_numbers, round_table

ROUND_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn(name, type, description=description)
        for name, type, description in ROUND_COLUMNS
    ]
)


def round_metadata(
    docs: list[Mapping], batch_ids: Iterable[str], round: int
) -> dict[str, dg.MetadataValue | int | float]:
    """Metadata of the round's materialization from every submission of the round as stored:
    ``round`` (a table of at most :data:`~numerai_assets.views.round_view.ROUND_TABLE_ROWS`
    submissions, the run's batch marked ``this_run``; ``round_table`` says what was left out),
    ``round_picture`` (markdown image, every submission) and the round's numbers as plain
    numeric entries (``round_`` prefixed: plotted by Dagster across materializations)."""
    rows, left_out = round_table(docs, batch_ids)
    metadata: dict[str, dg.MetadataValue | int | float] = {
        "round": dg.MetadataValue.table([dg.TableRecord(r) for r in rows], schema=ROUND_SCHEMA),
        **{f"round_{name}": value for name, value in round_numbers(docs).items()},
    }
    if left_out:
        metadata["round_table"] = dg.MetadataValue.text(
            f"{len(rows):,} of {len(docs):,} submissions shown: this run's and the newest; "
            f"every one: numerai-assets status --round {round}"
        )
    if Settings.from_env().round_picture:  # NUMERAI_ROUND_PICTURE=off skips its ~0.8 s
        image = markdown_image(round_picture(docs, round), f"round {round}")
        metadata["round_picture"] = dg.MetadataValue.md(image)
    return metadata
