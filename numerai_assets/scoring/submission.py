"""Reading a participant's submission file and refusing it with a reason they can act on.

A submission is a CSV ``id,probability`` with exactly one row per tournament id of the round. The
bytes are first turned into checked CSV text (:mod:`.submission_format`: format, size, encoding,
header, fields per line); only then does pyarrow's CSV reader parse them, with a fixed schema.
Everything wrong with the rows is reported at once (missing, unknown and repeated ids with counts
and examples; bad probabilities with line numbers), so a participant fixes it in one go.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from numerai_assets.scoring.reasons import EXAMPLES, SubmissionError, at_lines, counted, examples
from numerai_assets.scoring.submission_format import HEADER, CsvText, csv_text, size_limit

__all__ = ["SubmissionError", "SubmissionReader", "read_submission", "size_limit"]

NON_FINITE_WORDS = {"nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity"}

_PARSE = pcsv.ParseOptions(ignore_empty_lines=False)


def _convert(probability: pa.DataType) -> pcsv.ConvertOptions:
    # No value is ever null: an empty field stays "" and is reported as not a number.
    return pcsv.ConvertOptions(
        column_types={"id": pa.string(), "probability": probability},
        null_values=[],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )


_AS_FLOATS, _AS_TEXT = _convert(pa.float64()), _convert(pa.string())


def _parse(text: CsvText, options: pcsv.ConvertOptions) -> pa.Table:
    try:
        # One block for the whole body: pyarrow's default 1 MiB blocks cost a 45,000-row file
        # twice the time (measured in benchmarks/reader.py).
        read = pcsv.ReadOptions(column_names=list(HEADER), block_size=len(text.body) + 1)
        return pcsv.read_csv(
            io.BytesIO(text.body),
            read_options=read,
            parse_options=_PARSE,
            convert_options=options,
        )
    except pa.ArrowInvalid as error:
        if options is _AS_FLOATS and "conversion error" in str(error):
            raise  # a probability that is not a number: read again as text to name them all
        raise SubmissionError(f"the file is not a valid CSV file ({error})") from None


def _probabilities(text: CsvText) -> tuple[pa.Table, np.ndarray, list[str]]:
    """The parsed rows, their probabilities (NaN where not a number) and the problems found."""
    try:
        table = _parse(text, _AS_FLOATS)
    except pa.ArrowInvalid:
        table = None
    if table is not None:
        values = table["probability"].to_numpy()
        not_numeric = np.zeros(len(values), dtype=bool)
    else:  # the slow path, only for files with a value that is not a plain number
        table = _parse(text, _AS_TEXT)
        words = pc.utf8_trim_whitespace(table["probability"])
        values = pd.to_numeric(
            pd.Series(words.to_numpy(zero_copy_only=False), dtype=object), errors="coerce"
        ).to_numpy(np.float64)
        spelled = pc.is_in(pc.utf8_lower(words), value_set=pa.array(sorted(NON_FINITE_WORDS)))
        not_numeric = np.isnan(values) & ~spelled.to_numpy(zero_copy_only=False)
    lines = np.arange(len(values)) + 2  # 1-based file lines, after the header
    with np.errstate(invalid="ignore"):
        checks = (
            (not_numeric, "not a number"),
            (~np.isfinite(values) & ~not_numeric, "NaN or infinite"),
            (np.isfinite(values) & ((values < 0.0) | (values > 1.0)), "outside [0, 1]"),
        )
    problems = [
        f"{counted(int(bad.sum()), 'probability is', 'probabilities are')} {what} "
        f"({at_lines(lines[bad])})"
        for bad, what in checks
        if bad.any()
    ]
    return table, values, problems


class SubmissionReader:
    """Reads submission files of one round: its tournament ids and its size limit, prepared once.

    ``tournament_ids``: the round's ids, shape ``(n,)``, in the order predictions are returned.
    ``max_bytes``: the size limit for the stored file and for its decompressed content; by
    default :func:`size_limit` of the round.
    """

    def __init__(self, tournament_ids: np.ndarray, *, max_bytes: int | None = None) -> None:
        ids = np.asarray(tournament_ids)
        if ids.ndim != 1 or ids.size == 0:
            raise ValueError(f"tournament_ids must be a non-empty 1-d array, got shape {ids.shape}")
        self.tournament_ids = ids.astype(str)
        self._expected = pa.array(self.tournament_ids, type=pa.string())
        # A repeated round id would make every file, however right, miss one of its ids.
        if pc.count_distinct(self._expected).as_py() != len(self._expected):
            raise ValueError("tournament_ids must be unique")
        if max_bytes is not None and (
            isinstance(max_bytes, bool)
            or not isinstance(max_bytes, int | np.integer)
            or max_bytes < 1
        ):
            raise ValueError(f"max_bytes must be a positive whole number, got {max_bytes!r}")
        self.max_bytes = size_limit(len(self.tournament_ids)) if max_bytes is None else max_bytes

    def read(self, raw: bytes) -> np.ndarray:
        """The probabilities of the file ``raw``, shape ``(n,)``, in tournament-id order.

        Raises :class:`SubmissionError` naming every problem of the rows, or the first problem
        of the file's format or structure.
        """
        text = csv_text(raw, self.max_bytes)
        n = len(self._expected)
        if text.rows > 2 * n + EXAMPLES:  # far more rows than ids: no row is looked at
            raise SubmissionError(
                f"the file has {text.rows:,} rows; a submission for this round has one row for "
                f"each of its {n:,} ids"
            )
        table, values, problems = _probabilities(text)
        ids = pc.utf8_trim_whitespace(table["id"]).combine_chunks()
        if len(ids) == n and pc.all(pc.equal(ids, self._expected)).as_py():
            position = np.arange(n)  # the usual case: rows in the tournament file's order
        else:
            found = pc.index_in(ids, value_set=self._expected)
            position = pc.fill_null(found, -1).to_numpy().astype(np.int64)
        known = position >= 0
        empty = (pc.utf8_length(ids).to_numpy() == 0) & ~known
        if empty.any():
            problems.insert(
                0,
                f"{counted(int(empty.sum()), 'id is', 'ids are')} empty "
                f"({at_lines(np.flatnonzero(empty) + 2)})",
            )
        times = np.bincount(position[known], minlength=n)
        repeated = np.flatnonzero(times > 1)
        if len(repeated):
            problems.insert(
                0,
                f"{counted(len(repeated), 'id appears', 'ids appear')} more than once "
                f"(e.g. {examples(self.tournament_ids[repeated])})",
            )
        if not (known | empty).all():
            unknown = pc.unique(ids.filter(pa.array(~known & ~empty))).to_pylist()
            problems.insert(
                int(empty.any()) + int(len(repeated) > 0),
                f"{counted(len(unknown), 'id is', 'ids are')} not in this round "
                f"(e.g. {examples(unknown)})",
            )
        missing = np.flatnonzero(times == 0)
        if len(missing):
            problems.append(
                f"{counted(len(missing), 'id', 'ids')} of this round "
                f"{'is' if len(missing) == 1 else 'are'} missing "
                f"(e.g. {examples(self.tournament_ids[missing])})"
            )
        if problems:
            raise SubmissionError(problems)
        aligned = np.empty(n)
        aligned[position] = values  # every id known and present exactly once
        return aligned


def read_submission(
    source: str | Path | bytes | BinaryIO,
    tournament_ids: np.ndarray,
    *,
    max_bytes: int | None = None,
) -> np.ndarray:
    """Read and validate a submission; its probabilities in the round's tournament-id order.

    ``source`` is a path, the file's bytes or a binary file object. ``max_bytes`` (by default
    the round's :func:`size_limit`) refuses a larger file, or one that decompresses to more,
    before parsing it. For many files of one round, make one :class:`SubmissionReader`.
    """
    reader = SubmissionReader(tournament_ids, max_bytes=max_bytes)
    if isinstance(source, bytes):
        raw = source
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"submission file {path} does not exist")
        size = path.stat().st_size
        if size > reader.max_bytes:
            raise SubmissionError(
                f"the file is {size:,} bytes, more than the {reader.max_bytes:,} bytes a "
                "submission for this round can take"
            )
        raw = path.read_bytes()
    else:
        raw = source.read(reader.max_bytes + 1)  # over the limit: refused without reading it all
    return reader.read(raw)
