"""Write-then-rename, so a reader never sees a half-written file under the final name."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a not-yet-existing temp path beside ``dest``; rename it onto ``dest`` on success.

    The temp file is in ``dest``'s own directory so the rename stays on one filesystem (and is
    atomic there). The caller creates the file, so it gets the usual umask permissions. On any
    error the temp file is removed and ``dest`` is left as it was.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
