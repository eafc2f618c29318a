"""Every CUDA op against its CPU twin, on the CPU tests' shape matrices (marked `cuda`: skipped
with the reason where no GPU is usable).

The CUDA module takes the CPU module's arguments with device arrays in place of numpy arrays, so
each test runs the same call on both (`_both`) and compares: float32 GPU results against the CPU's
float64 results with tolerances scaled by the reduction length (TF32 off), or a TF32 tolerance
where TF32 is switched on; exact ops (max pooling, argmax, relu, dropout, the optimizer updates)
bitwise against the CPU's float32. Outputs are poisoned (NaN) first on both backends.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from fastconv._native import C, CUDA
from helpers import assert_close, raises_exactly, rand
from test_conv import CASES as CONV_CASES
from test_pool import CASES as POOL_CASES

pytestmark = pytest.mark.cuda

TF32_U = 2.0 ** -11  # TF32 keeps 10 mantissa bits: unit roundoff of the GEMM inputs


@pytest.fixture(autouse=True)
def _poison_gpu_outputs():
    CUDA._set_poison_outputs(True)
    yield
    CUDA._set_poison_outputs(False)


@pytest.fixture
def tf32_off():
    CUDA.set_tf32(False)
    yield


def dev(a):
    from fastconv.device import to_device

    return to_device(np.ascontiguousarray(a))


def host(a):
    from fastconv.device import to_host

    return None if a is None else np.asarray(to_host(a))


def _to_dev(v):
    return dev(v) if isinstance(v, np.ndarray) else v


def _both(name, *args, cpu_dtype=np.float64):
    """(CPU result in cpu_dtype, GPU result on the host) of the same call. Float arrays are first
    rounded to float32, so both backends see the same inputs (at large logits the rounding alone
    would move a softmax by more than the tolerance); the CPU then computes in cpu_dtype."""
    def is_float(a):
        return isinstance(a, np.ndarray) and a.dtype.kind == "f"

    cpu_args = [a.astype(np.float32).astype(cpu_dtype) if is_float(a) else a for a in args]
    gpu_args = [_to_dev(a.astype(np.float32)) if is_float(a) else _to_dev(a) for a in args]
    cpu = getattr(C, name)(*cpu_args)
    gpu = getattr(CUDA, name)(*gpu_args)
    if isinstance(cpu, tuple):
        return cpu, tuple(host(g) for g in gpu)
    return cpu, host(gpu)


def _pairs(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def rand32(rng, *shape):
    """float64 values that float32 holds exactly: the same inputs for both backends."""
    return rand(rng, *shape).astype(np.float32).astype(np.float64)


def _conv_data(case, seed=0):
    n, c, h, w_, k, kh, kw, stride, padding, dilation, bias = case
    rng = np.random.default_rng(seed)
    x = rand32(rng, n, c, h, w_)
    w = rand32(rng, k, c, kh, kw)
    b = rand32(rng, k) if bias else None
    return x, w, b, _pairs(stride), _pairs(padding), _pairs(dilation)


# ---- conv2d -------------------------------------------------------------------------------------

@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_cpu(case, relu, tf32_off):
    x, w, b, st, pa, di = _conv_data(case)
    n, c, _, _, k, kh, kw = case[:7]
    cpu_y, gpu_y = _both("conv2d_forward", x, w, b, st, pa, di, relu)
    assert_close(gpu_y, cpu_y, reduction=c * kh * kw)
    dy = rand32(np.random.default_rng(1), *cpu_y.shape)
    # The GPU's own forward output as the mask on both: the CPU's could differ in sign where an
    # output is within rounding of 0, and one flipped mask element is an O(1) error.
    relu_cpu = gpu_y.astype(np.float64) if relu else None
    cpu = C.conv2d_backward(x, w, dy, st, pa, di, True, b is not None, relu_cpu)
    gpu = CUDA.conv2d_backward(dev(x.astype(np.float32)), dev(w.astype(np.float32)),
                               dev(dy.astype(np.float32)), st, pa, di, True, b is not None,
                               dev(gpu_y) if relu else None)
    oh, ow = cpu_y.shape[2:]
    reductions = (k * kh * kw, n * oh * ow, n * oh * ow)
    for g, e, r in zip(gpu, cpu, reductions):
        if e is None:
            assert g is None
        else:
            assert_close(host(g), e, reduction=r)


def test_conv2d_many_groups_accumulate_dw_in_batch_order(tf32_off):
    # (64*9 + 16) * 64*64 floats a sample: 6 samples a group, so 13 samples make groups of
    # 6, 6 and 1 (the one-sample group writes the output in place).
    case = (13, 64, 64, 64, 16, 3, 3, 1, 1, 1, True)
    x, w, b, st, pa, di = _conv_data(case, seed=3)
    cpu_y, gpu_y = _both("conv2d_forward", x, w, b, st, pa, di, False)
    assert_close(gpu_y, cpu_y, reduction=64 * 9)
    dy = rand(np.random.default_rng(4), *cpu_y.shape)
    cpu, gpu = _both("conv2d_backward", x, w, dy, st, pa, di, True, True, None)
    for g, e, r in zip(gpu, cpu, (16 * 9, 13 * 64 * 64, 13 * 64 * 64)):
        assert_close(g, e, reduction=r)
    s = CUDA.conv2d_scratch_bytes(dev(x.astype(np.float32)), dev(w.astype(np.float32)), st, pa, di)
    assert s == 6 * (64 * 9 + 16) * 64 * 64 * 4


def test_conv2d_tf32_within_its_own_tolerance():
    case = (4, 32, 16, 16, 32, 3, 3, 1, 1, 1, True)
    x, w, b, st, pa, di = _conv_data(case, seed=5)
    cpu_y = C.conv2d_forward(x, w, b, st, pa, di, False)
    try:
        CUDA.set_tf32(True)
        gpu_y = host(CUDA.conv2d_forward(dev(x.astype(np.float32)), dev(w.astype(np.float32)),
                                         dev(b.astype(np.float32)), st, pa, di, False))
    finally:
        CUDA.set_tf32(False)
    scale = float(np.abs(cpu_y).max())
    tol = 8 * TF32_U * math.sqrt(32 * 9)
    np.testing.assert_allclose(gpu_y, cpu_y, rtol=0, atol=tol * scale)
    off = host(CUDA.conv2d_forward(dev(x.astype(np.float32)), dev(w.astype(np.float32)),
                                   dev(b.astype(np.float32)), st, pa, di, False))
    assert_close(off, cpu_y, reduction=32 * 9)


# ---- pooling ------------------------------------------------------------------------------------

@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("shape,k,s,p", POOL_CASES)
def test_max_pool_equals_cpu_bitwise(shape, k, s, p, ceil_mode):
    x = rand(np.random.default_rng(0), *shape).astype(np.float32)
    k, s, p = _pairs(k), _pairs(s), _pairs(p)
    (cy, ci), (gy, gi) = _both("max_pool2d_forward", x, k, s, p, ceil_mode, cpu_dtype=np.float32)
    np.testing.assert_array_equal(gy, cy)
    np.testing.assert_array_equal(gi, ci)
    dy = rand(np.random.default_rng(1), *cy.shape).astype(np.float32)
    cdx = C.max_pool2d_backward(x, dy, ci, k, s, p, ceil_mode)
    gdx = CUDA.max_pool2d_backward(dev(x), dev(dy), dev(ci), k, s, p, ceil_mode)
    np.testing.assert_array_equal(host(gdx), cdx)


@pytest.mark.parametrize("k,s", [(2, 2), (3, 1), (3, 2)])
def test_max_pool_ties_and_nan_like_cpu(k, s):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 3, size=(2, 3, 9, 8)).astype(np.float32)  # many ties
    x[0, 1, 4, 4] = np.nan
    x[1, 2, 0, 0] = np.nan
    (cy, ci), (gy, gi) = _both("max_pool2d_forward", x, (k, k), (s, s), (0, 0), False,
                               cpu_dtype=np.float32)
    np.testing.assert_array_equal(gy, cy)  # NaN == NaN in assert_array_equal
    np.testing.assert_array_equal(gi, ci)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("shape,k,s,p", POOL_CASES)
def test_average_pool_matches_cpu(shape, k, s, p, ceil_mode, count_include_pad):
    x = rand(np.random.default_rng(0), *shape)
    k, s, p = _pairs(k), _pairs(s), _pairs(p)
    cy, gy = _both("average_pool2d_forward", x, k, s, p, ceil_mode, count_include_pad)
    assert_close(gy, cy, reduction=k[0] * k[1])
    dy = rand(np.random.default_rng(1), *cy.shape)
    cdx, gdx = _both("average_pool2d_backward", x, dy, k, s, p, ceil_mode, count_include_pad)
    assert_close(gdx, cdx, reduction=k[0] * k[1])


# ---- softmax cross-entropy ----------------------------------------------------------------------

def _targets(rng, n, c, form):
    t = rng.integers(0, c, size=n).astype(np.int64)
    if form == "labels":
        return t
    out = np.zeros((n, c))
    if form == "onehot":
        out[np.arange(n), t] = 1
    else:
        out = rng.random((n, c)) * (rng.random((n, c)) > 0.3)
    return out


@pytest.mark.parametrize("scale", [3.0, 1e4])
@pytest.mark.parametrize("c", [1, 2, 10, 33, 1000])
@pytest.mark.parametrize("n", [1, 37, 300])
@pytest.mark.parametrize("form", ["labels", "onehot", "soft"])
def test_softmax_ce_matches_cpu(n, c, form, scale):
    rng = np.random.default_rng(n * 1000 + c)
    z = scale * rand(rng, n, c)
    t = _targets(rng, n, c, form)
    cl, gl = _both("softmax_cross_entropy_forward", z, t)
    assert gl.shape == ()
    assert np.isfinite(gl)
    assert_close(gl, cl, reduction=n * c, factor=64.0)
    cd, gd = _both("softmax_cross_entropy_backward", z, t, 0.5)
    assert_close(gd, cd, reduction=c, factor=64.0)


def test_softmax_ce_rejects_out_of_range_label_on_device():
    # The reproducer: the report used to fail on its own host copy of a label prefix.
    z = dev(np.zeros((4, 3), np.float32))
    message = "t must hold labels in [0, 3) (z's classes C); got label 3 at row 2"
    for t in (np.array([0, 1, 3, 2]), np.array([0, 1, 3, -1]), np.array([0, 1, 3, 5])):
        td = dev(t.astype(np.int64))
        with raises_exactly(ValueError, message):
            CUDA.softmax_cross_entropy_forward(z, td)
        with raises_exactly(ValueError, message):
            CUDA.softmax_cross_entropy_backward(z, td, 1.0)
    # the first bad row wins wherever it is, the last included, and negative labels too
    with raises_exactly(ValueError,
                        "t must hold labels in [0, 3) (z's classes C); got label -1 at row 3"):
        CUDA.softmax_cross_entropy_forward(z, dev(np.array([0, 1, 2, -1], np.int64)))
    with raises_exactly(ValueError,
                        "t must hold labels in [0, 3) (z's classes C); got label 9 at row 0"):
        CUDA.softmax_cross_entropy_backward(z, dev(np.array([9, 1, 2, -1], np.int64)), 1.0)
    # the same words as the CPU binding's
    with raises_exactly(ValueError, message):
        C.softmax_cross_entropy_forward(np.zeros((4, 3), np.float32), np.array([0, 1, 3, 2]))


@pytest.mark.parametrize("value, shown", [(-1.0, "-1"), (np.nan, "nan"), (np.inf, "inf"),
                                          (-0.25, "-0.25")])
def test_softmax_ce_rejects_bad_target_weights_on_device(value, shown):
    z = dev(np.zeros((4, 3), np.float32))
    t = np.full((4, 3), 1 / 3, np.float32)
    t[2, 1] = value
    t[3, 0] = -5  # a later bad weight: the first in row-major order is reported
    message = f"t must hold finite target weights >= 0; got {shown} at row 2, column 1"
    with raises_exactly(ValueError, message):
        CUDA.softmax_cross_entropy_forward(z, dev(t))
    with raises_exactly(ValueError, message):
        CUDA.softmax_cross_entropy_backward(z, dev(t), 1.0)
    ok = np.zeros((4, 3), np.float32)
    ok[:, 0] = -0.0  # negative zero is >= 0
    ok[:, 1] = 1
    assert np.isfinite(host(CUDA.softmax_cross_entropy_forward(z, dev(ok))))


def test_softmax_ce_on_row_slices_of_device_arrays():
    # Views from slicing feed the kernels: the batch's rows [3, 7) of a device dataset.
    rng = np.random.default_rng(5)
    z = rng.standard_normal((10, 4)).astype(np.float32)
    t = rng.integers(0, 4, 10).astype(np.int64)
    zd, td = dev(z), dev(t)
    want = C.softmax_cross_entropy_forward(z[3:7].astype(np.float64), t[3:7])
    got = host(CUDA.softmax_cross_entropy_forward(zd[3:7], td[3:7]))
    assert_close(got, want, reduction=16, factor=64.0)
    t[5] = 4
    with raises_exactly(ValueError,
                        "t must hold labels in [0, 4) (z's classes C); got label 4 at row 2"):
        CUDA.softmax_cross_entropy_forward(zd[3:7], dev(t)[3:7])


# ---- dense and bias -----------------------------------------------------------------------------

@pytest.mark.parametrize("n,i,o", [(1, 1, 1), (3, 7, 5), (64, 128, 10), (37, 300, 129)])
def test_dense_matches_cpu(n, i, o, tf32_off):
    rng = np.random.default_rng(n + i + o)
    x, w, b = rand(rng, n, i), rand(rng, i, o), rand(rng, o)
    cy, gy = _both("dense_forward", x, w, b)
    assert_close(gy, cy, reduction=i)
    dy = rand(rng, n, o)
    cpu, gpu = _both("dense_backward", x, w, dy, True, True)
    for g, e, r in zip(gpu, cpu, (o, n, n)):
        assert_close(g, e, reduction=r)
    cpu, gpu = _both("dense_backward", x, w, dy, False, False)
    assert gpu[0] is None and gpu[2] is None


@pytest.mark.parametrize("shape", [(2, 3), (4, 5, 6, 7), (1, 16, 1, 1), (3, 2, 5)])
def test_bias_add_and_grad_match_cpu(shape):
    rng = np.random.default_rng(len(shape))
    x, b = rand(rng, *shape), rand(rng, shape[1])
    cy, gy = _both("bias_add", x, b)
    assert_close(gy, cy)
    cg, gg = _both("bias_grad", x)
    assert_close(gg, cg, reduction=x.size // shape[1])


# ---- relu, dropout, optimizers: bitwise the CPU's float32 ---------------------------------------

def test_relu_equals_cpu_bitwise():
    x = rand(np.random.default_rng(0), 5, 7, 11).astype(np.float32)
    x[0, 0, :3] = [np.nan, -0.0, 0.0]
    cy, gy = _both("relu_forward", x, cpu_dtype=np.float32)
    np.testing.assert_array_equal(gy, cy)
    dy = rand(np.random.default_rng(1), *x.shape).astype(np.float32)
    cd, gd = _both("relu_backward", dy, cy, cpu_dtype=np.float32)
    np.testing.assert_array_equal(gd, cd)


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 0.9])
@pytest.mark.parametrize("seed", [0, 1, 2**64 - 1])
def test_dropout_same_mask_as_cpu(ratio, seed):
    x = rand(np.random.default_rng(0), 3, 1000).astype(np.float32)
    x[0, :4] = [np.nan, np.inf, -np.inf, 0.0]
    # Equal values, NaN matching NaN: the GPU writes its canonical NaN for NaN * scale, the CPU
    # keeps the input's payload, so the kept NaN's bytes may differ.
    cy, gy = _both("dropout_forward", x, ratio, seed, cpu_dtype=np.float32)
    np.testing.assert_array_equal(gy, cy)
    assert ((gy == 0) == (cy == 0)).all()
    cd, gd = _both("dropout_backward", x, ratio, seed, cpu_dtype=np.float32)
    np.testing.assert_array_equal(gd, cd)
    cm = C.dropout_mask((3, 1000), ratio, seed, np.float32)
    gm = host(CUDA.dropout_mask((3, 1000), ratio, seed, np.float32))
    assert gm.tobytes() == cm.tobytes()


@pytest.mark.parametrize("momentum,nesterov,wd", [(0.0, False, 0.0), (0.9, False, 1e-4),
                                                  (0.9, True, 0.0)])
def test_sgd_equals_cpu_bitwise(momentum, nesterov, wd):
    rng = np.random.default_rng(0)
    p = rand(rng, 257, 3).astype(np.float32)
    vel = np.zeros_like(p) if momentum else None
    gp, gv = dev(p), dev(vel) if momentum else None
    for step in range(3):
        g = rand(rng, 257, 3).astype(np.float32)
        C.sgd_update(p, g, vel, 0.05, momentum, nesterov, wd)
        CUDA.sgd_update(gp, dev(g), gv, 0.05, momentum, nesterov, wd)
    assert host(gp).tobytes() == p.tobytes()
    if momentum:
        assert host(gv).tobytes() == vel.tobytes()


def test_adam_equals_cpu_bitwise():
    rng = np.random.default_rng(0)
    p = rand(rng, 300).astype(np.float32)
    m, v = np.zeros_like(p), np.zeros_like(p)
    gp, gm, gv = dev(p), dev(m), dev(v)
    for step in range(1, 5):
        g = rand(rng, 300).astype(np.float32)
        C.adam_update(p, g, m, v, step, 1e-3, 0.9, 0.999, 1e-8, 1e-4)
        CUDA.adam_update(gp, dev(g), gm, gv, step, 1e-3, 0.9, 0.999, 1e-8, 1e-4)
    for a, b in ((gp, p), (gm, m), (gv, v)):
        assert host(a).tobytes() == b.tobytes()


# ---- training-loop helpers ----------------------------------------------------------------------

def test_gather_batch_argmax_accuracy():
    rng = np.random.default_rng(0)
    data = rand(rng, 50, 1, 4, 4).astype(np.float32)
    labels = rng.integers(0, 10, size=50).astype(np.int64)
    idx = rng.permutation(50)[:17]
    gd, gl = dev(data), dev(labels)
    np.testing.assert_array_equal(host(CUDA.gather_batch(gd, idx)), data[idx])
    np.testing.assert_array_equal(host(CUDA.gather_batch(gl, dev(idx.astype(np.int64)))),
                                  labels[idx])
    with raises_exactly(ValueError, "indices must be in [0, 50) (data's rows); got 50 at position 1"):
        CUDA.gather_batch(gd, np.array([0, 50]))
    # device indices: the kernel flags the position, the one value is fetched for the message
    with raises_exactly(ValueError, "indices must be in [0, 50) (data's rows); got -1 at position 1"):
        CUDA.gather_batch(gd, dev(np.array([3, -1, 70], np.int64)))
    # a view of the dataset's rows is a dataset too
    np.testing.assert_array_equal(host(CUDA.gather_batch(gd[10:20], np.array([9, 0]))),
                                  data[10:20][[9, 0]])
    z = rand(rng, 17, 10).astype(np.float32)
    np.testing.assert_array_equal(host(CUDA.argmax(dev(z))), z.argmax(axis=1))
    hits = int((z.argmax(axis=1) == labels[idx]).sum())
    assert int(host(CUDA.accuracy_count(dev(z), dev(labels[idx])))) == hits
    onehot = np.eye(10, dtype=np.float32)[labels[idx]]
    assert int(host(CUDA.accuracy_count(dev(z), dev(onehot)))) == hits


# ---- determinism --------------------------------------------------------------------------------

def _gpu_step(x, w, b, dy, t):
    st = pa = di = (1, 1)
    y = CUDA.conv2d_forward(x, w, b, st, pa, di, True)
    grads = CUDA.conv2d_backward(x, w, dy, st, pa, di, True, True, y)
    p, idx = CUDA.max_pool2d_forward(y, (2, 2), (2, 2), (0, 0), False)
    dp = CUDA.max_pool2d_backward(y, p, idx, (2, 2), (2, 2), (0, 0), False)
    z = CUDA.dense_forward(CUDA.relu_forward(dev(host(p).reshape(p.shape[0], -1))), dev(
        np.ones((int(np.prod(p.shape[1:])), 10), np.float32)), None)
    loss = CUDA.softmax_cross_entropy_forward(z, t)
    dz = CUDA.softmax_cross_entropy_backward(z, t, 1.0)
    return [host(a) for a in (y, *grads, p, idx, dp, z, loss, dz)]


def test_forward_backward_twice_bitwise_equal():
    rng = np.random.default_rng(0)
    x = dev(rand(rng, 8, 3, 16, 16).astype(np.float32))
    w = dev(rand(rng, 8, 3, 3, 3).astype(np.float32))
    b = dev(rand(rng, 8).astype(np.float32))
    dy = dev(rand(rng, 8, 8, 16, 16).astype(np.float32))
    t = dev(rng.integers(0, 10, size=8).astype(np.int64))
    first, second = _gpu_step(x, w, b, dy, t), _gpu_step(x, w, b, dy, t)
    for a, c in zip(first, second):
        assert a.tobytes() == c.tobytes()


# ---- malformed calls ----------------------------------------------------------------------------

def _bad_calls():
    x = dev(np.zeros((2, 3, 8, 8), np.float32))
    w = dev(np.zeros((4, 3, 3, 3), np.float32))
    g = ((1, 1), (0, 0), (1, 1))
    return [
        (TypeError, "x", lambda: CUDA.conv2d_forward(dev(np.zeros((2, 3, 8, 8))), w, None, *g,
                                                     False)),  # float64 on the GPU
        (TypeError, "w", lambda: CUDA.conv2d_forward(x, np.zeros((4, 3, 3, 3), np.float32), None,
                                                     *g, False)),  # numpy among device arrays
        (ValueError, "w", lambda: CUDA.conv2d_forward(x, dev(np.zeros((4, 2, 3, 3), np.float32)),
                                                      None, *g, False)),
        (ValueError, "x", lambda: CUDA.relu_backward(x, dev(np.zeros((2, 3), np.float32)))),
        (ValueError, "padding", lambda: CUDA.max_pool2d_forward(x, (2, 2), (1, 1), (2, 2),
                                                                False)),
        (TypeError, "indices", lambda: CUDA.max_pool2d_backward(
            x, dev(np.zeros((2, 3, 4, 4), np.float32)), dev(np.zeros((2, 3, 4, 4), np.float32)),
            (2, 2), (2, 2), (0, 0), False)),
        (TypeError, "t", lambda: CUDA.softmax_cross_entropy_forward(
            dev(np.zeros((2, 3), np.float32)), dev(np.zeros(2, np.float32)))),
        (TypeError, "dtype", lambda: CUDA.dropout_mask((2, 3), 0.5, 1, np.float64)),
        (ValueError, "velocity", lambda: CUDA.sgd_update(
            dev(np.zeros(3, np.float32)), dev(np.zeros(3, np.float32)), None, 0.1, 0.9, False,
            0.0)),
        (ValueError, "b", lambda: CUDA.dense_forward(
            dev(np.zeros((2, 3), np.float32)), dev(np.zeros((3, 4), np.float32)),
            dev(np.zeros(5, np.float32)))),
    ]


def test_malformed_calls_raise_naming_the_argument():
    for exc, name, call in _bad_calls():
        with pytest.raises(exc, match=name):
            call()


def test_malformed_calls_whole_messages():
    x = dev(np.zeros((2, 3, 8, 8), np.float32))
    g = ((1, 1), (0, 0), (1, 1))
    with raises_exactly(TypeError, "x must have dtype float32 (the GPU kernels take float32 only; "
                        "float64 stays on the CPU: use a numpy array there); got float64"):
        CUDA.conv2d_forward(dev(np.zeros((2, 3, 8, 8))), x, None, *g, False)
    with raises_exactly(TypeError, "w must be a fastconv device array (this is a GPU kernel: host "
                        "and device arrays cannot be mixed in one call; move it with "
                        "fastconv.device.to_device(w)); got a numpy (host) array"):
        CUDA.conv2d_forward(x, np.zeros((4, 3, 3, 3), np.float32), None, *g, False)
    with raises_exactly(TypeError, "dtype must be float32 (the GPU kernels take float32 only); "
                        "got float64"):
        CUDA.dropout_mask((2, 3), 0.5, 1, np.float64)
    with raises_exactly(ValueError, "velocity must be a device array of param's shape when "
                        "momentum != 0 (zeros on the first step); got None with momentum 0.9"):
        CUDA.sgd_update(dev(np.zeros(3, np.float32)), dev(np.zeros(3, np.float32)), None, 0.1,
                        0.9, False, 0.0)
    with raises_exactly(TypeError, "data must have dtype float32 or int64 (the GPU kernels take "
                        "float32 only); got float64"):
        CUDA.gather_batch(dev(np.zeros((3, 2))), np.array([0]))


def test_optimizer_state_views_must_not_overlap_the_gradient():
    # Slices of one device buffer can now alias: written arrays must be apart from grad.
    buf = dev(np.zeros((4, 3), np.float32))
    p, g = dev(np.zeros((2, 3), np.float32)), buf[0:2]
    with raises_exactly(ValueError, "velocity shares memory with grad; each state array needs its "
                        "own buffer"):
        CUDA.sgd_update(p, g, buf[1:3], 0.1, 0.9, False, 0.0)
    with raises_exactly(ValueError, "param shares memory with grad; each state array needs its "
                        "own buffer"):
        CUDA.sgd_update(buf[1:3], g, None, 0.1, 0.0, False, 0.0)
    with raises_exactly(ValueError, "m shares memory with grad; each state array needs its own "
                        "buffer"):
        CUDA.adam_update(p, g, buf[1:3], dev(np.zeros((2, 3), np.float32)), 1, 0.1, 0.9, 0.999,
                         1e-8, 0.0)
    CUDA.sgd_update(p, g, buf[2:4], 0.1, 0.9, False, 0.0)  # disjoint rows of one buffer: fine
