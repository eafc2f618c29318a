"""Dense, bias_add and bias_grad on the GPU against their CPU twins (marked `cuda`: skipped with
the reason where no GPU is usable): float32 GPU results against the CPU's float64, with
tolerances scaled by the reduction length (TF32 off). Outputs are poisoned (NaN) first on both
backends."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import assert_close, both, rand

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("poison_gpu_outputs")]


@pytest.mark.parametrize("n,i,o", [(1, 1, 1), (3, 7, 5), (64, 128, 10), (37, 300, 129)])
def test_dense_matches_cpu(n, i, o, tf32_off, epilogues):
    rng = np.random.default_rng(n + i + o)
    x, w, b = rand(rng, n, i), rand(rng, i, o), rand(rng, o)
    cy, gy = both("dense_forward", x, w, b)
    assert_close(gy, cy, reduction=i)
    dy = rand(rng, n, o)
    cpu, gpu = both("dense_backward", x, w, dy, True, True)
    for g, e, r in zip(gpu, cpu, (o, n, n)):
        assert_close(g, e, reduction=r)
    cpu, gpu = both("dense_backward", x, w, dy, False, False)
    assert gpu[0] is None and gpu[2] is None


def _asked(fn):
    """(GEMMs cuBLASLt fused, GEMMs it refused) while fn runs."""
    from fastconv._native import CUDA

    before = CUDA._gemm_epilogue_stats()
    fn()
    after = CUDA._gemm_epilogue_stats()
    return after["fused"] - before["fused"], after["refused"] - before["refused"]


@pytest.mark.parametrize("n,i,o", [(1, 1, 1), (3, 5, 4)])
def test_which_dense_gemms_ask_for_an_epilogue(n, i, o, tf32_off):
    # The forward with a bias or a ReLU and the dW GEMM with a bias gradient each ask once;
    # GEMMs with nothing to fuse never ask.
    from fastconv._native import CUDA
    from helpers import cuda_emulated, dev

    rng = np.random.default_rng(9)
    x, w, b, dy = (dev(rand(rng, *s).astype(np.float32)) for s in ((n, i), (i, o), (o,), (n, o)))
    for args, want in (((x, w, b), 1), ((x, w, None, True), 1), ((x, w, None), 0)):
        got = _asked(lambda: CUDA.dense_forward(*args))
        assert sum(got) == want and (not cuda_emulated() or got == (want, 0))
    got = _asked(lambda: CUDA.dense_backward(x, w, dy, True, True))
    assert sum(got) == 1 and (not cuda_emulated() or got == (1, 0))
    assert _asked(lambda: CUDA.dense_backward(x, w, dy, True, False)) == (0, 0)
    cpu, gpu = both("dense_backward", *(rand(rng, *s) for s in ((n, i), (i, o), (n, o))), True,
                    True)
    for g, e in zip(gpu, cpu):
        assert_close(g, e, reduction=max(n, o))


@pytest.mark.parametrize("shape", [(2, 3), (4, 5, 6, 7), (1, 16, 1, 1), (3, 2, 5)])
def test_bias_add_and_grad_match_cpu(shape):
    rng = np.random.default_rng(len(shape))
    x, b = rand(rng, *shape), rand(rng, shape[1])
    cy, gy = both("bias_add", x, b)
    assert_close(gy, cy)
    cg, gg = both("bias_grad", x)
    assert_close(gg, cg, reduction=x.size // shape[1])


# bias_grad cuts each channel's N*inner terms into chunks of 4,096 (one block each), then adds the
# chunks' sums per channel: these shapes make several chunks, chunk boundaries inside a sample
# (inner 5,000), and inner 1 (the dense layer's (N, Out) layout).
@pytest.mark.parametrize("shape", [(64, 8, 30, 30), (3, 2, 5000), (20000, 3), (257, 5, 7, 9)])
def test_bias_grad_in_chunks_matches_cpu_and_repeats_bitwise(shape):
    from fastconv._native import CUDA
    from helpers import dev, host

    x = rand(np.random.default_rng(9), *shape)
    cg, gg = both("bias_grad", x)
    assert_close(gg, cg, reduction=x.size // shape[1])
    d = dev(x.astype(np.float32))
    np.testing.assert_array_equal(host(CUDA.bias_grad(d)), host(CUDA.bias_grad(d)))


# ---- the fused ReLU: dense_forward(relu=True), dense_backward(relu_y=y) -------------------------

DENSE_SHAPES = [(1, 1, 1), (3, 7, 5), (64, 128, 10), (37, 300, 129)]


@pytest.mark.parametrize("n,i,o", DENSE_SHAPES)
def test_dense_relu_matches_cpu(n, i, o, tf32_off, epilogues):
    rng = np.random.default_rng(n + i + o + 1)
    x, w, b = rand(rng, n, i), rand(rng, i, o), rand(rng, o)
    cy, gy = both("dense_forward", x, w, b, True)
    assert_close(gy, cy, reduction=i)
    assert (gy >= 0).all()
    dy = rand(rng, n, o)
    # Both backends mask by the GPU's own y (near 0 the CPU's sign could differ by rounding).
    cpu, gpu = both("dense_backward", x, w, dy, True, True, gy)
    for g, e, r in zip(gpu, cpu, (o, n, n)):
        assert_close(g, e, reduction=r)
    cpu, gpu = both("dense_backward", x, w, dy, False, False, gy)
    assert gpu[0] is None and gpu[2] is None
    assert_close(gpu[1], cpu[1], reduction=n)


@pytest.mark.parametrize("n,i,o", DENSE_SHAPES)
def test_dense_relu_is_the_unfused_chain_bitwise(n, i, o, own_passes):
    from fastconv._native import CUDA
    from helpers import dev, host

    rng = np.random.default_rng(n * i + o)
    x, w, b, dy = (dev(rand(rng, *s).astype(np.float32)) for s in ((n, i), (i, o), (o,), (n, o)))
    y = CUDA.dense_forward(x, w, b, True)
    assert host(y).tobytes() == host(CUDA.relu_forward(CUDA.dense_forward(x, w, b))).tobytes()
    got = CUDA.dense_backward(x, w, dy, True, True, y)
    want = CUDA.dense_backward(x, w, CUDA.relu_backward(dy, y), True, True)
    for g, e in zip(got, want):
        assert host(g).tobytes() == host(e).tobytes()


def test_functional_and_sequential_relu_fusion_on_the_gpu(own_passes):
    import fastconv as fc
    import fastconv.functional as F
    from helpers import dev, host

    rng = np.random.default_rng(3)
    x = fc.Variable(dev(rand(rng, 5, 6).astype(np.float32)))
    w = fc.Variable(dev(rand(rng, 6, 4).astype(np.float32)))
    b = fc.Variable(dev(rand(rng, 1, 4).astype(np.float32)))
    dy = rand(rng, 5, 4).astype(np.float32)
    fused, chain = F.dense(x, w, b, relu=True), F.relu(F.dense(x, w, b))
    assert fused._op == "dense" and host(fused._value).tobytes() == host(chain._value).tobytes()
    g_fused, g_chain = fused.grad(dy), chain.grad(dy)
    for p in (x, w, b):
        assert host(g_fused.get(p)).tobytes() == host(g_chain.get(p)).tobytes()
    fc.set_cuda_active(True)  # the model's parameters made on the GPU
    try:
        model = fc.Sequential([fc.Dense(4), fc.Relu()])
        y, p = model(x), model.l0.params
    finally:
        fc.set_cuda_active(False)
    want = F.relu(F.dense(x, p["w"], p["b"]))
    assert y._op == "dense" and host(y._value).tobytes() == host(want._value).tobytes()


def test_relu_y_is_checked():
    from fastconv._native import CUDA
    from helpers import dev, raises_exactly

    x, w, dy = (dev(np.zeros(s, np.float32)) for s in ((4, 3), (3, 5), (4, 5)))
    with raises_exactly(ValueError, "relu_y must have the shape of dy (4, 5); got (3, 5)"):
        CUDA.dense_backward(x, w, dy, True, True, dev(np.zeros((3, 5), np.float32)))
    with raises_exactly(ValueError, "relu_y must be 2-D (N, Out); got shape (20,)"):
        CUDA.dense_backward(x, w, dy, True, True, dev(np.zeros(20, np.float32)))
    with raises_exactly(TypeError, "relu_y must be a fastconv device array (this is a GPU kernel: "
                        "host and device arrays cannot be mixed in one call; move it with "
                        "fastconv.device.to_device(relu_y)); got a numpy (host) array"):
        CUDA.dense_backward(x, w, dy, True, True, np.zeros((4, 5), np.float32))
    with raises_exactly(TypeError, "relu must be a bool; got NoneType"):
        CUDA.dense_forward(x, w, None, None)
