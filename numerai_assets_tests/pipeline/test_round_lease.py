"""``orphaned``: when the sensor may report a started run dead, as a plain function."""

from datetime import datetime, timedelta, timezone

import pytest

from numerai_assets.pipeline.round_lease import orphaned

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)
LEASE = timedelta(seconds=60)


def lease(owner: str, until: datetime) -> dict:
    return {"owner": owner, "host": "h", "pid": 1, "until": until}


@pytest.mark.parametrize(
    ("held", "last_event", "dead"),
    [
        (lease("run", NOW + timedelta(seconds=5)), None, False),  # renewing
        (lease("run", NOW - timedelta(seconds=1)), None, True),  # stopped renewing
        (lease("run", (NOW - timedelta(seconds=1)).replace(tzinfo=None)), None, True),  # naive
        # Never took the lease (killed before its first step): dead once silent for a lease.
        (None, NOW - timedelta(seconds=61), True),
        (None, NOW - timedelta(seconds=59), False),
        (None, None, False),  # logged nothing at all: nothing to judge by
        (lease("other", NOW + timedelta(seconds=30)), NOW - timedelta(seconds=61), True),
        # A silent run whose lease is still running keeps it (the lease is the evidence).
        (lease("run", NOW + timedelta(seconds=30)), NOW - timedelta(seconds=600), False),
    ],
)
def test_a_started_run_is_dead_when_its_lease_or_its_silence_says_so(held, last_event, dead):
    why = orphaned(held, "run", NOW, last_event=last_event, lease_length=LEASE)
    assert (why is not None) is dead


def test_without_its_last_event_only_the_lease_decides():
    assert orphaned(None, "run", NOW) is None
    assert orphaned(lease("run", NOW - timedelta(seconds=1)), "run", NOW) is not None
