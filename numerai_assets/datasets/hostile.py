"""Hostile and unlucky submission files, for the tests and the reader's benchmark.

Each is something a participant can upload: compression bombs, a header of 64,000 columns, an id
of hundreds of megabytes, a spreadsheet's export. :func:`hostile_files` pairs each with a piece of
the reason it must be refused with; :func:`unlucky_files` are honest predictions in encodings
that must be read.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import io
import zipfile

import numpy as np

from numerai_assets.datasets.synthetic import submission_csv
from numerai_assets.scoring.submission_format import size_limit

ZEROS_CHUNK = 64 << 20


@functools.cache
def _bz2_zeros() -> bytes:
    return bz2.compress(bytes(ZEROS_CHUNK), 9)  # 79 bytes


@functools.cache
def _gzip_zeros() -> bytes:
    return gzip.compress(bytes(ZEROS_CHUNK), 9)  # 65 KB


def zip_archive(*members: tuple[str, bytes]) -> bytes:
    """A zip archive of ``(name, content)`` members, deflated."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def _gzip_stream(head: bytes, filler: bytes, total: int, tail: bytes = b"") -> bytes:
    """gzip of ``head + filler * k + tail`` of about ``total`` bytes, without building it."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6) as out:
        out.write(head)
        block = filler * max(1, (1 << 20) // len(filler))
        for _ in range(max(1, total // len(block))):
            out.write(block)
        out.write(tail)
    return buffer.getvalue()


def hostile_files(ids: np.ndarray) -> dict[str, tuple[bytes, str]]:
    """Files that must each be refused: name -> (content, a piece of the reason).

    ``ids`` are the round's tournament ids. Sizes are those of the attacks measured on the
    pipeline (an 8 GiB bzip2 bomb of 10 KB, 200 MB in one id), so nothing here is small because
    of the test.
    """
    good = submission_csv(ids, np.linspace(0.2, 0.8, len(ids)))
    lines = good.decode().splitlines()
    return {
        "bz2_bomb_8gib": (_bz2_zeros() * 128, "decompresses to bzip2 content of more than"),
        "gzip_bomb": (_gzip_zeros(), "decompresses to gzip content of more than"),
        "zip_bomb": (zip_archive(("p.csv", bytes(ZEROS_CHUNK))), "inside the zip archive is"),
        "gzip_valid_looking_rows": (
            _gzip_stream(b"id,probability\n", f"{ids[0]},0.5\n".encode(), 256 << 20),
            "decompresses to gzip content of more than",
        ),
        "gzip_wide_header": (
            gzip.compress(b"id," + b",".join(b"c" for _ in range(64_000)) + b"\n"),
            "the header line is",
        ),
        "gzip_200mb_id": (
            _gzip_stream(b"id,probability\n", b"x", 200 << 20, b",0.5\n"),
            "decompresses to gzip content of more than",
        ),
        "long_id": (
            ("\n".join([lines[0], "x" * 500_000 + ",0.5", *lines[2:]]) + "\n").encode(),
            "1 line is longer than 256 bytes (line 2 is 500,004 bytes",
        ),
        "trailing_comma": (
            ("\n".join([lines[0], lines[1] + ",", *lines[2:]]) + "\n").encode(),
            "line 2 has 3 fields; expected 2 (id,probability)",
        ),
        "bare_commas": (b"id,probability\n" + b",\n" * len(ids), "ids are empty (lines 2, 3"),
        "unbalanced_quote": (
            ("\n".join([lines[0], '"' + lines[1], *lines[2:]]) + "\n").encode(),
            "line 2 has an unbalanced quote",
        ),
        "millions_of_empty_rows": (
            b"id,probability\n" + b",\n" * (size_limit(len(ids)) // 2 - 10),
            "rows; a submission for this round has one row for each of its",
        ),
        "two_files_in_zip": (zip_archive(("a.csv", good), ("b.csv", good)), "holds 2 files"),
        "spreadsheet": (
            zip_archive(("[Content_Types].xml", b"<Types/>"), ("xl/workbook.xml", b"<w/>")),
            "spreadsheet or Office document",
        ),
        "png": (b"\x89PNG\r\n\x1a\n" + bytes(64), "a PNG image, not a CSV file"),
    }


def unlucky_files(ids: np.ndarray, probabilities: np.ndarray) -> dict[str, bytes]:
    """The same honest predictions as a spreadsheet or an archiver writes them: all readable."""
    good = submission_csv(ids, probabilities)
    return {
        "utf16_with_bom": good.decode().encode("utf-16"),
        "zipped_csv": zip_archive(("predictions.csv", good)),
        "windows_lines_and_bom": b"\xef\xbb\xbf" + good.replace(b"\n", b"\r\n"),
        "bzip2": bz2.compress(good),
    }
