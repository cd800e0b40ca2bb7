import bz2
import gzip
import io
import tracemalloc
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numerai_assets.datasets.hostile import zip_archive
from numerai_assets.scoring.submission import (
    SubmissionError,
    SubmissionReader,
    read_submission,
    size_limit,
)
from numerai_assets.scoring.submission_format import MAX_LINE_BYTES, REASON_CHARS
from numerai_assets.views.report import INVISIBLE_CATEGORIES

IDS = np.array(["10", "11", "12", "13"])
EXPECTED = [0.1, 0.2, 0.3, 0.4]


def csv(*rows: str, header: str = "id,probability") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


GOOD = csv("12,0.3", "10,0.1", "13,0.4", "11,0.2")


def reason(content: bytes, ids: np.ndarray = IDS, **kwargs) -> str:
    with pytest.raises(SubmissionError) as error:
        read_submission(content, ids, **kwargs)
    message = str(error.value)
    assert message.isprintable() and len(message) <= REASON_CHARS
    return message


def test_probabilities_come_back_in_tournament_order():
    np.testing.assert_array_equal(read_submission(GOOD, IDS), EXPECTED)


@pytest.mark.parametrize(
    "encode",
    [
        gzip.compress,
        bz2.compress,
        lambda b: b"\xef\xbb\xbf" + b,  # UTF-8 BOM
        lambda b: gzip.compress(b[:30]) + gzip.compress(b[30:]),  # concatenated gzip members
        lambda b: bz2.compress(b[:30]) + bz2.compress(b[30:]),
        lambda b: zip_archive(("predictions.csv", b)),
        lambda b: zip_archive(("predictions.csv", b), ("__MACOSX/._predictions.csv", b"\x00\x05")),
        lambda b: b.decode().encode("utf-16"),  # spreadsheets' "Unicode text", with its BOM
        lambda b: b.replace(b"\n", b"\r\n"),
        lambda b: b.replace(b"\n", b"\r"),
        lambda b: b + b"\n\n  \n",  # trailing blank lines are ignored
        lambda b: b.replace(b"id,probability", b" ID , Probability "),
        lambda b: b.replace(b"id,probability", b'"id","probability"'),
        lambda b: b.replace(b",", b" , "),  # spaces around values
        lambda b: b.replace(b"12,0.3", b'"12","0.3"'),  # quoted fields
    ],
    ids=[
        "gzip",
        "bz2",
        "bom",
        "gzip-members",
        "bz2-streams",
        "zip",
        "zip-macosx",
        "utf16",
        "crlf",
        "cr",
        "trailing-blank",
        "header-case-spaces",
        "header-quoted",
        "spaces",
        "quoted",
    ],
)
def test_accepted_encodings_and_layouts(encode):
    np.testing.assert_array_equal(read_submission(encode(GOOD), IDS), EXPECTED)


