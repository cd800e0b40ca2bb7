"""How many threads the numerical libraries of this process may use, for a while.

A step of the sharded job runs beside others, one per core (the multiprocess executor) or one
per worker: if each let OpenBLAS and numba start a thread per core, the machine would run
cores² threads, and OpenBLAS's waiting threads spin. Measured on 2 cores, two phase-1 shards
of 3.9 million pairs each at once: 71 s with 2 threads each, 23 s with 1 each.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_info, threadpool_limits


@contextmanager
def limited_threads(threads: int | None) -> Iterator[None]:
    """Within the block, BLAS and OpenMP pools (through ``threadpoolctl``) and numba's parallel
    loops use at most ``threads`` threads, and never more than they use already (a limit only
    lowers: ``threadpoolctl`` alone would raise OpenBLAS to any number asked, and an inner
    block would lift an outer one); None leaves them as they are. Both are put back after.
    Limits the calling thread's numba loops (numba's limit is per thread) and the process's
    pools.

    Raises
    ------
    ValueError
        If ``threads`` is not None or a positive whole number.
    """
    if threads is None:
        yield
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive whole number, got {threads!r}")
    import numba

    caps: dict[str, int] = {}
    for pool in threadpool_info():
        api = pool["user_api"]
        caps[api] = min(caps.get(api, threads), pool["num_threads"])
    before = numba.get_num_threads()
    with threadpool_limits(limits=caps or None):
        numba.set_num_threads(min(threads, before))
        try:
            yield
        finally:
            numba.set_num_threads(before)
