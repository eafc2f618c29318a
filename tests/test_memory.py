"""Out-of-memory and 32-bit BLAS limits: clean Python exceptions raised before any parallel work,
never a C++ exception escaping an OpenMP region (std::terminate, SIGABRT)."""
from __future__ import annotations

import numpy as np
import pytest

import fastconv as fc
from helpers import assert_close, raises_exactly


def _memory_bytes() -> int:
    """RAM plus swap: a larger request cannot succeed unless the kernel always overcommits."""
    total = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(("MemTotal:", "SwapTotal:")):
                total += int(line.split()[1]) * 1024
    return total


def _always_overcommits() -> bool:
    with open("/proc/sys/vm/overcommit_memory") as f:
        return f.read().strip() == "1"


def _lazy_zeros(shape):
    """Untouched zero pages: a huge input costs no memory unless the kernel reads it."""
    try:
        return np.zeros(shape, np.float32)
    except MemoryError:
        pytest.skip(f"this machine refuses even a lazy {shape} float32 array")


def test_issue_reproducer_conv_scratch_is_a_memory_error():
    # Once SIGABRT: std::bad_alloc thrown inside the OpenMP region. One image, so one thread's
    # scratch: 256*256 im2col rows by 769*769 output columns of float32.
    need = 256 * 256 * 769 * 769 * 4
    if _always_overcommits() or _memory_bytes() >= need:
        pytest.skip("this machine might really allocate 155 GB")
    with raises_exactly(MemoryError,
                        f"conv2d_forward: out of memory allocating {need} bytes of im2col scratch"):
        fc.conv2d(np.zeros((1, 1, 1024, 1024), "f4"), np.zeros((1, 1, 256, 256), "f4"))


def test_scratch_beyond_the_address_space_is_a_memory_error_forward_and_backward():
    # 600 TB: more than any x86-64 or arm64 process can map, whatever the overcommit policy.
    x, w = _lazy_zeros((1, 1, 8192, 8192)), np.zeros((1, 1, 2048, 2048), "f4")
    need = 2048 * 2048 * 6145 * 6145 * 4
    with raises_exactly(MemoryError,
                        f"conv2d_forward: out of memory allocating {need} bytes of im2col scratch"):
        fc.ops.conv2d_forward(x, w)
    dy = _lazy_zeros((1, 1, 6145, 6145))
    with raises_exactly(MemoryError,
                        f"conv2d_backward: out of memory allocating {need} bytes of im2col scratch"):
        fc.ops.conv2d_backward(x, w, dy, need_dx=False, need_db=False)


def test_ops_still_work_after_a_memory_error():
    x, w = _lazy_zeros((1, 1, 8192, 8192)), np.zeros((1, 1, 2048, 2048), "f4")
    with pytest.raises(MemoryError):
        fc.conv2d(x, w)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 9, 9)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    assert_close(fc.conv2d(x, w), fc.reference.conv2d_forward(x, w), reduction=27)


def test_scratch_size_query_does_not_wrap():
    # Once a small wrapped-around number.
    x, w = np.ones((1, 1, 8, 8), "f4"), np.ones((1, 1, 3, 3), "f4")
    message = ("x and w with this stride, padding and dilation must give an output of fewer "
               "than 2**60 elements; got output shape (1, 1, 2147483654, 2147483654)")
    with raises_exactly(ValueError, message):
        fc.ops.conv2d_scratch_bytes(x, w, padding=2**30)
    # Within 2**60 elements but past what one 32-bit GEMM can take.
    message = ("the output plane oh*ow must be at most 2147483647 (the 32-bit BLAS limit); "
               "got 131078*131078 from x.shape[2:] and the geometry")
    with raises_exactly(ValueError, message):
        fc.ops.conv2d_scratch_bytes(x, w, padding=2**16)
    # Large but representable: the exact byte count (one thread's columns and GEMM matrix).
    plane = (8 + 2 * 2**14 - 2) ** 2
    assert fc.ops.conv2d_scratch_bytes(x, w, padding=2**14) >= (9 + 1) * plane * 4


def test_issue_reproducer_dense_beyond_32_bit_blas_is_a_value_error():
    # Once SIGABRT: the 32-bit BLAS check threw inside gemm_parallel's OpenMP region. Now it is
    # refused before any work (the inputs' zero pages are never touched).
    x, w = _lazy_zeros((1, 2**31)), _lazy_zeros((2**31, 1))
    message = ("x.shape[1] (input features) must be at most 2147483647 (the 32-bit BLAS limit); "
               "got 2147483648")
    with raises_exactly(ValueError, message):
        fc.dense(x, w)
    # dense_backward likewise, before allocating anything: the test below.


def _address_space_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    pytest.skip("no VmSize in /proc/self/status")


def test_dense_backward_checks_the_blas_limit_before_allocating_its_outputs():
    # Once: dx and dw (8 GiB each) were allocated, and poisoned by the tests, before the same
    # refusal. With the address space capped 2 GiB above what x and w already take, any output
    # allocation fails (a MemoryError, not the ValueError), so the order is what is tested.
    resource = pytest.importorskip("resource")
    x, w = _lazy_zeros((1, 2**31)), _lazy_zeros((2**31, 1))
    dy = np.zeros((1, 1), np.float32)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _address_space_bytes() + 2**31
    if hard != resource.RLIM_INFINITY and hard < cap:
        pytest.skip("the address-space limit is already below the cap")
    message = ("x.shape[1] (input features) must be at most 2147483647 (the 32-bit BLAS limit); "
               "got 2147483648")
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        with raises_exactly(ValueError, message):
            fc.ops.dense_backward(x, w, dy)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
