"""conv2d's layout kernels on the GPU, one at a time, through the private hooks _cuda._im2col,
_col2im, _gemm_to_nchw and _nchw_to_gemm (marked `cuda`: skipped with the reason where no GPU is
usable). Each is pure data movement, or a fixed-order float32 sum, so each is checked bitwise
against numpy on test_conv's shape matrix, with outputs poisoned (NaN) first: an element a
kernel forgets to write fails. The conv tests (test_conv_cuda.py) check them again in place,
through the whole op."""
from __future__ import annotations

import numpy as np
import pytest

from fastconv._native import CUDA
from helpers import dev, host, pairs, rand32
from test_conv import CASES as CONV_CASES

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("poison_gpu_outputs")]

# Larger than any test_conv case: many blocks along both grid axes, planes not a multiple of 32.
EXTRA = [
    (3, 7, 29, 31, 1, 3, 3, 1, 1, 1, False),
    (2, 5, 23, 17, 1, 5, 3, (2, 1), (2, 1), (1, 2), False),
]


def _geometry(case):
    n, c, h, w, _, kh, kw, stride, padding, dilation, _ = case
    st, pa, di = pairs(stride), pairs(padding), pairs(dilation)
    oh = (h + 2 * pa[0] - di[0] * (kh - 1) - 1) // st[0] + 1
    ow = (w + 2 * pa[1] - di[1] * (kw - 1) - 1) // st[1] + 1
    return (n, c, h, w), (kh, kw), st, pa, di, (oh, ow)


def _taps(case):
    """For each col row r = (c*kh + ki)*kw + kj: c, and the input rows/columns its outputs read."""
    (n, c, h, w), (kh, kw), st, pa, di, (oh, ow) = _geometry(case)
    for ch in range(c):
        for ki in range(kh):
            for kj in range(kw):
                ih = np.arange(oh) * st[0] - pa[0] + ki * di[0]
                iw = np.arange(ow) * st[1] - pa[1] + kj * di[1]
                yield ch, ih, iw


def reference_im2col(x, case):
    n, _, h, w = x.shape
    rows = []
    for ch, ih, iw in _taps(case):
        r = np.zeros((n, ih.size, iw.size), np.float32)
        vi, vj = (ih >= 0) & (ih < h), (iw >= 0) & (iw < w)
        r[:, np.flatnonzero(vi)[:, None], np.flatnonzero(vj)] = \
            x[:, ch][:, ih[vi][:, None], iw[vj]]
        rows.append(r.reshape(-1))
    return np.stack(rows)


def reference_col2im(col, case):
    """float32 adds, per element in ascending (ki, kj) order from +0: the kernels' order, so
    the comparison is bitwise. One tap reaches each input from at most one output."""
    (n, c, h, w), *_, (oh, ow) = _geometry(case)
    dx = np.zeros((n, c, h, w), np.float32)
    for r, (ch, ih, iw) in enumerate(_taps(case)):
        vals = col[r].reshape(n, oh, ow)
        vi, vj = (ih >= 0) & (ih < h), (iw >= 0) & (iw < w)
        sel = (slice(None), ch, ih[vi][:, None], iw[vj])
        dx[sel] = (dx[sel] + vals[:, np.flatnonzero(vi)[:, None], np.flatnonzero(vj)]).astype(
            np.float32)
    return dx


@pytest.mark.parametrize("case", CONV_CASES + EXTRA)
def test_im2col_and_col2im_equal_numpy_bitwise(case):
    shape, kernel, st, pa, di, _ = _geometry(case)
    rng = np.random.default_rng(0)
    x = rand32(rng, *shape).astype(np.float32)
    col = host(CUDA._im2col(dev(x), kernel, st, pa, di))
    np.testing.assert_array_equal(col, reference_im2col(x, case))
    g = rand32(rng, *col.shape).astype(np.float32)
    dx = host(CUDA._col2im(dev(g), dev(x), kernel, st, pa, di))
    np.testing.assert_array_equal(dx, reference_col2im(g, case))


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 5, 7, 9), (64, 32, 28, 28), (5, 3, 1, 49)])
@pytest.mark.parametrize("masked", [False, True])
def test_layout_transforms_equal_numpy_bitwise(shape, masked):
    rng = np.random.default_rng(1)
    dy = rand32(rng, *shape).astype(np.float32)
    relu_y = np.maximum(rand32(rng, *shape), 0).astype(np.float32) if masked else None
    n, k = shape[:2]
    m = host(CUDA._nchw_to_gemm(dev(dy), None if relu_y is None else dev(relu_y)))
    want = np.where(relu_y > 0, dy, np.float32(0)) if masked else dy
    np.testing.assert_array_equal(m, want.reshape(n, k, -1).transpose(1, 0, 2).reshape(k, -1))
    # Back to NCHW, + the bias (one float32 add) and the ReLU clamp (NaN passes it, as
    # relu_forward lets it): the conv forward's one pass after its GEMM.
    g = m.copy()
    g.flat[:: 7] = np.nan
    back = g.reshape(k, n, -1).transpose(1, 0, 2)
    y = host(CUDA._gemm_to_nchw(dev(g), None, n, masked))
    np.testing.assert_array_equal(y, np.where(back < 0, np.float32(0), back) if masked else back)
    b = rand32(rng, k).astype(np.float32)
    y = host(CUDA._gemm_to_nchw(dev(g), dev(b), n, masked))
    biased = (back + b[None, :, None]).astype(np.float32)
    np.testing.assert_array_equal(
        y, np.where(biased < 0, np.float32(0), biased) if masked else biased)


