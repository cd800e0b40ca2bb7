"""Values from submission documents shown to people: printable, on one line, of bounded length,
and (for Dagster's markdown) escaped so that what a participant typed is shown as typed.

Anything stored may arrive here: documents come from other systems and user names and reasons are
chosen by participants. Every function takes any value and never raises.
"""

from __future__ import annotations

import numbers
import re
import reprlib
import unicodedata
from typing import Any

from numerai_assets.scoring.submission_format import join_within

DISPLAY_LIMIT = 64  # characters, the ellipsis included
ELLIPSIS = "…"

# Characters that are not text to look at, by Unicode general category: controls (Cc: C0, DEL,
# C1, line breaks and tabs), format characters (Cf: bidi marks, overrides and isolates, zero-width
# characters, the soft hyphen, interlinear annotations, tags), surrogates (Cs), private use (Co),
# unassigned code points (Cn) and the line and paragraph separators (Zl, Zp). Each is shown as
# its escape, whichever code point it is. Every other character, spaces of every script (Zs)
# included, is shown as it is.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# CommonMark lets a backslash escape any ASCII punctuation character, and then shows it as is.
# Escaping all of them leaves no markdown, HTML or entity syntax, no `|` to split a table cell,
# and no `www.`, `://` or `@` for GFM's autolinks to find in the source.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")

_bounded_repr = reprlib.Repr()  # containers: a few items, each cut short
_bounded_repr.maxstring = _bounded_repr.maxother = DISPLAY_LIMIT * 2


def _shown(char: str) -> str:
    """How one character is shown: itself, or, when its Unicode category is one of
    :data:`INVISIBLE_CATEGORIES`, its escape as Python writes it (``\\n``, ``\\x00``,
    ``\\u061c``, ``\\U000e0041``): printable ASCII that says which character is there."""
    if unicodedata.category(char) in INVISIBLE_CATEGORIES:
        return repr(char)[1:-1]  # repr escapes every one of them, and quotes nothing else here
    return char


def one_line(value: Any, limit: int = DISPLAY_LIMIT) -> str:
    """``value`` as printable text on one line of at most ``limit`` characters.

    ``None`` is ``""``; a string is itself; a number, ``ObjectId`` or datetime its ``str``;
    bytes and containers a ``repr`` (containers shortened by :mod:`reprlib`). Then every
    character that is not text to look at, by its Unicode category (controls, line breaks and
    tabs included; format characters such as U+061C ARABIC LETTER MARK, U+00AD SOFT HYPHEN, the
    zero-width and bidi characters and the tags U+E0000 to U+E007F; surrogates, private-use and
    unassigned code points; the line and paragraph separators: :data:`INVISIBLE_CATEGORIES`) is
    shown as its escape, ``\\n``, ``\\x1b``, ``\\u061c`` or ``\\U000e0041``. An escape rather
    than a space: it tells the reader something is there and which character it is, so a name
    with a hidden character never looks like the name without it. Spaces, of every script, and
    the printable text of every script (accents, CJK, emoji) are shown as they are.

    Text longer than ``limit`` is cut to at most ``limit - 1`` characters and :data:`ELLIPSIS`,
    never inside an escape. Time and memory are bounded by ``limit``, not by the size of
    ``value`` (a 200 MB string costs as much as a short one).

    An escape is for showing, not for reading back: a value that holds the six characters
    ``\\u061c`` shows as the one that holds U+061C; ``status --json`` gives the stored values.

    Raises ``ValueError`` only for a ``limit`` below 1.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit!r}")
    # Every character shows as at least one character, so the first limit + 1 decide what is
    # shown and whether it is cut: only they are read, and the cost is bounded by the limit.
    head = _text(value, limit + 1)[: limit + 1]
    if head.isprintable():  # the usual case: isprintable is False for every invisible category
        return head if len(head) <= limit else head[: limit - 1] + ELLIPSIS
    return join_within([_shown(char) for char in head], limit, ELLIPSIS)


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
