"""Values from submission documents shown to people: on one line, of bounded length, and (for
Dagster's markdown) escaped so that what a participant typed is shown as typed.

Anything stored may arrive here: documents come from other systems and user names and reasons are
chosen by participants. Both functions take any value and never raise.
"""

from __future__ import annotations

import numbers
import re
import reprlib
from typing import Any

DISPLAY_LIMIT = 64  # characters, the ellipsis included
ELLIPSIS = "…"

# Line breaks, tabs and other whitespace, control characters (C0, DEL, C1), and the invisible
# format characters that reorder or hide text (zero-width, bidi embeddings and isolates): one
# space per run, so a value cannot break a table row or disguise itself.
_FOLD = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]+")
# CommonMark lets a backslash escape any ASCII punctuation character, and then shows it as is.
# Escaping all of them leaves no markdown, HTML or entity syntax, no `|` to split a table cell,
# and no `www.`, `://` or `@` for GFM's autolinks to find in the source.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")

_bounded_repr = reprlib.Repr()  # containers: a few items, each cut short
_bounded_repr.maxstring = _bounded_repr.maxother = DISPLAY_LIMIT * 2


def one_line(value: Any, limit: int = DISPLAY_LIMIT) -> str:
    """``value`` as text on one line of at most ``limit`` characters.

    ``None`` is ``""``; a string is itself; a number, ``ObjectId`` or datetime its ``str``;
    bytes and containers a ``repr`` (containers shortened by :mod:`reprlib`). Runs of
    whitespace and of invisible or control characters become one space. Text longer than
    ``limit`` is cut to ``limit - 1`` characters and :data:`ELLIPSIS`. Time and memory are
    bounded by ``limit``, not by the size of ``value`` (a 200 MB string costs as much as a short
    one).

    Raises ``ValueError`` only for a ``limit`` below 1.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit!r}")
    # Only a window of the text is read, so the cost is bounded by the limit. Folding never
    # lengthens text, so the window holds every character shown, unless runs of whitespace
    # take up most of it; then fewer are shown before the ellipsis, which still says "more".
    window = limit * 4 + 1
    text = _text(value, window)
    folded = _FOLD.sub(" ", text[:window])
    if len(folded) > limit or len(text) > window:
        return folded[: limit - 1] + ELLIPSIS
    return folded


def markdown_cell(value: Any, limit: int = DISPLAY_LIMIT) -> str:
    """``value`` as the text of a markdown table cell: :func:`one_line`, then every ASCII
    punctuation character backslash-escaped, so it renders as the same characters and never as
    a link, emphasis, code, HTML, an entity or a cell boundary (CommonMark and GFM tables).

    ``limit`` bounds the characters shown; the escaped text is at most twice as long.
    """
    return _PUNCTUATION.sub(r"\\\1", one_line(value, limit))


def _text(value: Any, window: int) -> str:
    """``value`` as text whose first ``window`` characters are right and which is longer than
    ``window`` when the whole text would be (built in time bounded by ``window``)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return repr(bytes(value[:window]))  # quotes and escapes make it longer than the bytes
    if isinstance(value, list | tuple | dict | set | frozenset):
        return _bounded_repr.repr(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        try:
            return str(int(value))
        except ValueError:  # Python refuses to print integers of over 4,300 digits
            return f"<an integer of {int(value).bit_length()} bits>"
    try:
        return str(value)
    except Exception:  # a stored value of some exotic type: say what it is instead
        return f"<{type(value).__name__}>"
