"""Outputs of 32 MiB or more come from a small cache of freed blocks (csrc/python/
output_blocks.h), so that an op returning one does not page-fault fresh memory on every call.
The arrays behave as any other: right values, writeable, alive as long as a view of them is."""
import gc

import numpy as np

import fastconv.ops as ops
from fastconv._native import C

BIG = (9, 1024, 1024)  # 36 MiB of float32: above the 32 MiB line
SMALL = (7, 1024, 1024)  # 28 MiB: below it, plain numpy memory


def test_a_big_output_is_right_writeable_and_its_block_is_reused():
    x = np.random.default_rng(0).standard_normal(BIG).astype(np.float32)
    y = ops.relu_forward(x)  # poisoned before the kernel runs (conftest): every element written
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    assert y.flags.writeable and y.ctypes.data % 64 == 0
    y[0, 0, 0] = 7.0
    address = y.ctypes.data
    blocks, _ = C._cached_output_blocks()
    del y
    assert C._cached_output_blocks()[0] == min(blocks + 1, 4)
    again = ops.relu_forward(x)
    assert again.ctypes.data == address  # the freed block, not fresh pages
    np.testing.assert_array_equal(again, np.maximum(x, 0))


def test_a_view_keeps_the_block_alive():
    x = np.ones(BIG, np.float32)
    y = ops.relu_forward(x)
    before = C._cached_output_blocks()[0]
    view = y[::2]
    del y
    gc.collect()
    assert C._cached_output_blocks()[0] == before
    assert view.sum() == view.size  # still the output's memory, still intact
    del view
    assert C._cached_output_blocks()[0] == min(before + 1, 4)


def test_the_cache_keeps_at_most_four_blocks_of_the_right_size():
    x = np.ones(BIG, np.float32)
    outputs = [ops.relu_forward(x) for _ in range(6)]
    del outputs
    blocks, nbytes = C._cached_output_blocks()
    assert blocks == 4 and nbytes == 4 * x.nbytes
    # Another size gets its own memory, and below 32 MiB the cache is not used at all.
    other = ops.relu_forward(np.ones((10, 1024, 1024), np.float32))
    assert C._cached_output_blocks() == (4, 4 * x.nbytes)
    small = ops.relu_forward(np.ones(SMALL, np.float32))
    assert small.flags.owndata and C._cached_output_blocks() == (4, 4 * x.nbytes)
    del other, small
    assert C._cached_output_blocks()[0] == 4
