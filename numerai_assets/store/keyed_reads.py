"""Reads by ``_id`` on the embedded store read only those documents, not the whole collection.

montydb 2.5 keeps each collection in a sqlite table whose primary key is the BSON encoding of
``_id``, but answers every query, and finds the target of every update, by decoding every row and
filtering in Python: a read or write of one submission costs the whole round (25 ms at 2,000
submissions), and a late upload at 2,000, which re-decides every later submission, cost minutes
in writes alone. :func:`install` (called once, by :mod:`.connection`) narrows what montydb reads
when a filter pins ``_id``:

- montydb's sqlite cursor reads only the rows of the pinned keys (``WHERE k IN (...)``, in table
  order like a scan) and reads every row otherwise;
- the scan montydb's ``update_one``/``update_many`` use to find their targets hands its filter to
  that cursor (it passed none).

Results are unchanged by construction: what is read is a superset of what matches, and montydb's
own filter (``QueryFilter``) still decides on every document read. ``_id`` is pinned by
``{"_id": v}``, ``{"_id": {"$eq": v}}`` or ``{"_id": {"$in": [v, ...]}}`` beside any other
conditions, when every ``v`` is an ``ObjectId`` or a ``str``: for those types MongoDB's equality
is equality of the BSON encoding (numbers are not: ``5``, ``5.0`` and ``Int64(5)`` are equal with
three encodings, so a number reads every row). One difference, on documents MongoDB cannot
hold: montydb stores an array ``_id`` (MongoDB refuses one) and a scan matches its elements; a
pinned read does not, as MongoDB would not; nor does it find a row whose key is not the encoding
of its own ``_id`` (only a writer other than montydb could make one). A pinned read with
``max_scan`` (the table's first rows) or of a string BSON cannot encode scans, as before. No
Dagster here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from bson import ObjectId
from bson.errors import BSONError
from montydb.base import validate_ok_for_update
from montydb.collection import MontyCollection
from montydb.cursor import MontyCursor
from montydb.engine.field_walker import FieldWalker
from montydb.engine.queries import QueryFilter
from montydb.engine.update import Updator
from montydb.storage import sqlite as montydb_sqlite
from montydb.types import bson as montydb_bson

from numerai_assets.store.base import id_batches

PINNABLE = (ObjectId, str)
# SQLite's limit on a statement's parameters is 999 before 3.32 (32,766 after).
_KEYS_PER_STATEMENT = 500
_SELECT_KEYS = "SELECT rowid, v FROM [{table}] WHERE k IN ({marks}) ORDER BY rowid"


def pinned_ids(spec: Any) -> list | None:
    """The ``_id`` values ``spec`` restricts a match to, or ``None`` when it does not.

    Only a top-level ``_id`` condition counts (anything under ``$or``, ``$and``, ``$nor`` may
    match other documents), and only when every value is an exact ``ObjectId`` or ``str``
    (:data:`PINNABLE`). ``[]`` means nothing can match.
    """
    if not isinstance(spec, Mapping) or "_id" not in spec:
        return None
    condition = spec["_id"]
    if isinstance(condition, Mapping):
        if len(condition) != 1:
            return None
        ((operator, operand),) = condition.items()
        if operator == "$eq":
            values = [operand]
        elif operator == "$in" and isinstance(operand, (list, tuple)):
            values = list(operand)
        else:
            return None
    else:
        values = [condition]
    if not all(type(value) in PINNABLE for value in values):
        return None
    return values


class KeyedSQLiteCursor(montydb_sqlite.SQLiteCursor):
    """montydb's sqlite cursor, reading only the pinned rows when its filter pins ``_id``."""

    def __init__(self, collection: Any, subject: Any) -> None:
        super().__init__(collection, subject)
        self._pinned = pinned_ids(getattr(subject, "_spec", None))

    def query(self, max_scan: int) -> Iterator[dict]:
        # ``max_scan`` limits a scan to the table's first rows, not the pinned ones: scan.
        if self._pinned is None or max_scan:
            return super().query(max_scan)
        try:
            keys = list(dict.fromkeys(montydb_bson.id_encode(value) for value in self._pinned))
        except (ValueError, BSONError):  # a str BSON cannot hold (a lone surrogate): no such row
            return super().query(max_scan)
        return (self._decode_doc(v) for _, v in self._read_keys(keys))

    def _read_keys(self, keys: list) -> list:
        """The rows of ``keys`` as ``(rowid, v)``, in table order (a scan's order), read in one
        transaction: one snapshot, like a scan's one statement, however many statements."""
        path = self._col_path
        if not keys or not os.path.isfile(path):
            return []
        rows: list = []
        with self._conn._connect(path) as connection:
            connection.execute("BEGIN")
            try:
                for start in range(0, len(keys), _KEYS_PER_STATEMENT):
                    chunk = keys[start : start + _KEYS_PER_STATEMENT]
                    sql = _SELECT_KEYS.format(
                        table=montydb_sqlite.SQLITE_RECORD_TABLE,
                        marks=",".join("?" * len(chunk)),
                    )
                    rows.extend(connection.execute(sql, chunk).fetchall())
            finally:
                connection.rollback()  # read only: nothing to keep
        rows.sort()
        return rows