def test_reads_a_path_a_file_object_and_the_real_sample(sample_round, sample_data, tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes(GOOD)
    assert read_submission(path, IDS)[0] == 0.1
    assert read_submission(io.BytesIO(GOOD), IDS)[0] == 0.1
    p = read_submission(sample_data / "sample_result.csv.bz2", sample_round.tournament_ids)
    assert p.shape == (1499,) and ((p >= 0) & (p <= 1)).all()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (csv("10,0.1", "11,0.2", "12,0.3"), "1 id of this round is missing (e.g. '13')"),
        (csv("10,0.1", "11,0.2"), "2 ids of this round are missing (e.g. '12', '13')"),
        (csv(*GOOD.decode().split()[1:], "99,0.5"), "1 id is not in this round (e.g. '99')"),
        (csv("10,0.1", "10,0.1", "11,0.2", "12,0.3", "13,0.4"), "1 id appears more than once"),
        (csv("10,0.1", "11,abc", "12,0.3", "13,0.4"), "1 probability is not a number (line 3)"),
        (csv("10,0.1", "11,nan", "12,inf", "13,0.4"), "2 probabilities are NaN or infinite"),
        (csv("10,0.1", "11,", "12,0.3", "13,0.4"), "1 probability is not a number (line 3)"),
        (csv("10,-0.1", "11,0.2", "12,1.5", "13,0.4"), "2 probabilities are outside [0, 1]"),
        (csv("10,0.1", header="id,prob"), "the header must be 'id,probability', found 'id,prob'"),
        (
            csv("10,0.1,x", header="id,probability,extra"),
            "found 'id,probability,extra'",
        ),
        (b"10,0.1\n11,0.2\n", "the file has no header line"),
        (b"id\tprobability\n10\t0.1\n", "separated by tabs"),
        (b"id;probability\n10;0,1\n", "separated by semicolons"),
        (b"", "the file is empty"),
        (b"   \n", "the file is empty"),
        (b"id,probability\n", "the file has a header but no rows"),
        (gzip.compress(GOOD)[:20], "the gzip file is truncated"),
        (bz2.compress(GOOD)[:20], "the bzip2 file is truncated"),
        (gzip.compress(GOOD) + b"garbage", "the gzip file cannot be decompressed"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a PNG image, not a CSV file"),
        (b"PAR1\x00\x00", "is a Parquet file"),
        (b"\xfd7zXZ\x00\x00", "is an xz-compressed file"),
        (bytes(range(256)), "contains binary data at byte 0"),
        (b"id,probability\n10,0.1\x00\n", "contains binary data at byte 21"),
        (GOOD.decode().encode("utf-16-le"), "UTF-16 text without a byte-order mark"),
        (b"id,probability\n10,0.1\n11,\xe9\n", "line 3 of the file is not UTF-8 text"),
        (zip_archive(), "the zip archive holds 0 files"),
        (zip_archive(("a.csv", GOOD), ("b.csv", GOOD)), "the zip archive holds 2 files"),
        (zip_archive(("[Content_Types].xml", b"<x/>"), ("xl/sheet1.xml", b"")), "spreadsheet"),
        (zip_archive(("a.csv", GOOD))[:40], "the zip archive is damaged or truncated"),
        (zip_archive(("a.csv.gz", gzip.compress(GOOD))), "the zip file holds another compressed"),
        (gzip.compress(gzip.compress(GOOD)), "the gzip file holds another compressed file"),
        (csv("10,0.1", "11,0.2,", "12,0.3", "13,0.4"), "line 3 has 3 fields; expected 2"),
        (csv("10", "11,0.2", "12,0.3", "13,0.4"), "line 2 has 1 field; expected 2"),
        (csv("10,0.1", "", "11,0.2", "12,0.3", "13,0.4"), "1 blank line in the file (line 3)"),
        (csv(",", ",", ",", ","), "4 ids are empty (lines 2, 3, 4, 5)"),
        (b'id,probability\n"10,0.1\n11,0.2\n12,0.3\n13,0.4\n', "line 2 has an unbalanced quote"),
        (b'id,probability\n10,0.1\n"11,\n",0.2\n12,0.3\n13,2\n', "line 3 has an unbalanced quote"),
        (b"id,probability\n" + b"10,0.5\n" * 14, "the file has 14 rows; a submission for this"),
    ],
)
def test_each_problem_is_named(content, message):
    assert message in reason(content)


def test_a_trailing_comma_on_the_first_row_names_the_extra_field_not_bogus_ids():
    rows = GOOD.decode().split()
    text = reason(("\n".join([rows[0], rows[1] + ",", *rows[2:]]) + "\n").encode())
    assert text == "line 2 has 3 fields; expected 2 (id,probability): '12,0.3,'"


def test_every_offending_line_is_counted_and_the_first_few_named():
    rows = [f"{i},0.5,x" for i in IDS]
    text = reason(csv(*rows, *rows))
    assert text.startswith("line 2 has 3 fields; expected 2 (id,probability): '10,0.5,x'")
    assert "(8 lines in all: 2, 3, 4, 5, 6, …)" in text


