"""A forked child can run parallel ops: libgomp's thread pool does not survive fork(), and the
child's first parallel region used to wait for the parent's threads forever."""
from __future__ import annotations

import multiprocessing
import os
import pickle
import select
import signal
import time

import numpy as np
import pytest

import fastconv as fc
from fastconv._native import C

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

TIMEOUT_S = 60  # a hang fails the test instead of the suite

_rng = np.random.default_rng(1)
X = _rng.standard_normal((64, 8, 16, 16)).astype(np.float32)
W = _rng.standard_normal((16, 8, 3, 3)).astype(np.float32)


@pytest.fixture
def two_threads():
    before = fc.get_num_threads()
    fc.set_num_threads(2)
    yield
    fc.set_num_threads(before)


def _child_work():
    """What a child reports: its conv result and the team its parallel regions get."""
    return fc.conv2d(X, W), C._measured_team()


def _collect(pid: int, read_end: int) -> tuple[bytes, int]:
    """All the child writes and its exit code; a child silent for TIMEOUT_S is killed."""
    deadline = time.monotonic() + TIMEOUT_S
    chunks = []
    with os.fdopen(read_end, "rb", buffering=0) as f:
        while True:
            ready, _, _ = select.select([f], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail(f"the forked child hung for {TIMEOUT_S} s on its first parallel op")
            chunk = f.read(1 << 20)
            if not chunk:  # EOF: the child closed its end
                break
            chunks.append(chunk)
    return b"".join(chunks), os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_os_fork_child_runs_parallel_ops(two_threads):
    ref = fc.conv2d(X, W)  # the parent's pool now exists
    assert C._measured_team() == 2
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.close(read_end)
            with os.fdopen(write_end, "wb") as f:
                pickle.dump(_child_work(), f)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    data, code = _collect(pid, read_end)
    assert code == 0
    y, team = pickle.loads(data)
    np.testing.assert_array_equal(y, ref)
    assert team == 2  # the child really ran on a fresh pool, not on one thread
    # And the parent carries on, with its threads.
    np.testing.assert_array_equal(fc.conv2d(X, W), ref)
    assert C._measured_team() == 2


def _pool_task(i):
    y, team = _child_work()
    return i, y, team


def test_multiprocessing_fork_pool_runs_parallel_ops(two_threads):
    ref = fc.conv2d(X, W)
    pool = multiprocessing.get_context("fork").Pool(2)
    try:
        results = pool.map_async(_pool_task, range(4)).get(timeout=TIMEOUT_S)
    except multiprocessing.TimeoutError:
        pytest.fail(f"a fork pool worker hung for {TIMEOUT_S} s on its first parallel op")
    finally:
        pool.terminate()
        pool.join()
    assert sorted(i for i, _, _ in results) == [0, 1, 2, 3]
    for _, y, team in results:
        np.testing.assert_array_equal(y, ref)
        assert team == 2
    np.testing.assert_array_equal(fc.conv2d(X, W), ref)
    assert C._measured_team() == 2


def test_fork_hooks_release_the_pool():
    # The before-fork hook reports what omp_pause_resource_all returned: 0 is the measured fix.
    before = fc.get_num_threads()
    assert C._before_fork() == 0
    C._after_fork_in_child()  # with the pool released, the child keeps the count
    assert fc.get_num_threads() == before
    assert C._measured_team() == before  # the next region builds a new pool
