"""The fused conv2d + ReLU + 2x2 max pool (fastconv.ops.conv2d_relu_max_pool2d_*): against the
numpy reference, and bitwise against the unfused chain it replaces, on both algorithms and on
any thread count."""
import numpy as np
import pytest

import fastconv as fc
import fastconv.ops as ops
import fastconv.reference as ref
from helpers import DTYPES, assert_close, assert_grad, numerical_grad, rand
from test_conv import _data

# (N, C, H, W, K, kh, kw, stride, padding, dilation, bias)
CASES = [
    (1, 1, 4, 4, 1, 1, 1, 1, 0, 1, False),             # batch 1, one channel, 1x1 filter
    (2, 3, 7, 9, 4, 3, 3, 1, 1, 1, True),              # odd H and W: the last row/col dropped
    (3, 16, 8, 6, 16, 3, 3, 1, 1, 1, True),            # Winograd-sized channels (auto takes it)
    (2, 17, 11, 10, 18, 3, 3, 1, 0, 1, True),          # odd, no padding
    (4, 3, 9, 9, 5, 3, 3, 2, 1, 1, True),              # stride 2 (im2col)
    (2, 4, 10, 9, 3, 5, 5, 1, 2, 1, False),
    (2, 3, 9, 11, 4, 3, 3, 1, 2, 2, True),             # dilation 2
    (3, 2, 8, 10, 3, 3, 2, (2, 1), (1, 0), (1, 2), True),
    (2, 1, 6, 8, 32, 3, 3, 1, 1, 1, True),             # 1 -> 32, the tutorial's first layer
    (1, 40, 5, 5, 2, 3, 3, 1, 0, 1, True),             # a 3x3 output: one window, rest dropped
]
ALGORITHMS = ("im2col", "winograd_f2", "winograd_f4", "auto")


def case_id(c):
    return "x{}x{}x{}x{}-k{}x{}x{}-s{}-p{}-d{}-b{}".format(*c)


@pytest.fixture
def algorithm(request):
    before = fc.conv_algorithm()
    fc.set_conv_algorithm(request.param)
    yield request.param
    fc.set_conv_algorithm(before)


def _unfused(x, w, b, geo, dy):
    """The chain the fused op replaces: conv2d(relu) -> max_pool2d, and its backward."""
    z = ops.conv2d_forward(x, w, b, **geo, relu=True)
    y, idx = ops.max_pool2d_forward(z, 2, 2, 0)
    dz = ops.max_pool2d_backward(z, dy, idx, 2, 2, 0)
    grads = ops.conv2d_backward(x, w, dz, **geo, need_db=b is not None, relu_y=z)
    return y, idx, grads


def _fused(x, w, b, geo, dy):
    y, idx = ops.conv2d_relu_max_pool2d_forward(x, w, b, **geo)
    grads = ops.conv2d_relu_max_pool2d_backward(x, w, dy, y, idx, **geo,
                                                need_db=b is not None)
    return y, idx, grads


def _assert_same_bits(a, b):
    for u, v in zip(a[:2] + tuple(a[2]), b[:2] + tuple(b[2])):
        if u is None:
            assert v is None
            continue
        assert u.dtype == v.dtype and u.shape == v.shape
        assert u.tobytes() == v.tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_reference(case, dtype):
    x, w, b, geo = _data(case, dtype)
    c, kh, kw = case[1], case[5], case[6]
    y, idx = ops.conv2d_relu_max_pool2d_forward(x, w, b, **geo)
    z_ref = ref.conv2d_forward(x.astype(np.float64), w.astype(np.float64),
                               None if b is None else b.astype(np.float64), **geo, relu=True)
    y_ref, idx_ref = ref.max_pool2d_forward(z_ref, 2, 2, 0)
    assert y.dtype == dtype and idx.dtype == np.int64 and y.shape == y_ref.shape
    assert_close(y, y_ref, reduction=c * kh * kw, factor=64)
    if dtype == np.float64:  # float32's rounding may swap near-tied taps
        np.testing.assert_array_equal(idx, idx_ref)
    dy = rand(np.random.default_rng(1), *y.shape, dtype=dtype)
    dx, dw, db = ops.conv2d_relu_max_pool2d_backward(x, w, dy, y, idx, **geo)
    dz_ref = ref.max_pool2d_backward(z_ref, dy.astype(np.float64), idx, 2, 2, 0)
    dx_ref, dw_ref, db_ref = ref.conv2d_backward(
        x.astype(np.float64), w.astype(np.float64), dz_ref, **geo, relu_y=z_ref)
    n, k = case[0], case[4]
    oh, ow = z_ref.shape[2:]
    assert_close(dx, dx_ref, reduction=k * kh * kw, factor=64)
    assert_close(dw, dw_ref, reduction=n * oh * ow, factor=64)
    assert_close(db, db_ref, reduction=n * oh * ow, factor=64)


