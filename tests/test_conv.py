import numpy as np
import pytest

import fastconv as fc
import fastconv.ops as ops
import fastconv.reference as ref
from helpers import DTYPES, assert_close, assert_grad, numerical_grad, rand

# (N, C, H, W, K, kh, kw, stride, padding, dilation, bias)
CASES = [
    (1, 1, 5, 5, 1, 1, 1, 1, 0, 1, False),             # smallest: 1x1, one channel, batch 1
    (2, 3, 7, 9, 4, 3, 3, 1, 1, 1, True),              # the common 3x3 "same" conv
    (4, 16, 6, 5, 8, 3, 3, 1, 1, 1, True),             # many channels, odd non-square image
    (3, 3, 9, 7, 5, 5, 5, 1, 2, 1, True),
    (2, 3, 11, 10, 2, 7, 7, 1, 3, 1, True),            # 7x7, padding half the kernel
    (2, 4, 8, 9, 3, 2, 5, 1, (1, 2), 1, True),         # non-square kernel
    (2, 3, 13, 6, 4, 7, 1, 1, (3, 0), 1, False),
    (2, 3, 10, 11, 4, 2, 2, 3, 0, 1, True),            # stride > kernel: inputs skipped
    (2, 3, 11, 12, 4, 2, 2, (3, 4), 1, 1, False),
    (2, 3, 9, 9, 4, 3, 3, 2, 1, 2, True),              # dilation 2 with stride and padding
    (1, 5, 13, 11, 2, 3, 3, 1, 3, 3, True),            # dilation 3
    (5, 3, 7, 7, 6, 4, 4, 2, 2, 1, True),              # even kernel
    (2, 1, 6, 8, 16, 3, 3, 1, 1, 1, False),            # 1 -> 16 channels
    (2, 16, 5, 7, 1, 1, 1, 1, 0, 1, True),             # 16 -> 1 channel, 1x1
    (3, 2, 8, 10, 3, 3, 2, (2, 1), (1, 0), (1, 2), True),  # every pair mixed
    (1, 3, 1, 9, 2, 1, 3, 1, (0, 1), 1, True),         # a one-row image
    (6, 3, 5, 5, 4, 5, 5, 1, 0, 1, True),              # kernel covers the image: 1x1 output
    (2, 2, 7, 9, 3, 6, 3, 1, (3, 1), 1, True),
]


def _pairs(v):
    return (v, v) if isinstance(v, int) else v


def _data(case, dtype, seed=0):
    n, c, h, w_, k, kh, kw, stride, padding, dilation, bias = case
    rng = np.random.default_rng(seed)
    x = rand(rng, n, c, h, w_, dtype=dtype)
    w = rand(rng, k, c, kh, kw, dtype=dtype)
    b = rand(rng, k, dtype=dtype) if bias else None
    geo = dict(stride=stride, padding=padding, dilation=dilation)
    return x, w, b, geo


