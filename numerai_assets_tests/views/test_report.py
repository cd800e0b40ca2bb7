"""Values shown to people: one line, bounded, and markdown cells that render as typed (checked by
rendering through markdown-it, a real CommonMark parser with GFM tables)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from bson import ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st

from numerai_assets.views.report import DISPLAY_LIMIT, ELLIPSIS, markdown_cell, one_line
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
        ("two\nlines", "two lines"),
        ("crlf\r\n\r\nand tabs\t\t", "crlf and tabs "),
        ("sep\u2028par\u2029nel\x85", "sep par nel "),
        ("nul\x00esc\x1b[31mred", "nul esc [31mred"),
        ("bidi\u202eright\u200bzero\ufeff", "bidi right zero "),
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
    assert one_line("ab\n\n\ncd", limit=5) == "ab cd"
    assert one_line("abc", limit=1) == ELLIPSIS
    with pytest.raises(ValueError, match="limit must be at least 1"):
        one_line("abc", limit=0)


@pytest.mark.parametrize(
    "value",
    [
        "r" * 200_000_000,  # the 200 MB reason of the issue
        " " * 10_000_000 + "late",  # whitespace past the window still counts as more
        b"\x00" * 50_000_000,
        list(range(1_000_000)),
        10**10_000,  # str() refuses integers this long
    ],
    ids=["200MB-str", "10MB-spaces", "50MB-bytes", "1M-list", "huge-int"],
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
    if len(text) <= limit and "\n" not in text and text.isprintable():
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
        assert shown == one_line(value).strip(" "), value  # markdown trims a cell's spaces


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
