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

from numerai_assets.scoring._arrays import whole_number
from numerai_assets.scoring.compression import _too_large
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
    r"""Reads the submission files of one round, its ids and size limit prepared once.

    Parameters
    ----------
    tournament_ids : array_like of shape ``(n,)``
        The round's ids (compared as strings), unique, in the order predictions are returned.
    max_bytes : int, optional
        The size limit for the stored file and for its decompressed content; by default
        :func:`.submission_format.size_limit` of the round.

    Attributes
    ----------
    tournament_ids : ndarray of shape ``(n,)``, str
    max_bytes : int

    Raises
    ------
    ValueError
        If ``tournament_ids`` is empty, not one-dimensional or holds an id twice, or
        ``max_bytes`` is not a positive whole number. (The caller's error: not a
        :class:`SubmissionError`.)

    Examples
    --------
    >>> reader = SubmissionReader(np.array(["n1", "n2", "n3"]))
    >>> reader.read(b"id,probability\nn3,0.7\nn1,0.2\nn2,0.5\n")  # any row order
    array([0.2, 0.5, 0.7])
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
        self.max_bytes = (
            size_limit(len(self.tournament_ids))
            if max_bytes is None
            else whole_number(max_bytes, "max_bytes")
        )

    def read(self, raw: bytes) -> np.ndarray:
        r"""The probabilities of one file, in the round's tournament-id order.

        The bytes are checked first (:func:`.submission_format.csv_text`: size, compression,
        encoding, header, fields per line), then parsed by pyarrow's CSV reader with a fixed
        schema. Every problem of the rows is reported at once, so a participant fixes them in
        one go.

        Parameters
        ----------
        raw : bytes
            The file as stored.

        Returns
        -------
        ndarray of shape ``(n,)``, float64
            Each id's probability, in ``[0, 1]``.

        Raises
        ------
        SubmissionError
            The first problem of the file's format or structure; or every problem of its
            rows: ids repeated, empty, not in the round or missing (counted, with examples),
            probabilities not a number, NaN or infinite, or outside ``[0, 1]`` (counted, with
            line numbers); or far more rows than the round has ids.

        Examples
        --------
        >>> reader = SubmissionReader(np.array(["n1", "n2", "n3"]))
        >>> try:
        ...     reader.read(b"id,probability\nn1,0.2\nn1,1.5\nn9,x\n")
        ... except SubmissionError as error:
        ...     print(*error.problems, sep="\n")
        1 id appears more than once (e.g. 'n1')
        1 id is not in this round (e.g. 'n9')
        1 probability is not a number (line 4)
        1 probability is outside [0, 1] (line 3)
        2 ids of this round are missing (e.g. 'n2', 'n3')
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
    r"""Read and check one submission file; its probabilities in the round's id order.

    For many files of one round, make one :class:`SubmissionReader`.

    Parameters
    ----------
    source : str, Path, bytes or binary file object
        A path, the file's bytes, or an open binary file (read up to ``max_bytes + 1`` bytes).
    tournament_ids : array_like of shape ``(n,)``
        The round's ids, unique.
    max_bytes : int, optional
        The size limit for the stored file and its decompressed content; by default
        :func:`.submission_format.size_limit` of the round. A path to a larger file is refused
        before it is read.

    Returns
    -------
    ndarray of shape ``(n,)``, float64

    Raises
    ------
    FileNotFoundError
        If ``source`` is a path to no file (or to a directory).
    SubmissionError
        If the file cannot be scored (:meth:`SubmissionReader.read`).
    ValueError
        If ``tournament_ids`` or ``max_bytes`` is refused (:class:`SubmissionReader`).

    Examples
    --------
    >>> read_submission(b"id,probability\nn1,0.25\nn2,0.75\n", np.array(["n2", "n1"]))
    array([0.75, 0.25])
    >>> try:
    ...     read_submission(b"id,probability\nn1,0.5\n", np.array(["n1", "n2"]))
    ... except SubmissionError as error:
    ...     print(error)
    1 id of this round is missing (e.g. 'n2')
    """
    reader = SubmissionReader(tournament_ids, max_bytes=max_bytes)
    if isinstance(source, bytes):
        raw = source
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            what = "is not a file" if path.exists() else "does not exist"
            raise FileNotFoundError(f"submission file {path} {what}")
        size = path.stat().st_size
        if size > reader.max_bytes:
            raise _too_large(f"is {size:,} bytes,", reader.max_bytes)
        raw = path.read_bytes()
    else:
        raw = source.read(reader.max_bytes + 1)  # over the limit: refused without reading it all
    return reader.read(raw)