def test_all_row_problems_are_reported_at_once():
    with pytest.raises(SubmissionError) as error:
        read_submission(csv("10,2", "10,0.1", "77,0.5"), IDS)
    assert [p.split(" (")[0] for p in error.value.problems] == [
        "1 id appears more than once",
        "1 id is not in this round",
        "1 probability is outside [0, 1]",
        "3 ids of this round are missing",
    ]


def test_quoted_values_are_cut_and_the_reason_stays_short():
    long_id = "x" * 200
    text = reason(csv(*[f"{long_id}{k},0.5" for k in range(4)]))
    assert f"'{'x' * 64}…'" in text and long_id not in text
    many = np.array([f"n{k}" for k in range(5000)])
    problems = reason(csv(*[f"zz{k}-{'y' * 150},abc" for k in range(5000)]), many)
    assert len(problems) <= REASON_CHARS


def test_control_characters_in_values_are_escaped():
    text = reason(csv("10\x1b[31m,0.1", "11,0.2", "12,0.3", "13,0.4"))
    assert "\x1b" not in text and "\\x1b[31m" in text


# A value hiding a character of every invisible kind: format (U+061C, U+202E, U+00AD, a tag),
# private use, unassigned, a separator, a control. Quoted in a reason, each is its escape.
HIDDEN = "n\u061c\u202e\u00ad\U000e0041\ue000\u0378\u2028\x1b\ufff9"
SHOWN = "n\\u061c\\u202e\\xad\\U000e0041\\ue000\\u0378\\u2028\\x1b\\ufff9"


@pytest.mark.parametrize(
    "content",
    [
        csv("10,0.1", header=f"id,{HIDDEN}"),  # the header, quoted
        csv("10,0.1", f"{HIDDEN},0.2", "12,0.3", "13,0.4"),  # an unknown id, quoted
        csv("10,0.1", f'"{HIDDEN},0.2', "12,0.3", "13,0.4"),  # an unbalanced quote: the line
        csv("10,0.1", f"{HIDDEN},0.2,x", "12,0.3", "13,0.4"),  # three fields: the line
        # One quoted field holding the comma: only pyarrow sees it, and its error quotes the row
        csv("10,0.1", f'"{HIDDEN},0.2"', "12,0.3", "13,0.4"),
    ],
    ids=["header", "unknown id", "unbalanced quote", "three fields", "parser's error"],
)
def test_a_reason_quoting_the_file_carries_no_hidden_character(content):
    """What the store keeps and every view shows: escapes, never the characters themselves."""
    text = reason(content)
    assert SHOWN in text
    assert not [c for c in text if unicodedata.category(c) in INVISIBLE_CATEGORIES]


