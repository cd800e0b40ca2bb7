"""What a submission file's bytes are, turned into checked CSV text before any parser sees it.

Everything here costs time linear in the input and memory bounded by ``limit`` (the round's size
limit, :func:`size_limit`): compressed input is inflated as a stream and abandoned as soon as it
passes the limit (:mod:`.compression`), and the line structure (header, fields per line, line
length, blank lines) is checked with vectorised scans. A problem raises :class:`SubmissionError`
with a one-line reason that names the format and what to do.

Accepted: UTF-8 text (with or without a BOM), UTF-16 text with a BOM (as spreadsheets save it),
and either of them inside gzip, bzip2 or a zip archive holding one file. Formats are told by their
leading bytes (their "magic numbers"), never by the file name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numerai_assets.scoring._arrays import whole_number
from numerai_assets.scoring.compression import WHAT_TO_DO, decompress

# The reasons' helpers live in :mod:`.reasons`; re-exported for code that imports them from here.
from numerai_assets.scoring.reasons import (  # noqa: F401
    REASON_CHARS,
    SubmissionError,
    at_lines,
    counted,
    examples,
    join_within,
    printable,
    quoted,
)

HEADER = ("id", "probability")
HEADER_TEXT = ",".join(HEADER)
# A row "n0003aac1a0dbf4a,0.51234" is about 25 bytes; the limit is generous but refuses a file
# whose size could only come from something other than one id and one probability per row.
BYTES_PER_ROW = 200
MIN_SIZE_LIMIT = 1 << 20
MAX_LINE_BYTES = 256  # an id and a probability; a longer line is refused before parsing

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

# Formats refused by name, so the reason says what was uploaded (first bytes -> what it is).
_REFUSED_FORMATS: tuple[tuple[bytes, str], ...] = (
    (b"\xfd7zXZ\x00", "an xz-compressed file"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"PAR1", "a Parquet file"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-style Excel or Office document"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\xff\xfe\x00\x00", "UTF-32 text"),
    (b"\x00\x00\xfe\xff", "UTF-32 text"),
)


def size_limit(rows: int) -> int:
    """The most bytes a submission for a round of ``rows`` tournament rows may hold.

    ``BYTES_PER_ROW`` (200) per row, at least ``MIN_SIZE_LIMIT`` (1 MiB). Applied to the
    stored object and again to its decompressed content.

    Parameters
    ----------
    rows : int
        At least 0.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``rows`` is not a whole number of at least 0.

    Examples
    --------
    >>> size_limit(45_000), size_limit(100)
    (9000000, 1048576)
    """
    return max(MIN_SIZE_LIMIT, BYTES_PER_ROW * whole_number(rows, "rows", minimum=0))


def _refused_format(data: bytes) -> str | None:
    for magic, what in _REFUSED_FORMATS:
        if data.startswith(magic):
            return what
    return None


def _utf16_without_bom(data: bytes) -> bool:
    """Text such as ``i\\0d\\0,\\0``: every other byte of its first characters is zero."""
    sample = data[: min(64, len(data) // 2 * 2)]
    low, high = sample[0::2], sample[1::2]
    zero = bytes(len(low))
    return len(sample) >= 4 and (
        (high == zero and zero[:1] not in low) or (low == zero and zero[:1] not in high)
    )


def _decode(data: bytes, where: str) -> bytes:
    """UTF-8 bytes of the text in ``data``: UTF-16 (with a BOM) re-encoded, a UTF-8 BOM dropped."""
    if data.startswith(_UTF16_BOMS) and not data.startswith(b"\xff\xfe\x00\x00"):
        try:
            return data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as error:
            raise SubmissionError(
                f"the file{where} starts as UTF-16 text but is not valid UTF-16 "
                f"({error.reason} at byte {error.start:,}); save it as 'CSV UTF-8'"
            ) from None
    what = _refused_format(data)
    if what is not None:
        raise SubmissionError(f"the file{where} is {what}, not a CSV file; {WHAT_TO_DO}")
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    nul = data.find(b"\x00")
    if nul >= 0:
        if _utf16_without_bom(data):
            raise SubmissionError(
                f"the file{where} looks like UTF-16 text without a byte-order mark; save it as "
                "'CSV UTF-8'"
            )
        raise SubmissionError(
            f"the file{where} is not a text CSV file (it contains binary data at byte "
            f"{nul:,}); {WHAT_TO_DO}"
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise SubmissionError(
            f"line {line:,} of the file{where} is not UTF-8 text ({error.reason}); save the "
            "file as 'CSV UTF-8'"
        ) from None
    return data


@dataclass(frozen=True)
class CsvText:
    r"""Checked CSV text: a header ``id,probability`` and rows of exactly two fields each.

    Attributes
    ----------
    body : bytes
        The rows only (the header line removed), UTF-8, ``\n``-terminated lines. Line ``k``
        (0-based) of the body is line ``k + 2`` of the file.
    rows : int
        Their count.

    Examples
    --------
    >>> check_structure(b"id,probability\nn1,0.5\n")
    CsvText(body=b'n1,0.5\n', rows=1)
    """

    body: bytes
    rows: int


def _header_problem(line: bytes) -> str | None:
    text = line.decode("utf-8")
    names = [name.strip().strip('"').strip().lower() for name in text.split(",")]
    if names == list(HEADER):
        return None
    for separator, name in (("\t", "tabs"), (";", "semicolons")):
        if separator in text and "," not in text:
            return (
                f"the header {quoted(text)} is separated by {name}; fields must be separated "
                f"by commas: '{HEADER_TEXT}'"
            )
    looks_like_data = len(names) == 2 and names[1].replace(".", "", 1).isdigit()
    if looks_like_data:
        return (
            f"the file has no header line: it must start with '{HEADER_TEXT}' "
            f"(line 1 is {quoted(text)})"
        )
    return f"the header must be '{HEADER_TEXT}', found {quoted(text)}"


def check_structure(data: bytes) -> CsvText:
    r"""Check the line structure of decoded CSV text before any parser sees it.

    Vectorised scans, linear in the size of ``data``: Windows and old Mac line ends become
    ``\n``; trailing blank lines and spaces are ignored; then the header, blank lines, line
    lengths, quotes and fields per line are checked, a reason naming the first lines at fault.

    Parameters
    ----------
    data : bytes
        UTF-8 text without a byte-order mark (as :func:`csv_text` decodes it).

    Returns
    -------
    CsvText

    Raises
    ------
    SubmissionError
        If the file is empty; its header line is over ``MAX_LINE_BYTES`` or is not
        ``id,probability`` (separated by tabs or semicolons, missing, or other names:
        comparison ignores case, spaces and quotes); it has no rows; a line is over
        ``MAX_LINE_BYTES`` (256) bytes; a line between rows is blank; a line has an odd number
        of quotes (a quoted value may not run over a line end); a line does not have exactly
        two fields.

    Examples
    --------
    >>> check_structure(b'"ID", Probability\r\nn1,0.5\r\nn2,0.25\r\n\r\n')
    CsvText(body=b'n1,0.5\nn2,0.25\n', rows=2)
    >>> try:
    ...     check_structure(b"id;probability\nn1;0.5\n")
    ... except SubmissionError as error:
    ...     print(error)  # doctest: +NORMALIZE_WHITESPACE
    the header 'id;probability' is separated by semicolons; fields must be separated by commas:
    'id,probability'
    """
    if b"\r" in data:  # Windows (\r\n) and old Mac (\r) line ends
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    data = data.rstrip(b" \t\n")
    if not data:
        raise SubmissionError("the file is empty")
    codes = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(codes == ord("\n"))
    ends = np.append(ends, len(data))  # the last line has no newline after rstrip
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts
    long_lines = np.flatnonzero(lengths > MAX_LINE_BYTES)
    if len(long_lines) and long_lines[0] == 0:
        raise SubmissionError(
            f"the header line is {lengths[0]:,} bytes long; it must be '{HEADER_TEXT}'"
        )
    header_problem = _header_problem(data[: ends[0]])
    if header_problem:
        raise SubmissionError(header_problem)
    if len(ends) == 1:
        raise SubmissionError("the file has a header but no rows")
    if len(long_lines):
        first = long_lines[0]
        raise SubmissionError(
            f"{counted(len(long_lines), 'line')} {'is' if len(long_lines) == 1 else 'are'} "
            f"longer than {MAX_LINE_BYTES} bytes (line {first + 1:,} is {lengths[first]:,} bytes; "
            f"a line holds one id and one probability)"
        )
    # Fields per line: one more than the commas it holds (each comma found by its line's end).
    commas = np.flatnonzero(codes == ord(","))
    fields = np.bincount(np.searchsorted(ends, commas), minlength=len(ends)) + 1
    # A quoted field may not run over a line end: an odd count of quotes on a line is refused,
    # so the parser's rows are the file's lines (and line numbers in reasons stay right).
    quotes = np.bincount(
        np.searchsorted(ends, np.flatnonzero(codes == ord('"'))), minlength=len(ends)
    )
    unbalanced = np.flatnonzero(quotes % 2)
    blank = np.flatnonzero(lengths[1:] == 0) + 1
    if len(blank):
        raise SubmissionError(
            f"{counted(len(blank), 'blank line')} in the file ({at_lines(blank + 1)}); "
            "remove blank lines between rows"
        )
    if len(unbalanced):
        first = unbalanced[0]
        raise SubmissionError(
            f"line {first + 1:,} has an unbalanced quote (a quoted value may not run over a "
            f"line end): {quoted(data[starts[first] : ends[first]].decode())}"
        )
    wrong = np.flatnonzero(fields[1:] != 2) + 1
    if len(wrong):
        first = wrong[0]
        more = f" ({counted(len(wrong), 'line')} in all: {examples(wrong + 1, quote=False)})"
        raise SubmissionError(
            f"line {first + 1:,} has {counted(int(fields[first]), 'field')}; expected 2 "
            f"({HEADER_TEXT}): {quoted(data[starts[first] : ends[first]].decode())}"
            + (more if len(wrong) > 1 else "")
        )
    return CsvText(body=data[ends[0] + 1 :] + b"\n", rows=len(ends) - 1)


def csv_text(raw: bytes, limit: int) -> CsvText:
    r"""The checked CSV text of a submission file's bytes, before any parser sees them.

    :func:`decompress`, then the text decoded: UTF-8 (a byte-order mark dropped) or UTF-16
    with a byte-order mark (re-encoded as UTF-8), formats that are not text refused by name;
    then :func:`check_structure`.

    Parameters
    ----------
    raw : bytes
        The file as stored.
    limit : int
        The most bytes the stored file, and its content, may hold (:func:`size_limit`).

    Returns
    -------
    CsvText

    Raises
    ------
    SubmissionError
        As :func:`decompress` and :func:`check_structure`; also if the content is a format
        refused by name (xz, zstd, 7z, RAR, Parquet, old Excel, PDF, PNG, JPEG, UTF-32), holds
        binary data (a NUL byte) or UTF-16 without a byte-order mark, or is not valid UTF-8
        (or UTF-16 after its mark); the reason says what to upload instead.

    Examples
    --------
    >>> csv_text("id,probability\nn1,0.5\n".encode("utf-16"), 1000).body  # as Excel saves it
    b'n1,0.5\n'
    >>> try:
    ...     csv_text(b"\x89PNG\r\n\x1a\n", 1000)
    ... except SubmissionError as error:
    ...     print(error)  # doctest: +NORMALIZE_WHITESPACE
    the file is a PNG image, not a CSV file; upload a CSV file 'id,probability' (plain, gzip,
    bzip2 or zip)
    """
    data, layer = decompress(raw, limit)
    data = _decode(data, f" inside the {layer} file" if layer else "")
    return check_structure(data)
