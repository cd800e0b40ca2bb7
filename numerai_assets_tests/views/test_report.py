"""Values shown to people: one line, bounded, and markdown cells that render as typed (checked by
rendering through markdown-it, a real CommonMark parser with GFM tables)."""

from __future__ import annotations

import sys
import unicodedata
from datetime import datetime, timezone

import pytest
from bson import ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st

from numerai_assets.scoring.submission_format import printable
from numerai_assets.views.report import (
    DISPLAY_LIMIT,
    ELLIPSIS,
    INVISIBLE_CATEGORIES,
    markdown_cell,
    one_line,
)
from numerai_assets_tests.conftest import unavailable

HOSTILE = [
    "a|b",
    "| --- |",
    "*bold* _em_ **strong** __strong__ ~~gone~~",
    "[click](https://evil.example/x) ![img](https://evil.example/i.png)",
    "<https://evil.example> https://evil.example www.evil.example me@evil.example",
    "`code` ``more``",
    "<b>html</b><script>alert(1)</script><!-- c -->",
    "&amp; &lt;b&gt; &#124; &#x7C;",
    "line\nbreak\r\nand\rmore\u2028\u2029\x85end",
    "tab\there\x00nul\x1bescape\x7fdel",
    "back\\slash\\",
    "\\|",
    "# heading",
    "> quote",
    "- item",
    "1. item",
    "trailing\\",
    "[ref]: https://evil.example",
    "rtl\u202eevil\u200bzero",
    "x" * 500,
]


# one_line


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("alice", "alice"),
        ("two\nlines", "two\\nlines"),
        ("crlf\r\n\r\nand tabs\t\t", "crlf\\r\\n\\r\\nand tabs\\t\\t"),
        ("sep\u2028par\u2029nel\x85", "sep\\u2028par\\u2029nel\\x85"),
        ("nul\x00esc\x1b[31mred", "nul\\x00esc\\x1b[31mred"),
        ("bidi\u202eright\u200bzero\ufeff", "bidi\\u202eright\\u200bzero\\ufeff"),
        ("al\u061cice", "al\\u061cice"),  # ARABIC LETTER MARK
        ("bo\ufff9b\ufffa\ufffb", "bo\\ufff9b\\ufffa\\ufffb"),  # interlinear annotation
        ("ca\U000e0041\U000e007frol", "ca\\U000e0041\\U000e007frol"),  # tags
        ("da\u00adve", "da\\xadve"),  # SOFT HYPHEN
        ("ev\ue000e\U000f0000", "ev\\ue000e\\U000f0000"),  # private use
        ("fr\u0378ank\U0010ffff", "fr\\u0378ank\\U0010ffff"),  # unassigned
        ("gr\ud800ace", "gr\\ud800ace"),  # a lone surrogate
        ("two  spaces\u00a0and\u3000more", "two  spaces\u00a0and\u3000more"),  # spaces stay
        ("Zoë 山田 Ωμέγα 🎉👩🏽‍💻", "Zoë 山田 Ωμέγα 🎉👩🏽\\u200d💻"),  # ZWJ is a format character
        (None, ""),
        (12345, "12345"),
        (True, "True"),
        (0.5, "0.5"),
        (ObjectId("6b07ec105c9c990fd0ec18d7"), "6b07ec105c9c990fd0ec18d7"),
        (datetime(2024, 1, 2, tzinfo=timezone.utc), "2024-01-02 00:00:00+00:00"),
        (b"raw\n", "b'raw\\n'"),
        ({"$ne": None}, "{'$ne': None}"),
    ],
)
def test_one_line_shows_any_value_on_one_line(value, shown):
    assert one_line(value) == shown