def test_a_reason_is_cut_at_its_limit_never_inside_an_escape():
    hidden = SubmissionError("\u061c" * REASON_CHARS)
    assert str(hidden) == "\\u061c" * ((REASON_CHARS - 1) // 6) + "…"
    plain = SubmissionError("x" * (REASON_CHARS + 1))
    assert str(plain) == "x" * (REASON_CHARS - 1) + "…"
    assert str(SubmissionError("x" * REASON_CHARS)) == "x" * REASON_CHARS


def test_a_long_line_is_refused_before_parsing():
    text = reason(csv("10,0.1", "1" * 5000 + ",0.2", "12,0.3", "13,0.4"))
    assert f"1 line is longer than {MAX_LINE_BYTES} bytes (line 3 is 5,004 bytes" in text
    header = reason(b"id," + b",".join(b"c%d" % k for k in range(64000)) + b"\n")
    assert header.startswith("the header line is ")


def test_size_limit_is_checked_before_parsing(tmp_path):
    path = tmp_path / "big.csv"
    path.write_bytes(GOOD)
    assert "the file is 43 bytes, more than the 10 bytes" in reason(path, max_bytes=10)
    assert "the file is 43 bytes, more than the 10 bytes" in reason(GOOD, max_bytes=10)
    assert "more than the 10 bytes" in reason(io.BytesIO(GOOD), max_bytes=10)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_submission(tmp_path / "nope.csv", IDS)


def test_the_limit_follows_the_round_size():
    assert size_limit(10) == 1 << 20
    assert size_limit(45_000) == 9_000_000
    assert SubmissionReader(np.arange(45_000)).max_bytes == 9_000_000


ZEROS = 64 << 20  # 64 MiB of zeros: far over the 1 MiB limit of a small round


@pytest.mark.parametrize(
    ("bomb", "message"),
    [
        (lambda: gzip.compress(bytes(ZEROS), 9), "decompresses to gzip content of more than"),
        (lambda: bz2.compress(bytes(ZEROS), 9), "decompresses to bzip2 content of more than"),
        (
            lambda: zip_archive(("a.csv", bytes(ZEROS))),
            "inside the zip archive is 67,108,864 bytes",
        ),
        (
            lambda: gzip.compress(b"id,probability\n" + b"10,0.1\n" * (ZEROS // 7)),
            "decompresses to gzip content of more than",
        ),
    ],
    ids=["gzip", "bz2", "zip", "valid-looking-rows"],
)
def test_compression_bombs_stop_at_the_limit(bomb, message):
    data = bomb()
    tracemalloc.start()
    try:
        text = reason(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message in text
    assert peak < 8 * size_limit(len(IDS))  # bounded by the limit, not by the 64 MiB inside


def test_a_zip_whose_header_understates_its_member_is_still_cut_at_the_limit():
    data = bytearray(zip_archive(("a.csv", bytes(4 << 20))))
    # Patch the central directory's uncompressed size (offset 24 in the entry) to 10 bytes.
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    assert "the zip archive" in reason(bytes(data))


ROUND_IDS = np.array([f"n{k}" for k in range(30)])


@settings(max_examples=150, deadline=None)
@given(
    order=st.permutations(range(30)),
    probabilities=st.lists(st.floats(0, 1), min_size=30, max_size=30),
)
def test_property_any_valid_file_round_trips(order, probabilities):
    rows = [f"{ROUND_IDS[k]},{probabilities[k]!r}" for k in order]
    parsed = read_submission(csv(*rows), ROUND_IDS)
    np.testing.assert_array_equal(parsed, probabilities)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=400),
        st.lists(
            st.sampled_from(
                ["n1", "n2", "n29", "x", "", "0.5", "nan", "-1", "1e3", '"', ",", "\n", "\r", " "]
            ),
            max_size=40,
        ).map(
            lambda words: (
                "id,probability\n"
                + "\n".join(",".join(words[i : i + 2]) for i in range(0, len(words), 2))
            ).encode()
        ),
    )
)
def test_property_any_bytes_are_parsed_or_refused_with_a_one_line_reason(data):
    try:
        parsed = read_submission(data, ROUND_IDS)
    except SubmissionError as error:
        message = str(error)
        assert message and message.isprintable() and len(message) <= REASON_CHARS
    else:
        assert parsed.shape == (30,) and np.isfinite(parsed).all()


@pytest.mark.parametrize(
    ("ids", "max_bytes", "message"),
    [
        (["a", "b", "a"], None, "tournament_ids must be unique"),
        ([], None, r"tournament_ids must be a non-empty 1-d array, got shape \(0,\)"),
        ([["a", "b"]], None, r"tournament_ids must be a non-empty 1-d array, got shape \(1, 2\)"),
        (["a", "b"], 0, "max_bytes must be a positive whole number, got 0"),
        (["a", "b"], 1.5, "max_bytes must be a positive whole number, got 1.5"),
    ],
)
def test_a_reader_refuses_a_round_it_cannot_read_for(ids, max_bytes, message):
    """With a repeated round id every file, however right, was refused as missing that id."""
    with pytest.raises(ValueError, match=message) as raised:
        SubmissionReader(np.array(ids), max_bytes=max_bytes)
    assert not isinstance(raised.value, SubmissionError)  # the caller's error, not the file's