_original_scan = MontyCollection._internal_scan_query


def _scan_for_update(self: MontyCollection, query_spec: Mapping) -> Iterator[Any]:
    """montydb's scan for an update's targets, reading only the pinned rows when it can.

    Keeps montydb's protocol: the first match is yielded twice (once to test that there is one),
    then every match in order.
    """
    if pinned_ids(query_spec) is None:
        yield from _original_scan(self, query_spec)
        return
    queryfilter = QueryFilter(query_spec)
    matched = []
    for doc in self._storage.query(MontyCursor(self, filter=query_spec), 0):
        if queryfilter(doc):
            matched.append(queryfilter.fieldwalker)
    if matched:
        yield matched[0]
        yield from matched


def update_by_id(collection: MontyCollection, updates: Sequence[tuple[Any, Mapping]]) -> list:
    """Apply each ``(_id, update)`` of ``updates`` (in order) to the document with that ``_id``:
    one keyed read of them all, each update montydb's own (``Updator``, as ``update_one``
    applies it), one sqlite transaction writing the changed documents. Returns the ids no
    document had, in order.

    The embedded store's bulk write: ``update_one`` per document costs a connection, a read and
    a commit each (2 ms, 8 s for a batch of 2,000 pended and then decided). Like MongoDB's
    unordered ``bulk_write``, each document's update is whole and the batch is not one
    transaction against other writers: callers hold the store's write lock. Raises
    ``ValueError`` for an id that is not an ``ObjectId`` or ``str`` (:func:`pinned_ids`).
    """
    if pinned_ids({"_id": {"$in": [oid for oid, _ in updates]}}) is None:
        raise ValueError("update_by_id takes ObjectId or str ids only")
    ids = list(dict.fromkeys(oid for oid, _ in updates))  # hashable: ObjectId or str
    found = {
        doc["_id"]: doc
        for batch in id_batches(ids)
        for doc in collection.find({"_id": {"$in": batch}})
    }
    changed: dict[Any, dict] = {}
    for oid, update in updates:
        if oid not in found:
            continue
        validate_ok_for_update(update)
        updator = Updator(update)
        collection._no_id_update(updator, {"_id": oid})
        fieldwalker = FieldWalker(found[oid])
        if updator(fieldwalker):
            found[oid] = changed[oid] = fieldwalker.doc
    if changed:
        collection._storage.update_many(collection, list(changed.values()))
    return [oid for oid, _ in updates if oid not in found]


def install() -> None:
    """Make montydb's sqlite engine read only pinned rows (idempotent; process-wide)."""
    montydb_sqlite.SQLiteCollection.contractor_cls = KeyedSQLiteCursor
    MontyCollection._internal_scan_query = _scan_for_update
