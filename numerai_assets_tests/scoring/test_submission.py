import bz2
import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numerai_assets.scoring.submission import SubmissionError, read_submission

IDS = np.array(["10", "11", "12", "13"])


def csv(*rows: str, header: str = "id,probability") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


GOOD = csv("12,0.3", "10,0.1", "13,0.4", "11,0.2")


def test_probabilities_come_back_in_tournament_order():
    np.testing.assert_array_equal(read_submission(GOOD, IDS), [0.1, 0.2, 0.3, 0.4])


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lambda b: b"\xef\xbb\xbf" + b])
def test_compressed_and_bom_files(compress):
    np.testing.assert_array_equal(read_submission(compress(GOOD), IDS), [0.1, 0.2, 0.3, 0.4])


def test_reads_a_path_and_the_real_sample(sample_round, sample_data, tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes(GOOD)
    assert read_submission(path, IDS)[0] == 0.1
    p = read_submission(sample_data / "sample_result.csv.bz2", sample_round.tournament_ids)
    assert p.shape == (1499,) and ((p >= 0) & (p <= 1)).all()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (csv("10,0.1", "11,0.2", "12,0.3"), "1 ids of this round are missing (e.g. 13)"),
        (csv("10,0.1", "11,0.2", "12,0.3", "13,0.4", "99,0.5"), "1 ids are not in this round"),
        (csv("10,0.1", "10,0.1", "11,0.2", "12,0.3", "13,0.4"), "1 ids appear more than once"),
        (csv("10,0.1", "11,abc", "12,0.3", "13,0.4"), "1 probabilities are not numbers (lines 3)"),
        (csv("10,0.1", "11,nan", "12,inf", "13,0.4"), "2 probabilities are NaN or infinite"),
        (csv("10,0.1", "11,", "12,0.3", "13,0.4"), "1 probabilities are not numbers"),
        (csv("10,-0.1", "11,0.2", "12,1.5", "13,0.4"), "2 probabilities are outside [0, 1]"),
        (csv("10,0.1", header="id,prob"), "header must be exactly 'id,probability'"),
        (csv("10,0.1,x", header="id,probability,extra"), "found 'id,probability,extra'"),
        (b"10,0.1\n11,0.2\n", "header must be exactly"),
        (b"", "the file is empty"),
        (b"   \n", "the file is empty"),
        (b"id,probability\n", "has a header but no rows"),
        (gzip.compress(GOOD)[:20], "cannot be decompressed"),
        (bz2.compress(GOOD)[:20], "cannot be decompressed"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data"),
        (b"id,probability\n10,0.1\n11,0.2,7\n", "not a valid CSV file"),
    ],
)
def test_each_problem_is_named(content, message):
    with pytest.raises(SubmissionError) as error:
        read_submission(content, IDS)
    assert message in str(error.value)


def test_all_problems_are_reported_at_once():
    with pytest.raises(SubmissionError) as error:
        read_submission(csv("10,2", "10,0.1", "77,0.5"), IDS)
    assert len(error.value.problems) == 4  # repeated, unknown, missing, outside [0, 1]


def test_size_limit_is_checked_before_parsing(tmp_path):
    path = tmp_path / "big.csv"
    path.write_bytes(GOOD)
    with pytest.raises(SubmissionError, match="more than the 10 bytes"):
        read_submission(path, IDS, max_bytes=10)
    with pytest.raises(SubmissionError, match="more than the 10 bytes"):
        read_submission(GOOD, IDS, max_bytes=10)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_submission(tmp_path / "nope.csv", IDS)


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
            st.sampled_from(["n1", "n2", "n29", "x", "", "0.5", "nan", "-1", "1e3", '"', ","]),
            max_size=40,
        ).map(
            lambda words: (
                "id,probability\n"
                + "\n".join(",".join(words[i : i + 2]) for i in range(0, len(words), 2))
            ).encode()
        ),
    )
)
def test_property_any_bytes_are_parsed_or_refused_with_a_reason(data):
    try:
        parsed = read_submission(data, ROUND_IDS)
    except SubmissionError as error:
        assert str(error)  # a reason, never an empty message
    else:
        assert parsed.shape == (30,) and np.isfinite(parsed).all()
