"""Which database the submissions live in, from the one setting ``MONGO_URL``.

``mongodb://`` or ``mongodb+srv://`` is production MongoDB. Unset (or ``montydb:///abs/path``) is
an embedded montydb store on disk with its sqlite engine, so a laptop or CI needs no server and
several processes (Dagster runs, the webserver) can share it.

montydb applies every update as "read the whole document, change it in Python, write it back",
with no lock, and creates collections racily; :func:`write_lock` and the locked set-up here are
what make it safe to share between processes.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pymongo
from montydb import MontyClient, set_storage
from montydb.database import MontyDatabase

from numerai_assets.settings import Settings
from numerai_assets.store import keyed_reads
from numerai_assets.store.documents import COLLECTIONS

MONGO_SCHEMES = ("mongodb", "mongodb+srv")
EMBEDDED_SCHEME = "montydb"
EMBEDDED_STORAGE = "sqlite"
LOCK_FILE = ".numerai_assets.lock"
_MONTY_STORAGE_FILE = ".monty.storage"  # montydb's own marker naming the storage engine

_mongo_clients: dict[str, Any] = {}
_mongo_clients_lock = threading.Lock()
_thread = threading.local()  # montydb clients are not thread-safe: one per thread
_memory_lock = threading.RLock()
keyed_reads.install()  # reads and writes by _id read one row, not the collection


def open_database(settings: Settings | None = None) -> Any:
    """The submissions database named by ``settings`` (default: the environment).

    Returns a pymongo ``Database`` or a montydb ``MontyDatabase``; both read datetimes back
    timezone-aware. Clients are cached: MongoDB's per process, montydb's per thread.
    """
    settings = Settings.from_env() if settings is None else settings
    url = settings.mongo_url
    if url is None:
        return _embedded(None, settings.embedded_store_dir, settings.mongo_db_name)
    scheme = url_scheme(url)
    if scheme in MONGO_SCHEMES:
        return _mongo_client(url)[settings.mongo_db_name]
    if scheme == EMBEDDED_SCHEME:
        return _embedded(url, embedded_path(url), settings.mongo_db_name)
    raise ValueError(
        f"unsupported MONGO_URL scheme {scheme!r} in {redact_url(url)!r}: expected mongodb://, "
        "mongodb+srv://, montydb:///absolute/path, or MONGO_URL unset for the embedded store"
    )


def url_scheme(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise ValueError(
            f"MONGO_URL must be a URL such as mongodb://host:27017, got {redact_url(url)!r}"
        )
    return scheme.lower()


def redact_url(url: str) -> str:
    """``url`` without credentials or query string, safe for error messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    rest = rest.split("?", 1)[0]
    if "@" in rest:  # the last "@" ends the user info, even if the password holds "@" or "/"
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"


def embedded_path(url: str) -> Path:
    """The directory of a ``montydb:///abs/path`` URL."""
    path = url.partition("://")[2]
    if not path.startswith("/") or "?" in path:
        raise ValueError(
            f"a montydb MONGO_URL must name an absolute directory, like "
            f"montydb:///var/lib/numerai/store, got {redact_url(url)!r}"
        )
    return Path(path)


def write_lock(database: Any) -> AbstractContextManager[None]:
    """Hold this around every write (and read-modify-write) to ``database``.

    For an on-disk montydb store it is an exclusive ``flock`` on a file in the store, which
    serialises writers across processes and threads; montydb's updates are not atomic otherwise
    (two processes each ``$inc``-ing a field 200 times end at 200, not 400). MongoDB and mongomock
    apply each update atomically, so there it is a no-op. Not re-entrant: never nest it.
    """
    if not isinstance(database, MontyDatabase):
        return nullcontext()
    repository = database.client.address
    if repository == ":memory:":
        return _memory_lock
    return _file_lock(Path(repository) / LOCK_FILE)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # per open file: also excludes other threads
        yield
    finally:
        os.close(fd)  # releases the lock


def _mongo_client(url: str) -> Any:
    with _mongo_clients_lock:
        client = _mongo_clients.get(url)
        if client is None:
            client = _mongo_clients[url] = pymongo.MongoClient(url, tz_aware=True)
        return client


def _embedded(url: str | None, path: Path, db_name: str) -> Any:
    clients = _thread.__dict__.setdefault("montydb_clients", {})
    key = (url, str(path))
    client = clients.get(key)
    if client is None:
        client = clients[key] = _open_montydb(path)
    prepared = _thread.__dict__.setdefault("montydb_prepared", set())
    if (key, db_name) not in prepared:
        _create_collections(client[db_name])
        prepared.add((key, db_name))
    return client[db_name]


def _open_montydb(path: Path) -> Any:
    """A montydb client on the sqlite store at ``path``, configuring a new store first.

    Under the lock because montydb writes its config files in place: a process opening the store
    while another configures it could read them empty and fall back to the flatfile engine.
    """
    path.mkdir(parents=True, exist_ok=True)
    with _file_lock(path / LOCK_FILE):
        marker = path / _MONTY_STORAGE_FILE
        if not marker.exists():
            set_storage(str(path), storage=EMBEDDED_STORAGE, use_bson=True)
        engine = marker.read_text().strip()
        if engine != EMBEDDED_STORAGE:
            raise ValueError(
                f"the embedded store at {path} uses montydb's {engine!r} engine; "
                f"only {EMBEDDED_STORAGE!r} is supported (move the folder away to start afresh)"
            )
        return MontyClient(str(path), tz_aware=True)


def _create_collections(database: Any) -> None:
    """Create the collections up front, under the lock.

    montydb creates a collection's sqlite file on first write; a reader in another process can
    see the file before its table exists and fail with "no such table".
    """
    with write_lock(database):
        existing = set(database.list_collection_names())
        for name in COLLECTIONS:
            if name not in existing:
                database.create_collection(name)
