"""The fused conv + ReLU + 2x2 max pool through autograd (F.conv2d_relu_max_pool2d) and in
Sequential, which fuses Conv2d -> Relu -> MaxPool2d(2, 2) on the CPU; and the fused op's input
checks."""
import numpy as np
import pytest

import fastconv as fc
import fastconv.functional as F
import fastconv.ops as ops
from fastconv import sequential
from helpers import DTYPES, rand, raises_exactly, train_tutorial_cnn
from test_device_path import FakeDeviceArray, fake_gpu  # noqa: F401 (a fixture)


def _variables(dtype, seed=0, bias=True):
    rng = np.random.default_rng(seed)
    x = fc.Variable(rand(rng, 3, 4, 9, 8, dtype=dtype))
    w = fc.Variable(rand(rng, 5, 4, 3, 3, dtype=dtype))
    b = fc.Variable(rand(rng, 1, 5, 1, 1, dtype=dtype)) if bias else None
    return x, w, b


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_one_node_with_the_gradients_of_the_composition(dtype, bias):
    x, w, b = _variables(dtype, bias=bias)
    dy = rand(np.random.default_rng(1), 3, 5, 4, 4, dtype=dtype)
    fused = F.conv2d_relu_max_pool2d(x, w, b, 1, 1, 1)
    chain = F.max_pool2d(F.conv2d(x, w, b, 1, 1, 1, relu=True), 2, 2, 0)
    assert fused._op == "conv2d_relu_max_pool2d" and fused._parents[0] is x
    assert np.asarray(fused).tobytes() == np.asarray(chain).tobytes()
    g_fused = (fused * fc.Variable(dy)).sum().grad()
    g_chain = (chain * fc.Variable(dy)).sum().grad()
    for p in (x, w) + ((b,) if bias else ()):
        assert np.asarray(g_fused.get(p)).tobytes() == np.asarray(g_chain.get(p)).tobytes()


def _no_fusion(monkeypatch):
    monkeypatch.setattr(sequential, "_conv_relu_pool", lambda layers, i: False)


@pytest.mark.parametrize("algorithm", ["auto", "im2col"])
def test_training_the_tutorial_cnn_is_bitwise_unchanged(monkeypatch, algorithm):
    rng = np.random.default_rng(5)
    x = rng.random((8, 1, 28, 28)).astype(np.float32)
    t = rng.integers(0, 10, 8)
    before = fc.conv_algorithm()
    fc.set_conv_algorithm(algorithm)
    try:
        fused_model, _, fused_losses = train_tutorial_cnn(x, t, steps=3, seed=3)
        with monkeypatch.context() as m:
            _no_fusion(m)
            plain_model, _, plain_losses = train_tutorial_cnn(x, t, steps=3, seed=3)
    finally:
        fc.set_conv_algorithm(before)
    assert fused_losses == plain_losses
    fused_params = dict(fused_model.named_parameters())
    for name, p in plain_model.named_parameters():
        assert np.asarray(fused_params[name]).tobytes() == np.asarray(p).tobytes(), name