def test_one_line_cuts_at_the_limit_with_an_ellipsis():
    assert one_line("x" * DISPLAY_LIMIT) == "x" * DISPLAY_LIMIT
    assert one_line("x" * (DISPLAY_LIMIT + 1)) == "x" * (DISPLAY_LIMIT - 1) + ELLIPSIS
    assert one_line("abcdef", limit=4) == "abc" + ELLIPSIS
    assert one_line("abcd", limit=4) == "abcd"
    assert one_line("ab\n\n\ncd", limit=5) == "ab\\n" + ELLIPSIS  # never inside an escape
    assert one_line("a\u061cb", limit=3) == "a" + ELLIPSIS
    assert one_line("\u061c", limit=6) == "\\u061c"
    assert one_line("abc", limit=1) == ELLIPSIS
    with pytest.raises(ValueError, match="limit must be at least 1"):
        one_line("abc", limit=0)


def code_points(categories) -> str:
    """Every code point of Unicode whose general category is one of ``categories``."""
    return "".join(
        char
        for char in map(chr, range(sys.maxunicode + 1))
        if unicodedata.category(char) in categories
    )


def escape(char: str) -> str:
    """The escape of an invisible character, written out independently of ``repr``."""
    code = ord(char)
    if char in "\t\n\r":
        return {"\t": "\\t", "\n": "\\n", "\r": "\\r"}[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


@pytest.mark.parametrize("category", sorted(INVISIBLE_CATEGORIES))
def test_every_invisible_code_point_of_each_category_is_shown_as_its_escape(category):
    """Every control, format, surrogate, private-use, unassigned, line and paragraph separator
    code point, whichever it is (the hand-written ranges this replaced missed U+061C, U+00AD,
    U+FFF9 to U+FFFB, the tags, private use and unassigned code points, and many more)."""
    text = code_points({category})
    assert text  # Cs, Co and Cn included: the sweep covers the whole range
    shown = one_line(text, limit=len(text) * 10 + 1)
    assert shown == "".join(map(escape, text))
    assert shown.isascii() and shown.isprintable()
    # Each one alone, between letters, at the default limit: never raw, never mistaken.
    for char in text[:: max(1, len(text) // 2000)]:
        assert one_line(f"a{char}b") == f"a{escape(char)}b"


def test_printable_text_of_every_script_and_every_space_is_shown_as_it_is():
    """Letters, marks, numbers, punctuation, symbols (emoji) and spaces of every script."""
    text = code_points({"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No"})
    text += code_points({"Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs"})
    assert len(text) > 140_000
    assert one_line(text, limit=len(text)) == text


def test_the_reader_escapes_every_character_one_line_escapes():
    """A stored reason (quoted values, the reader's message) shows as stored: the reader's rule
    escapes every invisible category too (and spaces other than ' ', to name bytes exactly)."""
    text = code_points(INVISIBLE_CATEGORIES)
    assert printable(text) == "".join(map(escape, text))
    assert one_line(printable(text), limit=len(text) * 10 + 1) == printable(text)


@pytest.mark.parametrize(
    "value",
    [
        "r" * 200_000_000,  # the 200 MB reason of the issue
        "\u061c" * 20_000_000,  # 40 MB of invisible characters, each shown as six
        "\U000e0041" * 5_000_000,  # tags: ten characters each
        " " * 10_000_000 + "late",  # whitespace past the window still counts as more
        b"\x00" * 50_000_000,
        list(range(1_000_000)),
        10**10_000,  # str() refuses integers this long
    ],
    ids=["200MB-str", "40MB-marks", "20MB-tags", "10MB-spaces", "50MB-bytes", "1M-list", "int"],
)
def test_one_line_of_a_huge_value_is_bounded(value):
    shown = one_line(value)
    assert len(shown) <= DISPLAY_LIMIT and "\n" not in shown
    # cut, shortened by reprlib, or described
    assert shown.endswith((ELLIPSIS, ", ...]")) or shown.startswith("<an integer of 33")


def test_one_line_of_a_value_whose_str_fails_names_its_type():
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert one_line(Broken()) == "<Broken>"


@given(st.text(), st.integers(min_value=1, max_value=100))
@settings(max_examples=300, deadline=None)
def test_one_line_is_one_line_within_the_limit(text, limit):
    shown = one_line(text, limit)
    assert len(shown) <= limit
    assert shown.splitlines() in ([], [shown])
    assert not any(unicodedata.category(char) in INVISIBLE_CATEGORIES for char in shown)
    if len(text) <= limit and not any(
        unicodedata.category(char) in INVISIBLE_CATEGORIES for char in text
    ):
        assert shown == text


# markdown_cell, rendered by a real parser


@pytest.fixture(scope="module")
def markdown():
    try:
        from markdown_it import MarkdownIt
    except ImportError:  # markdown-it-py comes with rich, which dagster depends on
        unavailable("markdown-it-py is not installed")
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def table_lines(cells: list[str]) -> list[str]:
    """A table of a header row and one row per cell text, between two fixed cells."""
    return ["| before | value | after |", "| --- | --- | --- |"] + [
        f"| a | {cell} | z |" for cell in cells
    ]


def rendered_rows(markdown, lines: list[str]) -> list[list]:
    """The inline tokens of every cell of the table in ``lines``, row by row."""
    rows, row = [], None
    for token in markdown.parse("\n".join(lines)):
        if token.type == "tr_open":
            row = []
        elif token.type == "inline" and row is not None:
            row.append(token)
        elif token.type == "tr_close":
            rows.append(row)
            row = None
    return rows


def assert_cells_show_exactly(markdown, values: list) -> None:
    rows = rendered_rows(markdown, table_lines([markdown_cell(value) for value in values]))
    assert len(rows) == len(values) + 1
    for value, cells in zip(values, rows[1:], strict=True):
        assert len(cells) == 3, (value, [cell.content for cell in cells])
        before, cell, after = cells
        assert (before.content, after.content) == ("a", "z")
        kinds = {child.type for child in cell.children}
        assert kinds <= {"text", "text_special"}, (value, kinds)  # no link, em, code, html…
        shown = "".join(child.content for child in cell.children)
        # Markdown trims a cell's spaces (of every script, as JavaScript's trim does)
        assert shown == one_line(value).strip(), value


def test_hostile_values_keep_the_table_and_render_as_typed(markdown):
    assert_cells_show_exactly(markdown, HOSTILE)
    html = markdown.render(
        "| v |\n| --- |\n" + "\n".join(f"| {markdown_cell(v)} |" for v in HOSTILE)
    )
    for tag in ("<a ", "<img", "<em>", "<strong>", "<code>", "<s>", "<b>", "<script", "<!--"):
        assert tag not in html
    assert "&lt;script&gt;" in html  # shown as text, escaped by the renderer


def test_the_same_table_without_escaping_is_broken(markdown):
    """The check above can fail: raw values split cells and make links and emphasis."""
    rows = rendered_rows(markdown, table_lines(["a|b", "[x](https://e.example)", "*em*"]))
    assert [cell.content for cell in rows[1]] == ["a", "a", "b"]  # "z" pushed out of the table
    assert "link_open" in {child.type for child in rows[2][1].children}
    assert "em_open" in {child.type for child in rows[3][1].children}


@pytest.mark.parametrize("value", [None, 7, ObjectId("6b07ec105c9c990fd0ec18d7"), b"<b>"])
def test_non_text_values_render_as_their_one_line(markdown, value):
    assert_cells_show_exactly(markdown, [value])


@given(st.lists(st.text(), min_size=1, max_size=5))
@settings(max_examples=300, deadline=None)
def test_any_text_keeps_the_table_and_renders_as_typed(markdown, values):
    assert_cells_show_exactly(markdown, values)


def test_the_limit_counts_shown_characters_not_escapes():
    assert markdown_cell("|" * 100, limit=10) == "\\|" * 9 + ELLIPSIS
    assert markdown_cell("plain text") == "plain text"
