"""One layer of gzip, bzip2 or zip undone, within a size limit, for a submission file.

Told by the file's leading bytes, never its name. Compressed input is inflated as a stream and
abandoned as soon as it passes the limit, so a small file that would expand to gigabytes (a
"compression bomb") costs at most ``limit`` bytes of memory and the time to produce them; a zip
member's declared size is not trusted. Every problem is a :class:`.reasons.SubmissionError`
whose reason says what to upload instead. Used by :func:`.submission_format.csv_text`.
"""

from __future__ import annotations

import bz2
import io
import zipfile
import zlib
from collections.abc import Callable

from numerai_assets.scoring.reasons import SubmissionError, counted

MAX_MEMBERS = 64  # concatenated gzip/bzip2 streams followed before refusing
# What a reason tells the participant to upload instead.
WHAT_TO_DO = "upload a CSV file 'id,probability' (plain, gzip, bzip2 or zip)"

_GZIP, _BZIP2, _ZIP = b"\x1f\x8b", b"BZh", b"PK\x03\x04"
_EMPTY_ZIP = b"PK\x05\x06"


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
    except SubmissionError:
        raise
    except (OSError, EOFError, ValueError, zlib.error) as error:
        raise SubmissionError(
            f"the {name} file cannot be decompressed ({error}); {WHAT_TO_DO}"
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
        raise SubmissionError(f"the zip archive cannot be read ({error}); {WHAT_TO_DO}") from None
    except NotImplementedError as error:  # compression methods zipfile does not read
        raise SubmissionError(
            f"the zip archive uses a compression this service cannot read ({error}); "
            "use standard zip (deflate) or gzip"
        ) from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as error:
        raise SubmissionError(
            f"the zip archive is damaged or truncated ({error}); {WHAT_TO_DO}"
        ) from None


def decompress(raw: bytes, limit: int) -> tuple[bytes, str]:
    r"""``raw`` with one layer of gzip, bzip2 or zip undone, and the layer's name.

    Inflated as a stream and abandoned as soon as it passes ``limit``. Concatenated gzip or
    bzip2 members are followed (up to ``MAX_MEMBERS``); a zip archive must hold exactly one file
    (``__MACOSX/`` entries aside).

    Parameters
    ----------
    raw : bytes
        The file as stored.
    limit : int
        The most bytes the stored file, and its content, may hold (the round's
        :func:`.submission_format.size_limit`).

    Returns
    -------
    tuple of (bytes, str)
        The content, and ``"gzip"``, ``"bzip2"``, ``"zip"`` or ``""`` (not compressed).

    Raises
    ------
    SubmissionError
        If the file, or its decompressed content, is over ``limit`` bytes; the archive is
        damaged or truncated, encrypted, of a compression method Python cannot read, or of more
        than ``MAX_MEMBERS`` members; a zip archive holds no file or more than one, or is an
        Office document; the content is compressed again.

    Examples
    --------
    >>> import gzip
    >>> decompress(gzip.compress(b"id,probability\nn1,0.5\n"), 1000)
    (b'id,probability\nn1,0.5\n', 'gzip')
    >>> try:
    ...     decompress(gzip.compress(b"0" * 10_000), 1000)  # 10 kB from a few dozen bytes
    ... except SubmissionError as error:
    ...     print(error)  # doctest: +NORMALIZE_WHITESPACE
    the file decompresses to gzip content of more than the 1,000 bytes a submission for this
    round can take
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
