"""A reader meeting the filesystem IO manager's write of the round's data half way, on purpose.

Dagster's pickling filesystem IO manager pickles a value into an open file with ``pickle.dump``
and reads it back with ``pickle.load``. :func:`hooked_pickle` makes the dump of
``competition_data`` write half of its pickle, call ``mid_write()`` and then write the rest, and
calls ``after_load()`` once a load of ``competition_data`` has returned or failed. Where the bytes
go is left as the IO manager decides, so a reader during the pause sees what a reader sees during
any write of the round's data, whose window is otherwise a few milliseconds wide.

Run as a module, it is one side of two concurrent rescores of a round, coordinated through
marker files in ``MARKERS`` (``python -m numerai_assets_tests.pipeline.torn_writes ROLE MARKERS
ROUND``, exit status that of ``numerai-assets rescore``):

- ``rewrite``: ``rescore --round ROUND --in-process`` (rematerializes the round's data); its write
  of the round's data stops half way, touches ``MARKERS/half-written`` and waits for
  ``MARKERS/read`` before finishing;
- ``read``: waits for ``MARKERS/half-written``, then ``rescore --round ROUND --scores-only
  --in-process``, which loads the round's data as every scoring run does; touches
  ``MARKERS/read`` after that load;
- ``plain``: ``rescore --round ROUND --in-process``, nothing hooked.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dagster._core.storage import fs_io_manager

ASSET = "competition_data"
WAIT_SECONDS = 60


class _HookedPickle:
    """The ``pickle`` module as the IO manager's module sees it, hooked for the round's data."""

    def __init__(
        self, mid_write: Callable[[], None] | None, after_load: Callable[[], None] | None
    ) -> None:
        self._mid_write = mid_write
        self._after_load = after_load

    def dump(self, obj: Any, file: Any, protocol: int | None = None) -> None:
        data = pickle.dumps(obj, protocol)
        if self._mid_write is None or ASSET not in str(getattr(file, "name", "")):
            file.write(data)
            return
        file.write(data[: len(data) // 2])
        file.flush()
        self._mid_write()
        file.write(data[len(data) // 2 :])

    def load(self, file: Any, **kwargs: Any) -> Any:
        try:
            return pickle.load(file, **kwargs)
        finally:
            if self._after_load is not None and ASSET in str(getattr(file, "name", "")):
                self._after_load()

    def __getattr__(self, name: str) -> Any:
        return getattr(pickle, name)


@contextlib.contextmanager
def hooked_pickle(
    *,
    mid_write: Callable[[], None] | None = None,
    after_load: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Meanwhile, the IO manager's writes of the round's data call ``mid_write()`` half way and
    its loads of it call ``after_load()`` when done."""
    fs_io_manager.pickle = _HookedPickle(mid_write, after_load)  # type: ignore[assignment]
    try:
        yield
    finally:
        fs_io_manager.pickle = pickle


def _wait_for(marker: Path) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def main() -> int:
    role, markers, round_key = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    from numerai_assets.cli import main as command

    rescore = ["rescore", "--round", round_key, "--in-process"]
    if role == "plain":
        return command(rescore)
    if role == "rewrite":

        def half_written() -> None:
            (markers / "half-written").touch()
            _wait_for(markers / "read")

        with hooked_pickle(mid_write=half_written):
            return command(rescore)
    assert role == "read", role
    _wait_for(markers / "half-written")
    with hooked_pickle(after_load=(markers / "read").touch):
        return command([*rescore, "--scores-only"])


if __name__ == "__main__":
    sys.exit(main())
