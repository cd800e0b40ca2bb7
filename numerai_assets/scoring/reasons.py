"""How a refused submission's reason reads: one line, printable, of bounded length.

A reason is stored on the submission's document and shown to its participant, and it may quote
the file (a header, a line, an id), so whatever a file holds must come out as visible text of a
bounded size. :class:`SubmissionError` carries the reason; the helpers here name counts, lines
and values in it. Used by :mod:`.submission_format` and :mod:`.submission` (reading a file),
:mod:`.policy` (a refused constant file) and the batch steps.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

EXAMPLES = 5  # offending lines or values named in a reason
QUOTE_CHARS = 64  # a value quoted in a reason is cut to this many characters
REASON_CHARS = 1000  # a whole reason is cut to this (stored on the document, shown in the UI)

_ASCII_WHITESPACE = re.compile(r"[\t\n\v\f\r ]+")


class SubmissionError(ValueError):
    """The submission file cannot be scored; ``str(error)`` is meant for the participant.

    ``problems`` lists each problem; the message joins them on one line (runs of ASCII
    whitespace made one space), printable (:func:`printable`: whatever a problem quotes, from
    the file or from a library's error, can carry no invisible character into the store), cut
    to ``REASON_CHARS`` characters (never inside an escape) so a hostile file cannot make a
    huge stored reason.
    """

    def __init__(self, problems: Sequence[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        # One line, single spaces: ASCII whitespace folds (how prose and library messages
        # break lines); any other invisible character, a file's U+2028 included, is escaped.
        words = _ASCII_WHITESPACE.sub(" ", "; ".join(self.problems)).strip(" ")
        # Every character shows as one or more: the first REASON_CHARS + 1 decide the message.
        pieces = [_escape(char) for char in words[: REASON_CHARS + 1]]
        super().__init__(join_within(pieces, REASON_CHARS))


def join_within(pieces: Sequence[str], limit: int, ellipsis: str = "…") -> str:
    """``pieces`` joined, at most ``limit`` characters: when longer, cut between two pieces (an
    escape such as ``\\u061c`` is never split) and ended with ``ellipsis``."""
    text = "".join(pieces)
    if len(text) <= limit:
        return text
    kept, length = [], 0
    for piece in pieces:
        if length + len(piece) > limit - len(ellipsis):
            break
        kept.append(piece)
        length += len(piece)
    return "".join(kept) + ellipsis


def printable(text: str) -> str:
    """``text`` with every character Python does not print escaped as ``repr`` writes it
    (``\\n``, ``\\x00``, ``\\u061c``, ``\\U000e0041``): by Unicode category, the controls,
    format characters, surrogates, private-use and unassigned code points, line and paragraph
    separators, and the spaces other than ' ' (a file's bytes are named exactly).

    Every character :func:`numerai_assets.views.report.one_line` escapes is escaped here too,
    so a reason shows as stored.
    """
    return text if text.isprintable() else "".join(map(_escape, text))


def _escape(char: str) -> str:
    return char if char.isprintable() else repr(char)[1:-1]


def quoted(value: object) -> str:
    """``value`` in single quotes for a reason: cut to 64 characters, then :func:`printable`."""
    text = str(value)
    cut = len(text) > QUOTE_CHARS
    return f"'{printable(text[:QUOTE_CHARS])}{'…' if cut else ''}'"


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """``1 id`` / ``2 ids``: the count with the noun in the right number."""
    noun = singular if count == 1 else (plural or singular + "s")
    return f"{count:,} {noun}"


def examples(values: Sequence[object], *, quote: bool = True) -> str:
    """Up to ``EXAMPLES`` values, quoted, with ``, …`` when there are more."""
    shown = [quoted(v) if quote else str(v) for v in values[:EXAMPLES]]  # never all of them
    return ", ".join(shown) + (", …" if len(values) > EXAMPLES else "")


def at_lines(numbers: Sequence[int]) -> str:
    """``line 3`` / ``lines 2, 3, 4, 5, 6, …``: where in the file, for a reason."""
    return f"line{'s' if len(numbers) > 1 else ''} {examples(numbers, quote=False)}"
