"""What a submission file's bytes are, turned into checked CSV text before any parser sees it.

Everything here costs time linear in the input and memory bounded by ``limit`` (the round's size
limit, :func:`size_limit`): compressed input is inflated as a stream and abandoned as soon as it
passes the limit, and the line structure (header, fields per line, line length, blank lines) is
checked with vectorised scans. A problem raises :class:`SubmissionError` with a one-line reason
that names the format and what to do.

Accepted: UTF-8 text (with or without a BOM), UTF-16 text with a BOM (as spreadsheets save it),
and either of them inside gzip, bzip2 or a zip archive holding one file. Formats are told by their
leading bytes (their "magic numbers"), never by the file name.
"""

from __future__ import annotations

import bz2
import io
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# The reasons' helpers live in :mod:`.reasons`; re-exported for code that imports them from here.
from numerai_assets.scoring.reasons import (  # noqa: F401
    EXAMPLES,
    QUOTE_CHARS,
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
MAX_MEMBERS = 64  # concatenated gzip/bzip2 streams followed before refusing

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_GZIP, _BZIP2, _ZIP = b"\x1f\x8b", b"BZh", b"PK\x03\x04"
_EMPTY_ZIP = b"PK\x05\x06"

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
_WHAT_TO_DO = "upload a CSV file 'id,probability' (plain, gzip, bzip2 or zip)"


def size_limit(rows: int) -> int:
    """The most bytes a submission for a round of ``rows`` tournament rows may hold.

    Applied to the stored object and again to its decompressed content.
    """
    return max(MIN_SIZE_LIMIT, BYTES_PER_ROW * int(rows))


def _too_large(size_text: str, limit: int) -> SubmissionError:
    return SubmissionError(
        f"the file {size_text} more than the {limit:,} bytes a submission for this round can take"
    )


def _inflate(raw: bytes, new: Callable[[], object], name: str, limit: int) -> bytes:
    """Decompress a gzip or bzip2 stream (concatenated members included) up to ``limit`` bytes.

    Stops as soon as the output passes ``limit``: a small file that would expand to gigabytes
    costs at most ``limit`` bytes of memory and the time to produce them.
    """
    out = bytearray()
    data = raw
    try:
        for _ in range(MAX_MEMBERS):
            decompressor = new()
            out += decompressor.decompress(data, limit + 1 - len(out))
            if len(out) > limit:
                raise _too_large(f"decompresses to {name} content of", limit)
            if not decompressor.eof:  # under the limit, so the input ran out mid-stream
                raise SubmissionError(
                    f"the {name} file is truncated (it ends before its compressed data does); "
                    "upload it again"
                )
            data = decompressor.unused_data
            if not data.strip(b"\x00"):  # padding some tools add after the last member
                return bytes(out)
        raise SubmissionError(f"the {name} file holds more than {MAX_MEMBERS} compressed members")
    except (OSError, EOFError, ValueError, zlib.error) as error:
        if isinstance(error, SubmissionError):
            raise
        raise SubmissionError(
            f"the {name} file cannot be decompressed ({error}); {_WHAT_TO_DO}"
        ) from None


def _unzip(raw: bytes, limit: int) -> bytes:
    """The one file inside a zip archive, read up to ``limit`` bytes."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = [
                m
                for m in archive.infolist()
                if not m.is_dir() and not m.filename.startswith("__MACOSX/")
            ]
            names = {m.filename for m in members}
            if "[Content_Types].xml" in names:
                raise SubmissionError(
                    "the file is a spreadsheet or Office document, not a CSV file; save it as "
                    "'CSV UTF-8' and upload that"
                )
            if len(members) != 1:
                raise SubmissionError(
                    f"the zip archive holds {counted(len(members), 'file')}; it must hold "
                    "exactly one CSV file"
                )
            (member,) = members
            if member.file_size > limit:
                raise _too_large(f"inside the zip archive is {member.file_size:,} bytes,", limit)
            with archive.open(member) as content:
                data = content.read(limit + 1)  # the header's size may lie: read at most this
            if len(data) > limit:
                raise _too_large("inside the zip archive holds", limit)
            return data
    except SubmissionError:
        raise
    except RuntimeError as error:  # encrypted members
        raise SubmissionError(f"the zip archive cannot be read ({error}); {_WHAT_TO_DO}") from None
    except NotImplementedError as error:  # compression methods zipfile does not read
        raise SubmissionError(
            f"the zip archive uses a compression this service cannot read ({error}); "
            "use standard zip (deflate) or gzip"
        ) from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as error:
        raise SubmissionError(
            f"the zip archive is damaged or truncated ({error}); {_WHAT_TO_DO}"
        ) from None


def _refused_format(data: bytes) -> str | None:
    for magic, what in _REFUSED_FORMATS:
        if data.startswith(magic):
            return what
    return None


def decompress(raw: bytes, limit: int) -> tuple[bytes, str]:
    """``raw`` with one layer of gzip, bzip2 or zip undone, and the layer's name ('' if none).

    Raises :class:`SubmissionError` for a file over ``limit`` bytes (stored or decompressed), a
    damaged or truncated archive, or a second layer of compression inside the first.
    """
    if len(raw) > limit:
        raise _too_large(f"is {len(raw):,} bytes,", limit)
    if raw.startswith(_GZIP):
        data, layer = _inflate(raw, lambda: zlib.decompressobj(wbits=31), "gzip", limit), "gzip"
    elif raw.startswith(_BZIP2):
        data, layer = _inflate(raw, bz2.BZ2Decompressor, "bzip2", limit), "bzip2"
    elif raw.startswith((_ZIP, _EMPTY_ZIP)):
        data, layer = _unzip(raw, limit), "zip"
    else:
        return raw, ""
    if data.startswith((_GZIP, _BZIP2, _ZIP)):
        raise SubmissionError(
            f"the {layer} file holds another compressed file; compress the CSV file once"
        )
    return data, layer


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
        raise SubmissionError(f"the file{where} is {what}, not a CSV file; {_WHAT_TO_DO}")
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
            f"{nul:,}); {_WHAT_TO_DO}"
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
    """Checked CSV text: a header ``id,probability`` and rows of exactly two fields each.

    ``body`` holds the rows only (the header line removed), ``\\n``-terminated lines; ``rows``
    is their count. Line ``k`` of the body is line ``k + 2`` of the file.
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
    """Check the line structure of decoded UTF-8 CSV ``data`` (no BOM) before parsing it.

    Trailing blank lines are ignored; any other blank line, a line over ``MAX_LINE_BYTES``, a
    wrong header and a line without exactly two fields are refused, naming the first lines.
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
    """The checked CSV text of a submission file's bytes (see the module docstring).

    ``limit`` bounds both the stored bytes and the decompressed ones.
    """
    data, layer = decompress(raw, limit)
    data = _decode(data, f" inside the {layer} file" if layer else "")
    return check_structure(data)
