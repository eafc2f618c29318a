import numpy as np
import pytest

import fastconv as fc
import fastconv.ops as ops
import fastconv.reference as ref
from helpers import (DTYPES, assert_close, assert_grad, numerical_grad, rand,
                     raises_exactly)

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


I64 = 2**63 - 1  # the largest size int64 holds
RANGE = "[-9223372036854775808, 9223372036854775807]"


def _bad_calls():
    f32 = np.float32
    x = np.zeros((2, 3, 8, 8), f32)
    w = np.zeros((4, 3, 3, 3), f32)
    dy = np.zeros((2, 4, 6, 6), f32)
    fwd, bwd, scratch = ops.conv2d_forward, ops.conv2d_backward, ops.conv2d_scratch_bytes
    reach9 = "+ 2 * padding must be at least the kernel's reach 9"
    return [
        ("x-ndim", lambda: fwd(x[0], w), ValueError,
         "x must be 4-D (N, C, H, W); got shape (3, 8, 8)"),
        ("w-ndim", lambda: fwd(x, w[0]), ValueError,
         "w must be 4-D (K, C, kh, kw); got shape (3, 3, 3)"),
        ("dy-ndim", lambda: bwd(x, w, dy[0]), ValueError,
         "dy must be 4-D (N, K, OH, OW); got shape (4, 6, 6)"),
        ("w-int", lambda: fwd(x, w.astype(np.int32)), TypeError,
         "w must have dtype float32 or float64; got int32"),
        ("x-int", lambda: fwd(x.astype(np.int64), w), TypeError,
         "x must have dtype float32 or float64; got int64"),
        ("w-f64", lambda: fwd(x, w.astype(np.float64)), TypeError,
         "w must have the dtype of x (float32); got float64"),
        ("dy-f64", lambda: bwd(x, w, dy.astype(np.float64)), TypeError,
         "dy must have the dtype of x (float32); got float64"),
        ("channels", lambda: fwd(x, np.zeros((4, 2, 3, 3), f32)), ValueError,
         "w.shape[1] must be 3 (x's channels); got shape (4, 2, 3, 3)"),
        ("output<1", lambda: fwd(x, np.zeros((4, 3, 9, 3), f32)), ValueError,
         f"x.shape[2] (height) {reach9} (kernel height 9, dilation 1); "
         "got height 8 with padding 0"),
        ("output<1-dil", lambda: fwd(x, w, dilation=4), ValueError,
         f"x.shape[2] (height) {reach9} (kernel height 3, dilation 4); "
         "got height 8 with padding 0"),
        ("output<1-width",
         lambda: fwd(x, np.zeros((4, 3, 3, 5), f32), padding=(0, 1), dilation=(1, 3)), ValueError,
         "x.shape[3] (width) + 2 * padding must be at least the kernel's reach 13 "
         "(kernel width 5, dilation 3); got width 8 with padding 1"),
        ("stride0", lambda: fwd(x, w, stride=0), ValueError,
         "stride must be >= 1 in both dimensions; got (0, 0)"),
        ("stride-neg", lambda: fwd(x, w, stride=(1, -2)), ValueError,
         "stride must be >= 1 in both dimensions; got (1, -2)"),
        ("padding-neg", lambda: fwd(x, w, padding=-1), ValueError,
         "padding must be >= 0 in both dimensions; got (-1, -1)"),
        ("dilation0", lambda: fwd(x, w, dilation=0), ValueError,
         "dilation must be >= 1 in both dimensions; got (0, 0)"),
        ("x-noncontig", lambda: fwd(x[:, :, :, ::2], np.zeros((4, 3, 2, 2), f32)), ValueError,
         "x must be C-contiguous (pass numpy.ascontiguousarray(x)); got shape (2, 3, 8, 4) with "
         "strides (768, 256, 32, 8)"),
        ("w-noncontig", lambda: fwd(x, np.zeros((3, 4, 3, 3), f32).transpose(1, 0, 2, 3)),
         ValueError, "w must be C-contiguous (pass numpy.ascontiguousarray(w)); got shape "
         "(4, 3, 3, 3) with strides (36, 144, 12, 4)"),
        ("b-size", lambda: fwd(x, w, np.zeros(5, f32)), ValueError,
         "b must have shape (4,) or (1, 4, 1, 1) (w's output channels); got (5,)"),
        ("b-shape", lambda: fwd(x, w, np.zeros((4, 1), f32)), ValueError,
         "b must have shape (4,) or (1, 4, 1, 1) (w's output channels); got (4, 1)"),
        ("b-dtype", lambda: fwd(x, w, np.zeros(4, np.float64)), TypeError,
         "b must have the dtype of x (float32); got float64"),
        ("dy-shape", lambda: bwd(x, w, np.zeros((2, 4, 6, 5), f32)), ValueError,
         "dy must have the output's shape (2, 4, 6, 6); got (2, 4, 6, 5)"),
        ("dy-shape-stride", lambda: bwd(x, w, dy, stride=2), ValueError,
         "dy must have the output's shape (2, 4, 3, 3); got (2, 4, 6, 6)"),
        ("x-None", lambda: fwd(None, w), TypeError,
         "x must be a numpy array or a fastconv DeviceArray; got None"),
        ("x-None-bwd", lambda: bwd(None, w, dy), TypeError,
         "x must be a numpy array or a fastconv DeviceArray; got None"),
        ("w-list", lambda: fwd(x, w.tolist()), TypeError,
         "w must be a numpy array (K, C, kh, kw); got list"),
        ("dy-list", lambda: bwd(x, w, dy.tolist()), TypeError,
         "dy must be a numpy array (N, K, OH, OW); got list"),
        ("stride-3", lambda: fwd(x, w, stride=(1, 1, 1)), ValueError,
         "stride must be an int or a pair of ints (h, w); got (1, 1, 1)"),
        ("stride-bool", lambda: fwd(x, w, stride=True), TypeError,
         "stride must be an int or a pair of ints; got bool True"),
        ("stride-bool-pair", lambda: fwd(x, w, stride=(1, False)), TypeError,
         "stride must hold ints, not bools; got (1, False)"),
        ("padding-float", lambda: fwd(x, w, padding=1.5), TypeError,
         "padding must be an int or a pair of ints; got float 1.5"),
        ("padding-None", lambda: fwd(x, w, padding=None), TypeError,
         "padding must be an int or a pair of ints; got NoneType None"),
        ("dilation-floats", lambda: fwd(x, w, dilation=(1.0, 2.0)), TypeError,
         "dilation must hold ints; got (1.0, 2.0)"),
        ("scratch-dilation", lambda: scratch(x, w, dilation=(1, 0)), ValueError,
         "dilation must be >= 1 in both dimensions; got (1, 0)"),
        ("relu-None", lambda: fwd(x, w, relu=None), TypeError,
         "relu must be a bool; got NoneType None"),
        ("relu_y-shape", lambda: bwd(x, w, dy, relu_y=dy[:1]), ValueError,
         "relu_y must have the shape of dy (2, 4, 6, 6); got (1, 4, 6, 6)"),
        ("relu_y-dtype", lambda: bwd(x, w, dy, relu_y=dy.astype(np.float64)), TypeError,
         "relu_y must have the dtype of dy (float32); got float64"),
        # need_dx='no' used to be truthy, and returned dx
        ("need_dx-str", lambda: bwd(x, w, dy, need_dx="no"), TypeError,
         "need_dx must be a bool; got str 'no'"),
        ("need_db-int", lambda: bwd(x, w, dy, need_db=0), TypeError,
         "need_db must be a bool; got int 0"),
        # empty axes: batch and channels were refused before, height and width now too
        ("x-batch0", lambda: fwd(np.zeros((0, 3, 8, 8), f32), w), ValueError,
         "x.shape[0] (batch) must be positive; got shape (0, 3, 8, 8)"),
        ("x-channels0", lambda: fwd(np.zeros((2, 0, 8, 8), f32), np.zeros((4, 0, 3, 3), f32)),
         ValueError, "x.shape[1] (channels) must be positive; got shape (2, 0, 8, 8)"),
        ("x-height0", lambda: fwd(np.zeros((2, 3, 0, 8), f32), w, padding=2), ValueError,
         "x.shape[2] (height) must be positive; got shape (2, 3, 0, 8)"),
        ("x-width0", lambda: fwd(np.zeros((2, 3, 8, 0), f32), w, padding=2), ValueError,
         "x.shape[3] (width) must be positive; got shape (2, 3, 8, 0)"),
        ("x-height0-bwd", lambda: bwd(np.zeros((2, 3, 0, 8), f32), w, dy, padding=2),
         ValueError, "x.shape[2] (height) must be positive; got shape (2, 3, 0, 8)"),
        ("w-out0", lambda: fwd(x, np.zeros((0, 3, 3, 3), f32)), ValueError,
         "w.shape[0] (output channels) must be positive; got shape (0, 3, 3, 3)"),
        ("w-kh0", lambda: fwd(x, np.zeros((4, 3, 0, 3), f32)), ValueError,
         "w.shape[2] (kernel height) must be positive; got shape (4, 3, 0, 3)"),
        ("w-kw0", lambda: fwd(x, np.zeros((4, 3, 3, 0), f32)), ValueError,
         "w.shape[3] (kernel width) must be positive; got shape (4, 3, 3, 0)"),
        # sizes past int64 never reach C++ (pybind11 answered with its signature)
        ("stride-2**63", lambda: fwd(x, w, stride=2**63), ValueError,
         f"stride must hold int64 values, in {RANGE}; got {2**63}"),
        ("padding-pair-2**63", lambda: fwd(x, w, padding=(0, 2**63)), ValueError,
         f"padding must hold int64 values, in {RANGE}; got (0, {2**63})"),
        ("dilation--2**63-1", lambda: fwd(x, w, dilation=-(2**63) - 1), ValueError,
         f"dilation must hold int64 values, in {RANGE}; got {-(2**63) - 1}"),
        ("stride-uint64", lambda: fwd(x, w, stride=np.uint64(2**64 - 1)), ValueError,
         f"stride must hold int64 values, in {RANGE}; got {2**64 - 1}"),
        # geometry whose arithmetic overflows int64 (dilation 2**62 crashed, 2**63-1 gave 10x10)
        ("dilation-2**62", lambda: fwd(x, w, dilation=2**62), ValueError,
         "dilation must be at most 4611686018427387903 for a kernel height of 3, so that "
         f"dilation * (kernel height - 1) + 1 fits in int64; got ({2**62}, {2**62})"),
        ("dilation-max", lambda: fwd(x, w, dilation=(1, I64)), ValueError,
         "dilation must be at most 4611686018427387903 for a kernel width of 3, so that "
         f"dilation * (kernel width - 1) + 1 fits in int64; got (1, {I64})"),
        ("dilation-edge", lambda: fwd(x, w, dilation=(4611686018427387903, 1)), ValueError,
         "x.shape[2] (height) + 2 * padding must be at least the kernel's reach "
         f"{I64} (kernel height 3, dilation 4611686018427387903); got height 8 with padding 0"),
        ("padding-2**62", lambda: fwd(x, w, padding=2**62), ValueError,
         "padding must be at most 4611686018427387899 for an input height of 8, so that "
         f"height + 2 * padding fits in int64; got ({2**62}, {2**62})"),
        ("padding-max-bwd", lambda: bwd(x, w, dy, padding=(0, I64)), ValueError,
         "padding must be at most 4611686018427387899 for an input width of 8, so that "
         f"width + 2 * padding fits in int64; got (0, {I64})"),
        ("padding-edge", lambda: fwd(x, w, padding=(0, 4611686018427387899)), ValueError,
         "x and w with this stride, padding and dilation must give an output of fewer than "
         "2**60 elements; got output shape (2, 4, 6, 9223372036854775804)"),
        # the scratch size wrapped around
        ("scratch-padding-2**30", lambda: scratch(x, w, padding=2**30), ValueError,
         "x and w with this stride, padding and dilation must give an output of fewer than "
         "2**60 elements; got output shape (2, 4, 2147483654, 2147483654)"),
        ("im2col-per-sample", lambda: fwd(np.zeros((1, 1024, 1, 1), f32),
                                          np.zeros((1, 1024, 1, 1), f32), padding=2**26),
         ValueError, "x and w with this stride, padding and dilation must give an im2col "
         "matrix of fewer than 2**60 elements per sample; got 1024 rows (C * kh * kw) by "
         "18014398777917441 columns (OH * OW)"),
    ]


