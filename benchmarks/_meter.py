"""Time spent inside chosen functions, by category, by wrapping them for the duration of a run.

Only the outermost metered call is timed (a metered function calling another one counts once,
to the caller's category), so the categories never overlap and add up to at most the wall time.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any


class Meter:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.events: list[tuple[str, Any]] = []  # (category, note) recorded by ``observe``
        self._local = threading.local()

    def total(self, categories: Sequence[str] | None = None) -> float:
        keys = self.seconds if categories is None else categories
        return sum(self.seconds.get(k, 0.0) for k in keys)

    def wrap(self, category: str, fn: Callable) -> Callable:
        meter = self

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if getattr(meter._local, "active", False):
                return fn(*args, **kwargs)
            meter._local.active = True
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                meter.seconds[category] += time.perf_counter() - start
                meter.calls[category] += 1
                meter._local.active = False

        return timed

    def observe(self, category: str, fn: Callable, note: Callable[..., Any]) -> Callable:
        """Call through untimed, recording ``note(*args)`` under ``category`` (a counter)."""
        meter = self

        @functools.wraps(fn)
        def counted(*args: Any, **kwargs: Any) -> Any:
            meter.events.append((category, note(*args, **kwargs)))
            return fn(*args, **kwargs)

        return counted

    @contextmanager
    def patched(
        self,
        timed: Sequence[tuple[str, object, str]],
        observed: Sequence[tuple[str, object, str, Callable[..., Any]]] = (),
    ) -> Iterator[Meter]:
        """Wrap ``owner.name`` for each ``(category, owner, name)``; restored on exit.

        ``owner`` is a class (every instance is metered) or the module whose global the caller
        looks the function up in (``from x import f`` copies ``f`` into the caller's module).
        """
        saved = []
        try:
            for category, owner, name in timed:
                original = getattr(owner, name)
                saved.append((owner, name, original))
                setattr(owner, name, self.wrap(category, original))
            for category, owner, name, note in observed:
                original = getattr(owner, name)
                saved.append((owner, name, original))
                setattr(owner, name, self.observe(category, original, note))
            yield self
        finally:
            for owner, name, original in reversed(saved):
                setattr(owner, name, original)
