"""What a participant typed, or a client sent, is printable in the intake's answers and log."""

from __future__ import annotations

import http.client
import json
import logging
import unicodedata

from bson import ObjectId

from numerai_assets.cli.intake import store_factory
from numerai_assets.intake import create_app
from numerai_assets.settings import Settings
from numerai_assets.store import open_database
from numerai_assets.views.report import INVISIBLE_CATEGORIES
from numerai_assets_tests.intake.test_intake import (
    KEY,
    TIMEOUT,
    request,
    serving,
)


def test_get_answers_printable_text_for_hidden_characters(home):
    """Starlette writes JSON as UTF-8 (``ensure_ascii=False``): a hidden character in a stored
    user name or reason would reach the site raw. The diagnostic holds their escapes."""
    hidden = ObjectId()
    open_database()["submissions"].insert_one(
        {
            "_id": hidden,
            "username": "al\u061cice\U000e0041",
            "competition_id": 7,
            "invalid": {"reason": "line 2: '\u202en1\u00ad'\nmore"},
        }
    )
    with serving(create_app(KEY, store_factory(Settings.from_env()))) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        try:
            conn.request("GET", f"/submissions/{hidden}", headers={"X-API-Key": KEY.encode()})
            response = conn.getresponse()
            body = response.read().decode("utf-8")
        finally:
            conn.close()
    assert response.status == 200
    assert not [c for c in body if unicodedata.category(c) in INVISIBLE_CATEGORIES]
    answer = json.loads(body)
    assert answer["user"] == "al\\u061cice\\U000e0041"
    assert answer["invalid"] == "line 2: '\\u202en1\\xad'\\nmore"


def test_the_access_log_shows_a_hostile_path_on_one_printable_line(home, caplog):
    """The path is percent-decoded before it is logged: %0A would start a forged line, %E2%80%AE
    reverse what follows."""
    caplog.set_level(logging.INFO, logger="numerai_assets.intake.app")
    with serving(create_app(KEY, store_factory(Settings.from_env()))) as bound:
        path = "/x%0A127.0.0.1%20%22GET%20/%22%20200%E2%80%AE%F3%A0%81%81" + "y" * 500
        assert request(bound, method="GET", path=path)[0] == 404
    (line,) = [r.getMessage() for r in caplog.records if '"GET /x' in r.getMessage()]
    assert "\n" not in line
    assert not [c for c in line if unicodedata.category(c) in INVISIBLE_CATEGORIES]
    assert '/x\\n127.0.0.1 "GET /" 200\\u202e\\U000e0041yyy' in line and line.endswith('…" 404')