def _f64(a):
    return None if a is None else a.astype(np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x{}x{}x{}x{}-k{}x{}x{}-s{}-p{}-d{}-b{}".format(*c))
def test_conv2d_matches_reference(case, dtype):
    x, w, b, geo = _data(case, dtype)
    n, c, _, _, k, kh, kw = case[:7]
    y = ops.conv2d_forward(x, w, b, **geo)
    y_ref = ref.conv2d_forward(_f64(x), _f64(w), _f64(b), **geo)
    assert y.dtype == dtype and y.shape == y_ref.shape
    assert_close(y, y_ref, reduction=c * kh * kw)

    dy = rand(np.random.default_rng(1), *y.shape, dtype=dtype)
    dx, dw, db = ops.conv2d_backward(x, w, dy, **geo)
    dx_r, dw_r, db_r = ref.conv2d_backward(_f64(x), _f64(w), _f64(dy), **geo)
    plane = y.shape[2] * y.shape[3]
    assert dx.dtype == dw.dtype == db.dtype == dtype
    assert_close(dx, dx_r, reduction=k * kh * kw)
    assert_close(dw, dw_r, reduction=n * plane)
    assert_close(db, db_r, reduction=n * plane)


GRAD_CASES = [
    (2, 2, 5, 6, 3, 3, 2, 1, 1, 1, True),
    (2, 2, 7, 8, 3, 3, 3, 2, (1, 2), (2, 1), True),    # stride 2 + padding + dilation
    (1, 3, 6, 5, 2, 2, 2, (1, 2), 0, 2, True),
]


@pytest.mark.parametrize("case", GRAD_CASES)
def test_conv2d_gradients_finite_differences(case):
    x, w, b, geo = _data(case, np.float64, seed=3)
    g = rand(np.random.default_rng(4), *ops.conv2d_forward(x, w, b, **geo).shape)

    def loss():
        return float((ops.conv2d_forward(x, w, b, **geo) * g).sum())

    dx, dw, db = ops.conv2d_backward(x, w, g, **geo)
    assert_grad(dx, numerical_grad(loss, x))
    assert_grad(dw, numerical_grad(loss, w))
    assert_grad(db, numerical_grad(loss, b))


def test_stride_beyond_kernel_leaves_unread_inputs_zero():
    x, w, _, geo = _data((2, 3, 10, 11, 4, 2, 2, 3, 0, 1, False), np.float64)
    dy = rand(np.random.default_rng(2), *ops.conv2d_forward(x, w, **geo).shape)
    dx, _, _ = ops.conv2d_backward(x, w, dy, **geo)
    oh, ow = dy.shape[2:]
    rows = {o * 3 + t for o in range(oh) for t in range(2)}
    cols = {o * 3 + t for o in range(ow) for t in range(2)}
    read = np.zeros(x.shape[2:], bool)
    read[np.ix_(sorted(rows), sorted(cols))] = True
    assert (~read).sum() > 0
    assert np.all(dx[:, :, ~read] == 0.0)
    assert np.all(dx[:, :, read] != 0.0)


def test_bias_shapes_and_optional_gradients():
    x, w, b, geo = _data((2, 3, 6, 7, 4, 3, 3, 1, 1, 1, True), np.float32)
    y1 = ops.conv2d_forward(x, w, b, **geo)
    y4 = ops.conv2d_forward(x, w, b.reshape(1, 4, 1, 1), **geo)
    np.testing.assert_array_equal(y1, y4)
    dy = np.ones_like(y1)
    dx, dw, db = ops.conv2d_backward(x, w, dy, **geo)
    assert db.shape == (4,)
    none_dx, dw2, none_db = ops.conv2d_backward(x, w, dy, need_dx=False, need_db=False, **geo)
    assert none_dx is None and none_db is None
    np.testing.assert_array_equal(dw, dw2)


def _run_all(x, w, b, dy, geo):
    y = ops.conv2d_forward(x, w, b, **geo)
    return (y, *ops.conv2d_backward(x, w, dy, **geo))


def test_scratch_is_bounded_by_a_group_per_thread_not_the_batch():
    # Planes of >= 512 outputs: one sample per group. Scratch = per thread one sample's columns
    # and GEMM-layout output, plus up to 8 partial weight gradients: the same for a batch of 8
    # and of 64.
    geo = dict(stride=1, padding=1, dilation=1)
    w = np.zeros((4, 3, 3, 3), np.float32)
    columns, partial = (3 * 3 * 3 + 4) * 23 * 24 * 4, 4 * 27 * 4
    try:
        for threads in (1, 2):
            fc.set_num_threads(threads)
            sizes = [ops.conv2d_scratch_bytes(np.zeros((n, 3, 23, 24), np.float32), w, **geo)
                     for n in (1, 8, 64)]
            assert sizes == [columns + partial, threads * columns + 8 * partial,
                             threads * columns + 8 * partial]
    finally:
        fc.set_num_threads(2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_planes_share_a_gemm(dtype):
    # 9x10 planes: six samples share a GEMM (and a partial group of one is left over).
    case = (13, 4, 9, 10, 6, 3, 3, 1, 1, 1, True)
    x, w, b, geo = _data(case, dtype)
    dy = rand(np.random.default_rng(7), 13, 6, 9, 10, dtype=dtype)
    got = _run_all(x, w, b, dy, geo)
    want = (ref.conv2d_forward(x, w, b, **geo), *ref.conv2d_backward(x, w, dy, **geo))
    for a, e in zip(got, want):
        assert_close(a, e, reduction=4 * 9 * 13 * 90)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [(3, 4, 11, 9, 5, 3, 3, 1, 1, 1, True),
                                  (13, 4, 9, 10, 6, 3, 3, 2, 1, 1, True),
                                  (2, 3, 23, 24, 4, 3, 3, 1, 1, 1, False)])
def test_fused_relu_matches_conv_then_relu(case, dtype):
    x, w, b, geo = _data(case, dtype)
    y = ops.conv2d_forward(x, w, b, relu=True, **geo)
    assert_close(y, ref.conv2d_forward(x, w, b, relu=True, **geo), reduction=case[1] * 9)
    assert (y >= 0).all()
    g = rand(np.random.default_rng(3), *y.shape, dtype=dtype)
    got = ops.conv2d_backward(x, w, g, relu_y=y, **geo)
    # The unfused chain: relu's backward, then the convolution's.
    masked = ops.relu_backward(g, y)
    want = ops.conv2d_backward(x, w, masked, **geo)
    for a, e in zip(got, want):
        np.testing.assert_array_equal(a, e)


def test_fused_relu_gradient_matches_finite_differences():
    x, w, b, geo = _data((2, 3, 7, 8, 4, 3, 3, 2, 1, 1, True), np.float64)
    g = rand(np.random.default_rng(4), *ops.conv2d_forward(x, w, b, **geo).shape)

    def loss():
        return float((ops.conv2d_forward(x, w, b, relu=True, **geo) * g).sum())

    y = ops.conv2d_forward(x, w, b, relu=True, **geo)
    dx, dw, db = ops.conv2d_backward(x, w, g, relu_y=y, **geo)
    assert_grad(dx, numerical_grad(loss, x))
    assert_grad(dw, numerical_grad(loss, w))
    assert_grad(db, numerical_grad(loss, b))


DETERMINISM_CASES = [
    (4, 8, 16, 15, 8, 3, 3, 1, 1, 1, True),
    (2, 32, 20, 21, 16, 3, 3, 1, 1, 1, True),   # reductions > 256 (c*kh*kw and oh*ow): blocked
    (3, 5, 17, 19, 7, 5, 4, 2, 2, (1, 2), True),
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_deterministic_across_runs(dtype):
    x, w, b, geo = _data(DETERMINISM_CASES[1], dtype)
    dy = rand(np.random.default_rng(6), *ops.conv2d_forward(x, w, b, **geo).shape, dtype=dtype)
    for a, s in zip(_run_all(x, w, b, dy, geo), _run_all(x, w, b, dy, geo)):
        np.testing.assert_array_equal(a, s)


# float64 GEMMs run on one BLAS thread (cpu/blas.cpp): OpenBLAS's threaded dgemm rounds the last
# bit differently with 1 and 2 threads.
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", DETERMINISM_CASES)
def test_independent_of_thread_count(case, dtype):
    x, w, b, geo = _data(case, dtype)
    dy = rand(np.random.default_rng(6), *ops.conv2d_forward(x, w, b, **geo).shape,
              dtype=dtype)
    try:
        fc.set_num_threads(1)
        one = _run_all(x, w, b, dy, geo)
        fc.set_num_threads(2)
        two = _run_all(x, w, b, dy, geo)
    finally:
        fc.set_num_threads(2)
    for a, s in zip(one, two):
        np.testing.assert_array_equal(a, s)
