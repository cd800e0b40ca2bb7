"""``keyed_reads.update_by_id`` over more ids than one ``$in`` lists (``IN_BATCH``).

Held: missing, repeated, string and ObjectId ids mixed over several batches equal montydb's
``update_one`` each (its memory engine as reference); a non-ObjectId/str hashable id refuses
the whole batch. Broken (low; pre-existing, not 73ca99c's): an unhashable id (a list, a dict:
what a corrupt document's ``_id`` could be read back as) raises ``TypeError`` from
``dict.fromkeys``, not the documented ``ValueError``; nothing is written either way."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from montydb import MontyClient

from numerai_assets.store import open_database
from numerai_assets.store.base import IN_BATCH
from numerai_assets.store.keyed_reads import update_by_id
from numerai_assets_tests.store.conftest import embedded_settings


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Any, Any]:
    keyed = open_database(embedded_settings(tmp_path))["probe"]
    reference = MontyClient(":memory:")["numerai"][f"probe_{ObjectId()}"]
    oids = [ObjectId() for _ in range(2 * IN_BATCH + 7)]
    for collection in (keyed, reference):
        collection.insert_many([{"_id": oid, "n": 0} for oid in oids])
        collection.insert_many([{"_id": str(oid), "n": 50} for oid in oids[::9]])
    return keyed, reference


def _ids(collection: Any) -> list:
    return [doc["_id"] for doc in collection.find({"_id": {"$type": "objectId"}})]


def test_mixed_string_and_objectid_ids_over_batches_equal_update_one_each(pair) -> None:
    keyed, reference = pair
    rng = random.Random(5)
    oids = _ids(reference)
    choices = [*oids, *map(str, oids), *(ObjectId() for _ in range(IN_BATCH)), "nobody"]
    updates = [(rng.choice(choices), {"$inc": {"n": 1}}) for _ in range(4 * IN_BATCH)]
    missing = update_by_id(keyed, updates)
    expected = [o for o, u in updates if reference.update_one({"_id": o}, u).matched_count == 0]
    assert missing == expected
    assert list(keyed.find()) == list(reference.find())


@pytest.mark.parametrize("bad", [5, None, True, b"x" * 12, [1], {"k": 1}], ids=repr)
def test_an_id_neither_objectid_nor_str_raises_valueerror_and_writes_nothing(pair, bad) -> None:
    """FAILS now for [1] and {"k": 1}: TypeError (unhashable) instead of ValueError."""
    keyed, _ = pair
    before = list(keyed.find())
    updates = [(oid, {"$inc": {"n": 1}}) for oid in _ids(keyed)]
    with pytest.raises(ValueError, match="ObjectId or str"):
        update_by_id(keyed, [*updates, (bad, {"$inc": {"n": 1}})])
    assert list(keyed.find()) == before
