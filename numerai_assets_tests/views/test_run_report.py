"""The run's markdown report: what a participant typed shows as typed, hidden characters as
their escapes, in a table nothing can break."""

from __future__ import annotations

import unicodedata

from numerai_assets.scoring.policy import ScoringPolicy
from numerai_assets.views.report import INVISIBLE_CATEGORIES
from numerai_assets.views.run_report import summary_markdown

SUMMARY = [
    {
        "id": "6b0d021063a242cf3a04c286",
        "username": "al\u061cice\U000e0041",
        "concordance": 0.05,
        "concordant": True,
        "original": False,
        "reason": "duplicate",
    },
    {
        "id": "6b0d021063a242cf3a04c287",
        "username": "bo\u00adb|x",
        "invalid": "line 2 is '\u202en1\ufff9,0.5'\nmore",
    },
    {"id": "6b0d021063a242cf3a04c288", "username": "Zoë 山田 🎉", "pending": "MemoryError"},
]


def test_hidden_characters_in_the_report_are_their_escapes():
    markdown = summary_markdown(SUMMARY, ScoringPolicy())
    assert not [
        c for c in markdown if c != "\n" and unicodedata.category(c) in INVISIBLE_CATEGORIES
    ]
    rows = markdown.splitlines()[4:]
    assert len(rows) == len(SUMMARY)
    assert rows[0].startswith("| al\\\\u061cice\\\\U000e0041 | 0.0500 | yes | no | duplicate |")
    assert rows[1] == (
        "| bo\\\\xadb\\|x | | | | invalid\\: line 2 is \\'\\\\u202en1\\\\ufff9\\,0\\.5\\'\\\\nmore "
        "| 6b0d021063a242cf3a04c287 |"
    )
    assert rows[2].startswith("| Zoë 山田 🎉 | | | | pending\\: ")
