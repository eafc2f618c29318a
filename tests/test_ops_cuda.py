"""What crosses the ops on the GPU (marked `cuda`: skipped with the reason where no GPU is
usable): a forward and backward pass through conv, pooling, relu, dense and the loss run twice
gives the same bits, and the malformed-call tables of every op's CUDA binding. Each op against its
CPU twin: tests/test_X_cuda.py."""
from __future__ import annotations

import numpy as np
import pytest

from fastconv._native import CUDA
from helpers import dev, host, raises_exactly, rand

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("poison_gpu_outputs")]


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
        (ValueError, "y", lambda: CUDA.relu_backward(x, dev(np.zeros((2, 3), np.float32)))),
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