@pytest.mark.parametrize("algorithm", ALGORITHMS, indirect=True)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES + [
    (13, 16, 7, 7, 16, 3, 3, 1, 1, 1, True),           # 7x7 planes: 11 samples per GEMM group
    (9, 16, 28, 28, 32, 3, 3, 1, 1, 1, True),          # the tutorial's plane, blocks span samples
], ids=case_id)
def test_bitwise_the_unfused_chain(case, dtype, algorithm):
    x, w, b, geo = _data(case, dtype)
    dy = rand(np.random.default_rng(1), *ops.conv2d_relu_max_pool2d_forward(x, w, b, **geo)[0]
              .shape, dtype=dtype)
    _assert_same_bits(_fused(x, w, b, geo, dy), _unfused(x, w, b, geo, dy))


@pytest.mark.parametrize("algorithm", ["im2col", "winograd_f4"], indirect=True)
def test_bitwise_on_1_2_and_3_threads(algorithm):
    x, w, b, geo = _data((12, 16, 14, 14, 16, 3, 3, 1, 1, 1, True), np.float32)
    dy = rand(np.random.default_rng(1), 12, 16, 7, 7, dtype=np.float32)
    runs = []
    try:
        for threads in (1, 2, 3):
            fc.set_num_threads(threads)
            y, idx, grads = _fused(x, w, b, geo, dy)
            runs.append(b"".join(a.tobytes() for a in (y, idx, *grads)))
    finally:
        fc.set_num_threads(2)
    assert runs[0] == runs[1] == runs[2]


@pytest.mark.parametrize("case", [CASES[1], CASES[4], CASES[7]], ids=case_id)
def test_gradients_match_finite_differences(case):
    x, w, b, geo = _data(case, np.float64, seed=3)
    rng = np.random.default_rng(4)
    dy = rand(rng, *ops.conv2d_relu_max_pool2d_forward(x, w, b, **geo)[0].shape)

    def loss():
        return float((ops.conv2d_relu_max_pool2d_forward(x, w, b, **geo)[0] * dy).sum())

    y, idx = ops.conv2d_relu_max_pool2d_forward(x, w, b, **geo)
    dx, dw, db = ops.conv2d_relu_max_pool2d_backward(x, w, dy, y, idx, **geo)
    assert_grad(dx, numerical_grad(loss, x))
    assert_grad(dw, numerical_grad(loss, w))
    assert_grad(db, numerical_grad(loss, b))


@pytest.mark.parametrize("dtype", DTYPES)
def test_ties_nan_and_negative_windows_as_unfused(dtype):
    # w = 0: z is relu(b) everywhere, so every window ties (first tap wins) and channels with
    # b <= 0 are all zeros (the mask blocks their gradient); a NaN pixel makes NaN windows.
    x = np.ones((2, 3, 6, 7), dtype)
    x[1, 0, 2, 3] = np.nan
    w = np.zeros((4, 3, 3, 3), dtype)
    b = np.array([1.5, 0.0, -2.0, -0.0], dtype)
    geo = dict(stride=1, padding=1, dilation=1)
    dy = rand(np.random.default_rng(2), 2, 4, 3, 3, dtype=dtype)
    dy[0, 0, 0, 0] = -0.0
    fused = _fused(x, w, b, geo, dy)
    _assert_same_bits(fused, _unfused(x, w, b, geo, dy))
    y, idx = fused[:2]
    assert np.isnan(y[1]).any() and not np.isnan(y[0]).any()
    np.testing.assert_array_equal(idx[0, 0], (np.arange(3)[:, None] * 2 * 7 + np.arange(3) * 2))


def test_stray_indices_never_match():
    x, w, b, geo = _data(CASES[1], np.float64)
    y, idx = ops.conv2d_relu_max_pool2d_forward(x, w, b, **geo)
    dy = np.ones_like(y)
    bad = np.full_like(idx, -5)
    dx, dw, db = ops.conv2d_relu_max_pool2d_backward(x, w, dy, y, bad.astype(np.int32), **geo)
    assert not dx.any() and not dw.any() and not db.any()
