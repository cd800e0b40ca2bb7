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
    """The submission file cannot be scored; ``str(error)`` is the reason, for the participant.

    The message joins the problems with ``"; "`` on one line (runs of ASCII whitespace made one
    space), printable (:func:`printable`: whatever a problem quotes, from the file or from a
    library's error, can carry no invisible character into the store), cut to
    ``REASON_CHARS`` (1,000) characters, never inside an escape, so a hostile file cannot make
    a huge stored reason.

    Parameters
    ----------
    problems : str or sequence of str
        One problem, or each problem; kept as the list ``error.problems``.

    Examples
    --------
    >>> print(SubmissionError(["2 ids are missing", "line 3 has a\\nbreak and a" + chr(0x2028)]))
    2 ids are missing; line 3 has a break and a\\u2028
    >>> len(str(SubmissionError("x" * 5000)))
    1000
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
    """``pieces`` joined into at most ``limit`` characters, cut between two pieces if longer.

    A piece is never split, so an escape such as ``\\u061c`` (one piece) is shown whole or not
    at all; a cut text ends with ``ellipsis``, within the limit.

    Parameters
    ----------
    pieces : sequence of str
    limit : int
        At least ``len(ellipsis)``.
    ellipsis : str, default "…"

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If ``limit`` is less than ``len(ellipsis)``.

    Examples
    --------
    >>> join_within(["ab", "cd"], 4), join_within(["ab", "\\\\u061c", "cd"], 6)
    ('abcd', 'ab…')
    """
    if limit < len(ellipsis):
        raise ValueError(f"limit must be at least len(ellipsis) ({len(ellipsis)}), got {limit!r}")
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
    """``text`` with every character Python does not print escaped, as ``repr`` writes it.

    By Unicode category (``str.isprintable``): the controls, format characters, surrogates,
    private-use and unassigned code points, line and paragraph separators, and the spaces
    other than ' ' become ``\\n``, ``\\x00``, ``\\u061c``, ``\\U000e0041``, so a file's bytes are
    named exactly. Every character :func:`numerai_assets.views.report.one_line` escapes is
    escaped here too, so a reason shows as stored.

    Parameters
    ----------
    text : str

    Returns
    -------
    str
        ``text`` itself when every character is printable.

    Examples
    --------
    >>> print(printable("id" + chr(9) + "x" + chr(0x61C) + "é"))
    id\\tx\\u061cé
    """
    return text if text.isprintable() else "".join(map(_escape, text))


def _escape(char: str) -> str:
    return char if char.isprintable() else repr(char)[1:-1]


def quoted(value: object) -> str:
    """``value`` in single quotes for a reason: its ``str`` cut to 64 characters, printable.

    Parameters
    ----------
    value : object
        Shown as ``str(value)``; the first ``QUOTE_CHARS`` (64) characters, then ``…`` if cut,
        each passed through :func:`printable` (so the result may be longer).

    Returns
    -------
    str

    Examples
    --------
    >>> quoted("id;probability"), quoted("n" * 70)[-4:], len(quoted("n" * 70))
    ("'id;probability'", "nn…'", 67)
    """
    text = str(value)
    cut = len(text) > QUOTE_CHARS
    return f"'{printable(text[:QUOTE_CHARS])}{'…' if cut else ''}'"


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """The count, with thousands separators, and the noun in the right number.

    Parameters
    ----------
    count : int
    singular : str
    plural : str, optional
        By default ``singular + "s"``.

    Returns
    -------
    str

    Examples
    --------
    >>> counted(1, "id"), counted(2, "id"), counted(45_000, "id is", "ids are")
    ('1 id', '2 ids', '45,000 ids are')
    """
    noun = singular if count == 1 else (plural or singular + "s")
    return f"{count:,} {noun}"


def examples(values: Sequence[object], *, quote: bool = True) -> str:
    """Up to ``EXAMPLES`` (5) values for a reason, with ``, …`` when there are more.

    Parameters
    ----------
    values : sequence
        Only the first five are read (a reason never names them all).
    quote : bool, default True
        Each value :func:`quoted`; else its ``str``.

    Returns
    -------
    str

    Examples
    --------
    >>> examples(["a", "b"]), examples(range(2, 10), quote=False)
    ("'a', 'b'", '2, 3, 4, 5, 6, …')
    """
    shown = [quoted(v) if quote else str(v) for v in values[:EXAMPLES]]  # never all of them
    return ", ".join(shown) + (", …" if len(values) > EXAMPLES else "")


def at_lines(numbers: Sequence[int]) -> str:
    """Where in the file, for a reason: ``line 3``, or ``lines`` and up to five numbers.

    Parameters
    ----------
    numbers : sequence of int
        1-based line numbers of the file.

    Returns
    -------
    str

    Examples
    --------
    >>> at_lines([3]), at_lines([2, 3, 4, 5, 6, 7])
    ('line 3', 'lines 2, 3, 4, 5, 6, …')
    """
    return f"line{'s' if len(numbers) > 1 else ''} {examples(numbers, quote=False)}"