def test_hooks_reject_mismatched_shapes():
    from helpers import raises_exactly

    x = dev(np.zeros((2, 3, 5, 5), np.float32))
    with raises_exactly(ValueError, "n must divide m.shape[1] = 10; got 3"):
        CUDA._gemm_to_nchw(dev(np.zeros((4, 10), np.float32)), None, 3, False)
    with pytest.raises(ValueError):
        CUDA._col2im(dev(np.zeros((27, 49), np.float32)), x, (3, 3), (1, 1), (0, 0), (1, 1))


def test_benchmark_helper_rows_run_on_the_gpu():
    # benchmarks/helper_rows.py's fastconv column, each kernel once (quick sizes): the rows the
    # GPU check times must build and run, and im2col's must equal numpy.
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import helper_rows

    class Gpu:
        name = "cuda"

        @staticmethod
        def array(a):
            return dev(a)

    gpu = Gpu()
    rows = helper_rows.helper_rows(quick=True)
    assert [r.id for r in rows] == ["helper.im2col", "helper.col2im", "helper.bias_grad",
                                    "helper.to_nchw", "helper.to_gemm", "helper.to_gemm_masked"]
    for row in rows:
        assert row.unit == "GB/s" and row.work > 0
        row.make("fastconv_cuda", gpu)()
    n, c, h, w = helper_rows._quick_n(helper_rows.CONV2[0]), *helper_rows.CONV2[1:]
    xs = np.random.default_rng(40).standard_normal((n, c, h, w), dtype=np.float32)
    col = host(rows[0].make("fastconv_cuda", gpu)())
    np.testing.assert_array_equal(col, reference_im2col(xs, (n, c, h, w, 1, 3, 3, 1, 1, 1, 0)))


def test_misaligned_views_take_the_scalar_kernels_with_the_same_bits():
    # The 4-wide layout kernels need 16-byte aligned arrays; a device array viewing a buffer from
    # its second element is not, and must get the scalar kernels' (identical) results.
    # (im2col's 4-wide kernel only needs its output aligned: here its input is not.)
    def misaligned(a):
        buf = dev(np.concatenate([np.zeros(1, np.float32), a.ravel()]))
        view = buf[1:].reshape(a.shape)
        assert view.ptr % 16 == 4
        return view, buf  # buf keeps the memory alive

    rng = np.random.default_rng(3)
    dy = rand32(rng, 4, 8, 6, 6).astype(np.float32)       # plane 36: the 4-wide path if aligned
    relu_y = rand32(rng, *dy.shape).astype(np.float32)
    (d, keep1), (r, keep2) = misaligned(dy), misaligned(relu_y)
    np.testing.assert_array_equal(host(CUDA._nchw_to_gemm(d, r)),
                                  host(CUDA._nchw_to_gemm(dev(dy), dev(relu_y))))
    m = rand32(rng, 8, 4 * 36).astype(np.float32)
    b = rand32(rng, 8).astype(np.float32)
    mm, keep3 = misaligned(m)
    np.testing.assert_array_equal(host(CUDA._gemm_to_nchw(mm, dev(b), 4, True)),
                                  host(CUDA._gemm_to_nchw(dev(m), dev(b), 4, True)))
    x = rand32(rng, 4, 3, 6, 6).astype(np.float32)
    xm, keep4 = misaligned(x)
    geo = ((3, 3), (1, 1), (1, 1), (1, 1))
    np.testing.assert_array_equal(host(CUDA._im2col(xm, *geo)), host(CUDA._im2col(dev(x), *geo)))
    del keep1, keep2, keep3, keep4
