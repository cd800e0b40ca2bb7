"""open_database: the backend each MONGO_URL picks, and the embedded store's set-up."""

from __future__ import annotations

import contextlib
import fcntl
import threading
from pathlib import Path

import mongomock
import pymongo.database
import pytest
from montydb import MontyClient, set_storage
from montydb.database import MontyDatabase

from numerai_assets.settings import Settings
from numerai_assets.store import SubmissionStore, connection, open_database, redact_url, write_lock
from numerai_assets_tests.store.helpers import ROUND, add, at


def settings(home: Path, **env: str) -> Settings:
    return Settings.from_env({"NUMERAI_ASSETS_HOME": str(home), **env})


def test_unset_url_opens_the_embedded_sqlite_store_under_home(tmp_path: Path) -> None:
    database = open_database(settings(tmp_path))

    assert isinstance(database, MontyDatabase)
    assert database.name == "numerai"
    store_dir = tmp_path / "store"
    assert Path(database.client.address) == store_dir
    assert (store_dir / ".monty.storage").read_text().strip() == "sqlite"
    assert database.codec_options.tz_aware
    assert {"submissions", "competitions"} <= set(database.list_collection_names())


def test_the_embedded_store_keeps_its_data_across_clients(tmp_path: Path) -> None:
    sid = add(SubmissionStore(open_database(settings(tmp_path))), "alice", 1)
    reopened = MontyClient(str(tmp_path / "store"), tz_aware=True)["numerai"]
    assert SubmissionStore(reopened).get(sid)["created"] == at(1)


def test_a_montydb_url_names_the_store_directory(tmp_path: Path) -> None:
    where = tmp_path / "elsewhere"
    database = open_database(
        settings(tmp_path / "home", MONGO_URL=f"montydb://{where}", MONGO_DB_NAME="tourney")
    )
    assert Path(database.client.address) == where
    assert database.name == "tourney"
    assert (where / ".monty.storage").exists()
    assert not (tmp_path / "home").exists()


def test_a_thread_reuses_its_client_and_other_threads_get_their_own(tmp_path: Path) -> None:
    config = settings(tmp_path)
    mine = open_database(config)
    assert open_database(config).client is mine.client

    theirs: list[MontyDatabase] = []
    thread = threading.Thread(target=lambda: theirs.append(open_database(config)))
    thread.start()
    thread.join()
    assert theirs[0].client is not mine.client
    assert open_database(settings(tmp_path / "other")).client is not mine.client


def test_threads_writing_one_embedded_store_lose_nothing(tmp_path: Path) -> None:
    config = settings(tmp_path)
    errors: list[BaseException] = []

    def work(user: str) -> None:
        try:
            store = SubmissionStore(open_database(config))
            for i in range(5):
                sid = add(store, user, i)
                store.mark_pending(sid, consistency=50.0, validation_logloss=0.69)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(f"user{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    store = SubmissionStore(open_database(config))
    assert len(store.round_submissions(ROUND)) == 15
    board = {e["username"]: e["submission_id"] for e in store.leaderboard(ROUND)}
    latest = {doc["username"]: doc["_id"] for doc in store.round_submissions(ROUND)}
    assert board == latest


def test_a_mongodb_url_opens_a_pymongo_database(tmp_path: Path) -> None:
    # pymongo connects lazily: no server is needed to build the client
    database = open_database(
        settings(tmp_path, MONGO_URL="mongodb://127.0.0.1:1/?connect=false", MONGO_DB_NAME="nm")
    )
    assert isinstance(database, pymongo.database.Database)
    assert database.name == "nm"
    assert database.codec_options.tz_aware


def test_a_mongodb_srv_url_goes_to_pymongo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a real SRV URL needs DNS: record what pymongo is asked for instead
    calls: list[tuple[str, dict]] = []

    def client(url: str, **kwargs: object) -> mongomock.MongoClient:
        calls.append((url, kwargs))
        return mongomock.MongoClient()

    monkeypatch.setattr(connection.pymongo, "MongoClient", client)
    monkeypatch.setattr(connection, "_mongo_clients", {})
    url = "mongodb+srv://u:p@cluster0.example.net/?retryWrites=true"
    database = open_database(settings(tmp_path, MONGO_URL=url))
    assert calls == [(url, {"tz_aware": True})]
    assert database.name == "numerai"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgres://admin:hunter2@db.example.com:5432/x",
            "'postgres://***@db.example.com:5432/x'",
        ),
        ("redis://:hunter2@cache", "'redis://***@cache'"),
        ("HTTP://user:hunter2@h/p@th?password=hunter2", "'HTTP://***@th'"),
    ],
)
def test_an_unknown_scheme_is_refused_without_echoing_the_password(
    tmp_path: Path, url: str, shown: str
) -> None:
    with pytest.raises(ValueError) as raised:
        open_database(settings(tmp_path, MONGO_URL=url))
    message = str(raised.value)
    scheme = url.split("://")[0].lower()
    assert message.startswith(f"unsupported MONGO_URL scheme '{scheme}' in {shown}")
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("admin:hunter2@localhost:27017", "MONGO_URL must be a URL such as mongodb://host:27017"),
        ("montydb://relative/dir", "a montydb MONGO_URL must name an absolute directory"),
        ("montydb://:memory:", "a montydb MONGO_URL must name an absolute directory"),
    ],
)
def test_malformed_urls_are_refused(tmp_path: Path, url: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected) as raised:
        open_database(settings(tmp_path, MONGO_URL=url))
    assert "hunter2" not in str(raised.value)


def test_redact_url() -> None:
    assert redact_url("mongodb://u:p@h1,h2/db?authSource=admin") == "mongodb://***@h1,h2/db"
    assert redact_url("mongodb://h:27017") == "mongodb://h:27017"
    assert redact_url("u:secret@h") == "***@h"


def test_a_store_made_with_another_montydb_engine_is_refused(tmp_path: Path) -> None:
    set_storage(str(tmp_path / "store"), storage="flatfile", use_bson=True)
    with pytest.raises(ValueError, match="uses montydb's 'flatfile' engine; only 'sqlite'"):
        open_database(settings(tmp_path))


def test_write_lock_is_a_file_lock_only_for_montydb(tmp_path: Path) -> None:
    database = open_database(settings(tmp_path))
    lock_file = tmp_path / "store" / ".numerai_assets.lock"

    def try_lock() -> bool:
        with open(lock_file) as other:  # another open file: as another process would
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

    with write_lock(database):
        assert not try_lock()
    assert try_lock()
    assert isinstance(write_lock(mongomock.MongoClient()["x"]), contextlib.nullcontext)
