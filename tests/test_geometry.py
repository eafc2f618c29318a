"""The shared index math (csrc/include/fastconv/geometry.h), which the CUDA kernels compile too,
checked against brute force. Pooling windows are covered in test_pool.py."""
import itertools

import numpy as np
import pytest

from fastconv._native import C
from helpers import raises_exactly

GRID = itertools.product(range(1, 9), range(1, 5), range(1, 4), range(0, 3), range(1, 4))


def brute_conv_out(size, k, s, p, d):
    """Count the window positions whose taps all lie in the padded input."""
    reach = d * (k - 1) + 1
    return sum(1 for start in range(0, size + 2 * p, s) if start + reach <= size + 2 * p)


@pytest.mark.parametrize("size,k,s,p,d", list(GRID))
def test_conv_out_size_and_inverse_mapping(size, k, s, p, d):
    out = C.conv_out_size(size, k, s, p, d)
    assert out == brute_conv_out(size, k, s, p, d)
    # conv_out_coord inverts o*s - p + t*d: each (input, tap) pair maps back to the one output
    # that reads it, or -1.
    readers = {(o * s - p + t * d, t): o for o in range(out) for t in range(k)}
    for i in range(size):
        for t in range(k):
            assert C.conv_out_coord(i, t, s, p, d, out) == readers.get((i, t), -1)


def test_conv2d_output_shape_asks_cpp():
    x = np.zeros((2, 3, 28, 20), np.float32)
    w = np.zeros((8, 3, 3, 5), np.float32)
    assert C.conv2d_output_shape(x, w, (1, 1), (1, 2), (1, 1)) == (2, 8, 28, 20)
    assert C.conv2d_output_shape(x, w, (2, 3), (0, 0), (2, 1)) == (2, 8, 12, 6)
    with raises_exactly(ValueError, "x.shape[2] (height) + 2 * padding must be at least the "
                        "kernel's reach 29 (kernel height 29, dilation 1); got height 28 with "
                        "padding 0"):
        C.conv2d_output_shape(x, np.zeros((8, 3, 29, 1), np.float32), (1, 1), (0, 0), (1, 1))
    with raises_exactly(ValueError, "w.shape[1] must be 3 (x's channels); got shape (8, 2, 3, 3)"):
        C.conv2d_output_shape(x, np.zeros((8, 2, 3, 3), np.float32), (1, 1), (0, 0), (1, 1))


# ---- at the edges of int64 ---------------------------------------------------------------------
# Every size function against exact Python integers, for values up to 2**63 - 1. Where an
# intermediate (size + 2 * padding, the kernel's reach) does not fit in int64, the answer is a
# ValueError naming the argument, never a wrapped number.

I64 = 2**63 - 1
BIG = [1, 2, 5, 2**31, 2**61, 2**62, I64]


def exact_conv_out(size, k, s, p, d):
    span = size + 2 * p - d * (k - 1) - 1
    return 0 if span < 0 else span // s + 1


def exact_pool_out(size, k, s, p, ceil_mode):
    span = size + 2 * p - k
    if span < 0:
        return 0
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:  # the last window must start inside
        out -= 1
    return out


def padding_message(size, p):
    return (f"padding must be at most {(I64 - size) // 2} for an input size of {size}, so that "
            f"size + 2 * padding fits in int64; got {p}")


@pytest.mark.parametrize("size", [1, 8, 2**62, I64])
@pytest.mark.parametrize("k", [1, 5, 2**62, I64])
def test_conv_out_size_at_int64_edges(size, k):
    for s, p, d in itertools.product([1, 3, 2**62, I64], [0, 1, 2**61, 2**62, I64],
                                     [1, 2, 2**62, I64]):
        if size + 2 * p > I64:
            with raises_exactly(ValueError, padding_message(size, p)):
                C.conv_out_size(size, k, s, p, d)
        elif d * (k - 1) + 1 > I64:
            with raises_exactly(ValueError, f"dilation must be at most {(I64 - 1) // (k - 1)} "
                                f"for a kernel size of {k}, so that dilation * (kernel size - 1)"
                                f" + 1 fits in int64; got {d}"):
                C.conv_out_size(size, k, s, p, d)
        else:
            assert C.conv_out_size(size, k, s, p, d) == exact_conv_out(size, k, s, p, d)


