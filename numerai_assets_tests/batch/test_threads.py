"""limited_threads: BLAS and numba kept to a number of threads for a block, then put back."""

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_info

from numerai_assets.batch.threads import limited_threads


def blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


@numba.njit(parallel=True)
def threads_in_loop(n: int) -> int:
    seen = np.zeros(n, dtype=np.int64)
    for k in numba.prange(n):
        seen[k] = numba.get_thread_id()
    return len(np.unique(seen))


def test_one_thread_inside_and_the_old_counts_after():
    np.ones((4, 4)) @ np.ones((4, 4))  # BLAS loaded
    before_blas, before_numba = blas_threads(), numba.get_num_threads()
    with limited_threads(1):
        assert blas_threads() == {1}
        assert numba.get_num_threads() == 1
        assert threads_in_loop(10_000) == 1
    assert blas_threads() == before_blas
    assert numba.get_num_threads() == before_numba


def test_more_than_numba_has_is_what_it_has_and_none_changes_nothing():
    before = numba.get_num_threads()
    with limited_threads(10_000):
        assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    with limited_threads(None):
        assert numba.get_num_threads() == before


def test_put_back_when_the_block_raises():
    before = numba.get_num_threads()
    with pytest.raises(RuntimeError), limited_threads(1):
        raise RuntimeError("step failed")
    assert numba.get_num_threads() == before


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_refused(threads):
    with pytest.raises(ValueError, match="positive whole number"), limited_threads(threads):
        pass
