"""Shared by the benchmarks: a best-of-N timer, aligned output lines, and the command line.

Best of a few repeats, not the mean: on a shared machine the noise only ever adds time, so the
fastest run is the closest to what the code costs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba

LABEL_WIDTH = 52


@dataclass(frozen=True)
class Timing:
    seconds: float  # the best run
    result: Any  # what the last run returned, to check against the baseline


def best_of(fn: Callable[[], Any], *, repeats: int = 3, warmup: bool = True) -> Timing:
    """Best wall time of ``repeats`` calls of ``fn``, after one untimed call if ``warmup``.

    The warm-up call loads numba's on-disk cache (or compiles) and touches the arrays once.
    """
    if warmup:
        fn()
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return Timing(best, result)


def seconds(value: float) -> str:
    if value >= 1:
        return f"{value:8.2f} s "
    if value >= 1e-3:
        return f"{value * 1e3:8.1f} ms"
    return f"{value * 1e6:8.1f} us"


def line(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<{LABEL_WIDTH}}{value}" + (f"   {note}" if note else ""), flush=True)


def ratio(baseline: float, fast: float, goal: str = "") -> None:
    line("ratio (baseline / fast)", f"{baseline / fast:8.1f}x", goal)


def header(title: str) -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n== {title}", flush=True)
    print(
        f"   {os.cpu_count()} cores, numba threads {numba.get_num_threads()}, "
        f"load average {load:.2f} at start",
        flush=True,
    )


class Checks:
    """Collects agreement checks between the fast path and the baseline, printing each."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def __call__(self, ok: bool, what: str) -> None:
        print(f"  {'ok      ' if ok else 'MISMATCH'}  {what}", flush=True)
        if not ok:
            self.failures.append(what)

    @property
    def ok(self) -> bool:
        return not self.failures


def parse_quick(description: str) -> bool:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a fast look")
    return parser.parse_args().quick


def run_one(main: Callable[[bool], bool], description: str) -> None:
    """Entry point of a single benchmark module: exit 1 if its results disagreed."""
    sys.exit(0 if main(parse_quick(description)) else 1)