@pytest.mark.parametrize("size", [1, 8, 2**62, I64])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pool_geometry_at_int64_edges(size, ceil_mode):
    for k, s, p in itertools.product(BIG, [1, 3, 2**62 + 1, I64], [0, 1, 2**61 - 8, 2**62, I64]):
        if size + 2 * p > I64:
            with raises_exactly(ValueError, padding_message(size, p)):
                C.pool_out_size(size, k, s, p, ceil_mode)
            continue
        out = C.pool_out_size(size, k, s, p, ceil_mode)
        assert out == exact_pool_out(size, k, s, p, ceil_mode), (size, k, s, p)
        for o in {0, out - 1} if out > 0 else ():
            start = o * s - p
            assert C.pool_window(o, k, s, p, size) == (
                max(start, 0), min(start + k, size), min(start + k, size + p) - start)
        for i in {0, size - 1}:
            first = max(0, -(-(i + p - k + 1) // s))
            last = min(out, (i + p) // s + 1)
            assert C.pool_outputs_reading(i, k, s, p, out) == (first, max(first, last))


def test_conv_out_coord_at_int64_edges():
    for i, t, s, p, d in itertools.product([0, 7, 2**62], [0, 1, 4], [1, 3, 2**62], BIG,
                                           [1, 2**61, I64]):
        if t * d > I64:
            with raises_exactly(ValueError, f"tap * dilation must fit in int64; got tap {t} "
                                f"and dilation {d}"):
                C.conv_out_coord(i, t, s, p, d, 5)
        elif i + p > I64:
            with raises_exactly(ValueError, f"i + padding must fit in int64; got i {i} and "
                                f"padding {p}"):
                C.conv_out_coord(i, t, s, p, d, 5)
        else:
            num = i + p - t * d
            want = num // s if num >= 0 and num % s == 0 and num // s < 5 else -1
            assert C.conv_out_coord(i, t, s, p, d, 5) == want


GEOMETRY_BAD = [
    (lambda: C.conv_out_size(2**63, 1, 1, 0, 1), ValueError,
     f"size must be an int64 value in [-9223372036854775808, {I64}]; got {2**63}"),
    (lambda: C.conv_out_size(8, 3, -(2**63) - 1, 0, 1), ValueError,
     f"stride must be an int64 value in [-9223372036854775808, {I64}]; got {-(2**63) - 1}"),
    (lambda: C.conv_out_size(8, 3.0, 1, 0, 1), TypeError, "kernel must be an int; got float 3.0"),
    (lambda: C.conv_out_size(8, 3, 1, 0, True), TypeError,
     "dilation must be an int; got bool True"),
    (lambda: C.conv_out_size(0, 3, 1, 0, 1), ValueError, "size must be positive; got 0"),
    (lambda: C.conv_out_size(8, 0, 1, 0, 1), ValueError, "kernel must be positive; got 0"),
    (lambda: C.conv_out_size(8, 3, 0, 0, 1), ValueError, "stride must be positive; got 0"),
    (lambda: C.conv_out_size(8, 3, 1, -1, 1), ValueError, "padding must be >= 0; got -1"),
    (lambda: C.conv_out_size(8, 3, 1, 0, 0), ValueError, "dilation must be positive; got 0"),
    (lambda: C.pool_out_size(8, 3, 1, 0, None), TypeError,
     "ceil_mode must be a bool; got NoneType"),
    (lambda: C.pool_out_size(8, 2**64, 1, 0, False), ValueError,
     f"kernel must be an int64 value in [-9223372036854775808, {I64}]; got {2**64}"),
    (lambda: C.pool_window(5, 3, 1, 0, 6), ValueError,
     "o must be below the output size 4 (the larger of floor and ceil mode's); got 5"),
    (lambda: C.pool_window(-1, 3, 1, 0, 6), ValueError, "o must be >= 0; got -1"),
    (lambda: C.pool_window(0, 3, 1, I64, 6), ValueError, padding_message(6, I64)),
    (lambda: C.pool_outputs_reading(I64, 3, 1, 1, 4), ValueError,
     f"i + padding must fit in int64; got i {I64} and padding 1"),
    (lambda: C.pool_outputs_reading(0, 3, 1, 1, -4), ValueError, "out must be >= 0; got -4"),
    (lambda: C.conv_out_coord(-1, 0, 1, 0, 1, 4), ValueError, "i must be >= 0; got -1"),
]


@pytest.mark.parametrize("call,error,message", GEOMETRY_BAD,
                         ids=[f"{i}" for i in range(len(GEOMETRY_BAD))])
def test_geometry_helpers_reject_bad_arguments(call, error, message):
    with raises_exactly(error, message):
        call()


def test_output_shape_queries_take_shapes():
    # Shapes give what the arrays give, without allocating: a layer can ask before it has data.
    x = np.zeros((2, 3, 28, 20), np.float32)
    w = np.zeros((8, 3, 3, 5), np.float32)
    assert C.conv2d_output_shape((2, 3, 28, 20), [8, 3, 3, 5], (2, 3), (0, 0), (2, 1)) == \
        C.conv2d_output_shape(x, w, (2, 3), (0, 0), (2, 1))
    assert C.conv2d_output_shape(x, (8, 3, 3, 5), (1, 1), (1, 2), (1, 1)) == (2, 8, 28, 20)
    with raises_exactly(ValueError, "x must be 4-D (N, C, H, W); got shape (3, 28, 20)"):
        C.conv2d_output_shape((3, 28, 20), w, (1, 1), (0, 0), (1, 1))
    with raises_exactly(TypeError, "w's shape entries must be an int; got float 3.0"):
        C.conv2d_output_shape(x, (8, 3, 3.0, 5), (1, 1), (0, 0), (1, 1))
    with raises_exactly(ValueError,
                        "x.shape[3] (width) must be positive; got shape (2, 3, 28, -1)"):
        C.conv2d_output_shape((2, 3, 28, -1), w, (1, 1), (0, 0), (1, 1))


def test_pooling_returns_the_shape_of_the_shared_geometry():
    # Pooling has no shape query: the op's output shape is the geometry's, axis by axis.
    for ceil_mode in (False, True):
        y, idx = C.max_pool2d_forward(np.zeros((2, 3, 7, 6)), (2, 2), (2, 3), (0, 1), ceil_mode)
        want = (2, 3, exact_pool_out(7, 2, 2, 0, ceil_mode), exact_pool_out(6, 2, 3, 1, ceil_mode))
        assert y.shape == idx.shape == want


def test_shape_math_with_a_huge_batch():
    w = (2**30, 1, 1, 1)
    # 2**40 samples of 8x8 through 2**30 filters: the output count overflows int64.
    assert C.conv2d_output_shape((2**20, 1, 8, 8), w, (1, 1), (0, 0), (1, 1)) == (
        2**20, 2**30, 8, 8)
    with raises_exactly(ValueError, "x and w with this stride, padding and dilation must give an "
                        "output of fewer than 2**60 elements; got output shape "
                        f"({2**40}, {2**30}, 8, 8)"):
        C.conv2d_output_shape((2**40, 1, 8, 8), w, (1, 1), (0, 0), (1, 1))
    with raises_exactly(ValueError, "x must have fewer than 2**60 elements; got shape "
                        f"({I64}, 1, 8, 8)"):
        C.conv2d_output_shape((I64, 1, 8, 8), w, (1, 1), (0, 0), (1, 1))
    with raises_exactly(ValueError, "w must have fewer than 2**60 elements; got shape "
                        f"({2**20}, {2**40}, 1, 1)"):
        C.conv2d_output_shape((1, 2**40, 1, 1), (2**20, 2**40, 1, 1), (1, 1), (0, 0), (1, 1))
    # n * oh * ow: each factor fine, the product not
    with raises_exactly(ValueError, "x and w with this stride, padding and dilation must give an "
                        "output of fewer than 2**60 elements; got output shape "
                        f"(64, 1, {2**29 + 1}, {2**29 + 1})"):
        C.conv2d_output_shape((64, 1, 1, 1), (1, 1, 1, 1), (1, 1), (2**28, 2**28), (1, 1))


# ---- fastdiv.h: the GPU's division by a launch-time divisor ------------------------------------
# The GPU kernels divide by FastDivU32 wherever dividends and divisors are below 2**31 (the
# conv_out_coord and pool_outputs_reading bindings above use the same choice, so the brute-force
# tests run both policies). Here the divider itself, against Python's exact // and %, at the
# edges of its range: divisors 1, powers of two and their neighbours, 2**31, and odd values;
# dividends 0, 1, just around multiples of d and up to 2**31 - 1.

def _divisors():
    ds = {1, 2, 3, 5, 7, 9, 10, 25, 28, 49, 641, 784, 6700417, 2**31 - 1, 2**31}
    for b in range(1, 32):
        ds |= {2**b - 1, 2**b, 2**b + 1}
    rng = np.random.default_rng(7)
    ds |= set(int(v) for v in rng.integers(1, 2**31, 40))
    return sorted(d for d in ds if 1 <= d <= 2**31)


@pytest.mark.parametrize("d", _divisors())
def test_fast_divmod_equals_exact_division(d):
    top = 2**31 - 1
    rng = np.random.default_rng(d % 1000)
    near = [m * d + o for m in (1, 2, 3, top // d - 1, top // d) for o in (-1, 0, 1)]
    n = np.array([0, 1, 2, top, top - 1, d - 1, d, d + 1]
                 + [v for v in near if 0 <= v <= top]
                 + list(rng.integers(0, 2**31, 2000)), dtype=np.int64)
    n = n[(n >= 0) & (n <= top)]
    q, r = C._fast_divmod(n, d)
    np.testing.assert_array_equal(q, n // d)
    np.testing.assert_array_equal(r, n % d)


def test_fast_divmod_rejects_out_of_range():
    with raises_exactly(ValueError, "d must be at most 2**31; got 2147483649"):
        C._fast_divmod(np.zeros(1, np.int64), 2**31 + 1)
    with raises_exactly(ValueError, "n must hold values in [0, 2**31); got 2147483648"):
        C._fast_divmod(np.array([2**31], np.int64), 3)
    with raises_exactly(ValueError, "n must hold values in [0, 2**31); got -1"):
        C._fast_divmod(np.array([-1], np.int64), 3)
