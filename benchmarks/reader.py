"""Submission reader: a 45,000-row file read, plain and gzipped, against the previous reader.

The baseline is the reader this project had before (pandas ``read_csv`` with every column as
text, then ids matched through a hash index), kept here so both run in the same process on the
same bytes. Also: the time to refuse each hostile file (goal: under 2 s each), and the time to
refuse a malformed file at 1x, 4x and 16x the size (linear: the ratio follows the size).
"""

from __future__ import annotations

import gzip
import io

import numpy as np
import pandas as pd

from benchmarks._timing import Checks, best_of, header, line, ratio, run_one, seconds
from numerai_assets.datasets.hostile import hostile_files
from numerai_assets.scoring.submission import SubmissionReader
from numerai_assets.scoring.submission_format import SubmissionError

ROWS = 45_000


def previous_reader(raw: bytes, tournament_ids: np.ndarray) -> np.ndarray:
    """The reader before this one, for the valid-file path (what a burst spends its time on)."""
    text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    frame = pd.read_csv(
        io.StringIO(text.decode("utf-8-sig")),
        dtype=str,
        keep_default_na=False,
        skipinitialspace=True,
    )
    ids = np.array([str(v).strip() for v in frame["id"].to_numpy(dtype=object)], dtype=object)
    expected = pd.Index(np.asarray(tournament_ids).astype(str).astype(object))
    position = expected.get_indexer(ids)
    values = pd.to_numeric(
        pd.Series(frame["probability"].to_numpy(dtype=object), dtype=object), errors="coerce"
    ).to_numpy(np.float64)
    aligned = np.empty(len(expected))
    aligned[position] = values
    return aligned


def _refuse(reader: SubmissionReader, data: bytes) -> str:
    try:
        reader.read(data)
    except SubmissionError as error:
        return str(error)
    return ""


def main(quick: bool = False) -> bool:
    header("submission reader: one 45,000-row file")
    checks = Checks()
    rng = np.random.default_rng(0)
    ids = np.array([f"n{k:015x}" for k in rng.integers(1 << 56, 1 << 60, ROWS)])  # as Numerai's
    probabilities = rng.random(ROWS).round(6)
    plain = pd.DataFrame({"id": ids, "probability": probabilities}).to_csv(index=False).encode()
    shuffled_rows = plain.split(b"\n")
    body = shuffled_rows[1:-1]
    rng.shuffle(body)
    shuffled = b"\n".join([shuffled_rows[0], *body, b""])
    reader = SubmissionReader(ids)
    repeats = 5 if quick else 20
    line("file", f"{len(plain):,} bytes plain, {len(gzip.compress(plain)):,} gzipped")
    for label, data, goal in (
        ("plain, rows in tournament order", plain, "goal <= 5 ms"),
        ("plain, rows shuffled", shuffled, ""),
        ("gzip, rows in tournament order", gzip.compress(plain), "goal <= 10 ms"),
    ):
        fast = best_of(lambda data=data: reader.read(data), repeats=repeats)
        base = best_of(lambda data=data: previous_reader(data, ids), repeats=repeats)
        line(f"{label}: this reader", seconds(fast.seconds), goal)
        line(f"{label}: previous reader", seconds(base.seconds))
        ratio(base.seconds, fast.seconds)
        checks(np.array_equal(fast.result, base.result), f"{label}: same probabilities")
        checks(np.array_equal(fast.result, probabilities), f"{label}: the probabilities written")

    header("refusing hostile files (each goal < 2 s; round of 45,000 rows)")
    for name, (data, reason) in hostile_files(ids).items():
        timing = best_of(lambda data=data: _refuse(reader, data), repeats=1, warmup=False)
        line(f"{name} ({len(data):,} bytes)", seconds(timing.seconds))
        checks(reason in timing.result and timing.seconds < 2, f"{name}: refused, {reason!r}")

    header("time to refuse grows with the size (a bad field on every line)")
    big = SubmissionReader(ids, max_bytes=1 << 30)
    times = {}
    for factor in (2, 8, 32):
        data = b"id,probability\n" + b"n1,0.5,x\n" * (ROWS * factor)
        timing = best_of(lambda data=data: _refuse(big, data), repeats=3)
        times[factor] = timing.seconds
        line(f"{factor:>2}x ({len(data):,} bytes)", seconds(timing.seconds))
    line("32x / 2x", f"{times[32] / times[2]:8.1f}x", "linear: about 16x")
    return checks.ok


if __name__ == "__main__":
    run_one(main, __doc__)