def _calls(monkeypatch):
    calls = []
    real = F.conv2d_relu_max_pool2d
    monkeypatch.setattr(F, "conv2d_relu_max_pool2d",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


@pytest.mark.parametrize("pool,fused", [
    (dict(filter=2, stride=2), True),
    (dict(filter=2, stride=2, ceil_mode=True), False),
    (dict(filter=2, stride=1), False),
    (dict(filter=3, stride=2), False),
    (dict(filter=2, stride=2, padding=1), False),
])
def test_sequential_fuses_only_the_2x2_stride_2_pool(monkeypatch, pool, fused):
    calls = _calls(monkeypatch)
    x = np.random.default_rng(0).random((2, 3, 9, 9)).astype(np.float32)
    model = fc.Sequential([fc.Conv2d(4, 3, padding=1), fc.Relu(), fc.MaxPool2d(**pool)])
    y = model(x)
    assert len(calls) == int(fused)
    with monkeypatch.context() as m:
        _no_fusion(m)
        expected = model(x)
    assert np.asarray(y).tobytes() == np.asarray(expected).tobytes()


def test_sequential_without_the_relu_or_the_pool_is_not_fused(monkeypatch):
    calls = _calls(monkeypatch)
    x = np.ones((1, 1, 6, 6), np.float32)
    fc.Sequential([fc.Conv2d(2, 3), fc.MaxPool2d(2, stride=2)])(x)
    fc.Sequential([fc.Conv2d(2, 3), fc.Relu()])(x)
    fc.Sequential([fc.Conv2d(2, 3), fc.Relu(), fc.Dropout(0.5), fc.MaxPool2d(2, stride=2)])(x)
    assert calls == []


# ---- input checks: the conv's and pool's wording, the pooled arrays named ----------------------

def _args():
    rng = np.random.default_rng(0)
    x, w = rand(rng, 2, 3, 6, 7), rand(rng, 4, 3, 3, 3)
    y, idx = ops.conv2d_relu_max_pool2d_forward(x, w, None, 1, 1)
    return x, w, y, idx


def test_bad_inputs_name_the_argument():
    x, w, y, idx = _args()
    with raises_exactly(ValueError, "x must be 4-D (N, C, H, W); got shape (3, 6, 7)"):
        ops.conv2d_relu_max_pool2d_forward(x[0], w)
    with raises_exactly(ValueError, "w.shape[1] must be 3 (x's channels); got shape (4, 2, 3, 3)"):
        ops.conv2d_relu_max_pool2d_forward(x, w[:, :2].copy())
    with raises_exactly(TypeError, "w must have the dtype of x (float64); got float32"):
        ops.conv2d_relu_max_pool2d_forward(x, w.astype(np.float32))
    with raises_exactly(ValueError, "the convolution's output must be at least 2x2 (the max "
                        "pool's window); got 1x2 from x.shape[2:] 3x4 with this w, stride, "
                        "padding and dilation"):
        ops.conv2d_relu_max_pool2d_forward(x[:, :, :3, :4].copy(), w)
    with raises_exactly(ValueError, "dy must have the shape of the pooled output (2, 4, 3, 3); "
                        "got (2, 4, 3, 4)"):
        ops.conv2d_relu_max_pool2d_backward(x, w, np.zeros((2, 4, 3, 4)), y, idx, 1, 1)
    with raises_exactly(ValueError, "y must have the shape of the pooled output (2, 4, 3, 3); "
                        "got (2, 4, 3, 2)"):
        ops.conv2d_relu_max_pool2d_backward(x, w, y, y[..., :2].copy(), idx, 1, 1)
    with raises_exactly(ValueError, "indices must have the shape of the pooled output "
                        "(2, 4, 3, 3); got (1, 4, 3, 3)"):
        ops.conv2d_relu_max_pool2d_backward(x, w, y, y, idx[:1].copy(), 1, 1)
    with raises_exactly(TypeError, "need_dx must be a bool; got str 'yes'"):
        ops.conv2d_relu_max_pool2d_backward(x, w, y, y, idx, 1, 1, need_dx="yes")
    with raises_exactly(TypeError, "x must be a numpy array or a fastconv DeviceArray; got list"):
        ops.conv2d_relu_max_pool2d_forward([1.0], w)


# ---- on the GPU: the op refuses device arrays; the functional (and so Sequential) composes --------

def test_the_op_refuses_device_arrays(fake_gpu):
    x, w, y, idx = _args()
    with raises_exactly(TypeError, "x must be a numpy array (conv2d_relu_max_pool2d runs on the "
                        "CPU only; on the GPU use conv2d_forward(relu=True) then "
                        "max_pool2d_forward); got FakeDeviceArray"):
        ops.conv2d_relu_max_pool2d_forward(FakeDeviceArray(x), FakeDeviceArray(w))
    with raises_exactly(TypeError, "x must be a numpy array (conv2d_relu_max_pool2d runs on the "
                        "CPU only; on the GPU use conv2d_forward(relu=True) then "
                        "max_pool2d_forward); got FakeDeviceArray"):
        ops.conv2d_relu_max_pool2d_backward(FakeDeviceArray(x), w, y, y, idx)


def test_the_functional_composes_on_the_device(fake_gpu):
    x, w, b = _variables(np.float32)
    cpu = F.conv2d_relu_max_pool2d(x, w, b, 1, 1, 1)
    wd, bd = (fc.Variable(FakeDeviceArray(np.asarray(v).copy())) for v in (w, b))
    gpu = F.conv2d_relu_max_pool2d(np.asarray(x), wd, bd, 1, 1, 1)
    assert gpu._op == "max_pool2d"
    assert gpu._value._a.tobytes() == np.asarray(cpu).tobytes()
    dy = rand(np.random.default_rng(1), 3, 5, 4, 4, dtype=np.float32)
    g_gpu = gpu.grad(FakeDeviceArray(dy))
    g_cpu = cpu.grad(dy)
    assert g_gpu.get(wd)._a.tobytes() == np.asarray(g_cpu.get(w)).tobytes()
