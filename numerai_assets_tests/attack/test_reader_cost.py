"""Files whose rows are cheap to write and costly to look at: refused by their structure."""

from __future__ import annotations

import numpy as np
import pytest

from numerai_assets.scoring.submission import SubmissionReader
from numerai_assets.scoring.submission_format import SubmissionError

ROWS = 45_000  # a real round: the size limit is 9,000,000 bytes


def test_millions_of_bare_comma_rows_are_refused_before_any_row_is_read():
    """A 9 MB file of ``,`` rows (the limit for a 45,000-row round): refused from its row count
    alone, so refusing it costs the structure scan, not a look at 4.5 million values (its time
    is in ``benchmarks/reader.py``: a ratio, not a timed test)."""
    reader = SubmissionReader(np.array([f"n{i:015x}" for i in range(ROWS)]))
    bare_commas = b"id,probability\n" + b",\n" * ((reader.max_bytes - 20) // 2)
    with pytest.raises(SubmissionError) as refused:
        reader.read(bare_commas)
    assert str(refused.value) == (
        "the file has 4,499,990 rows; a submission for this round has one row for each of its "
        "45,000 ids"
    )


def test_line_numbers_stay_right_after_a_quoted_line_break():
    """A quoted field holding a comma and a line break would pass the per-line field count (each
    half has one comma) and the parser would read two lines as one row, putting every later line
    number one too small: it is refused at its line instead."""
    reader = SubmissionReader(np.array([f"n{i}" for i in range(5)]))
    raw = b'id,probability\nn0,0.5\n"n1,\n",0.5\nn2,0.5\nn3,0.5\nn4,2\n'
    with pytest.raises(SubmissionError) as refused:
        reader.read(raw)
    assert str(refused.value).startswith("line 3 has an unbalanced quote"), str(refused.value)