BAD = _bad_calls()


@pytest.mark.parametrize("call,exc,message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_conv2d_rejects_malformed_calls(call, exc, message):
    with raises_exactly(exc, message):
        call()


def test_reproducer_huge_dilation_is_refused_by_the_layer_api():
    x, w = np.ones((1, 1, 8, 8), np.float32), np.ones((1, 1, 5, 5), np.float32)
    for d in (2**62, I64):
        with raises_exactly(ValueError, "dilation must be at most 2305843009213693951 for a "
                            "kernel height of 5, so that dilation * (kernel height - 1) + 1 "
                            f"fits in int64; got ({d}, {d})"):
            fc.conv2d(x, w, dilation=d)


@pytest.mark.parametrize("stride", [9, 2**62, I64])
def test_a_stride_past_the_image_gives_the_first_window(stride):
    # One output per axis whatever the stride: no stride * o is formed past o = 0.
    rng = np.random.default_rng(5)
    x, w = rand(rng, 2, 3, 8, 8), rand(rng, 4, 3, 3, 3)
    y = ops.conv2d_forward(x, w, stride=stride, padding=1)
    assert_close(y, ref.conv2d_forward(x, w, stride=9, padding=1), reduction=27)
    dy = rand(rng, *y.shape)
    got = ops.conv2d_backward(x, w, dy, stride=stride, padding=1)
    for a, e in zip(got, ref.conv2d_backward(x, w, dy, stride=9, padding=1)):
        assert_close(a, e, reduction=27)


def test_huge_padding_along_one_axis_with_a_huge_stride():
    # Width: padding 2**62 - 8 and a stride reaching the far side: two outputs, each reading only
    # padding. The column arithmetic (padding + stride) exceeds int64 if formed naively.
    x, w = np.ones((1, 1, 2, 8), np.float64), np.ones((1, 1, 1, 1), np.float64)
    p = 2**62 - 8
    stride = 8 + 2 * p - 1  # the second window starts at the last padded column
    y = ops.conv2d_forward(x, w, stride=(1, stride), padding=(0, p))
    np.testing.assert_array_equal(y, np.zeros((1, 1, 2, 2)))
    dx, dw, db = ops.conv2d_backward(x, w, np.ones_like(y), stride=(1, stride), padding=(0, p))
    np.testing.assert_array_equal(dx, np.zeros_like(x))
    np.testing.assert_array_equal(dw, np.zeros_like(w))


def test_need_dx_and_need_db_take_numpy_bools():
    x, w, b, geo = _data((2, 3, 6, 7, 4, 3, 3, 1, 1, 1, True), np.float32)
    dy = np.ones_like(ops.conv2d_forward(x, w, b, **geo))
    dx, _, db = ops.conv2d_backward(x, w, dy, need_dx=np.bool_(False), need_db=np.bool_(True),
                                    **geo)
    assert dx is None and db.shape == (4,)
