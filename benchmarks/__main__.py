"""Run every benchmark: ``python -m benchmarks [--quick]``; exit 1 if any results disagreed."""

from __future__ import annotations

import sys
import time

from benchmarks import (
    burst,
    burst_daemon,
    concordance,
    kmeans,
    ks_sketch,
    latency,
    memory,
    originality,
    reader,
    round_scale,
)
from benchmarks._timing import parse_quick


def main() -> int:
    quick = parse_quick(__doc__)
    start = time.perf_counter()
    failed = [
        module.__name__
        for module in (
            originality,
            ks_sketch,
            concordance,
            kmeans,
            reader,
            burst,
            burst_daemon,
            latency,
            memory,
            round_scale,
        )
        if not module.main(quick)
    ]
    print(f"\n{'quick ' if quick else ''}benchmarks done in {time.perf_counter() - start:.0f} s")
    if failed:
        print(f"RESULTS DISAGREE in: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
