"""Input checks and version counters on the Python layer's GPU path, with the stand-in device
module of test_device_path (no GPU needed)."""
import numpy as np

import fastconv as fc
from helpers import raises_exactly
from test_device_path import FakeDeviceArray, fake_gpu  # noqa: F401 (a fixture)


def test_device_layers_refuse_bad_input_and_cast_pixels(fake_gpu):  # noqa: F811
    fc.set_cuda_active(True)
    model = fc.Sequential([fc.Conv2d(2, padding=1), fc.Relu(), fc.Flatten(), fc.Dense(3)])
    with raises_exactly(TypeError, "x must be an array of real numbers (float, int or bool); got "
                                   "an array of dtype complex64 and shape (1, 1, 4, 4)"):
        model(np.zeros((1, 1, 4, 4), np.complex64))
    y = model(np.zeros((1, 1, 4, 4), np.uint8))  # pixels go up as float32
    assert isinstance(y._value, FakeDeviceArray) and y.dtype == np.float32


def test_device_dense_input_size_and_version_counters(fake_gpu):  # noqa: F811
    fc.set_cuda_active(True)
    layer = fc.Dense(2, input_size=3)
    assert isinstance(layer.params.w._value, FakeDeviceArray)  # made where the layers live
    with layer.train():
        loss = fc.softmax_cross_entropy(layer(np.ones((2, 3), np.float32)), np.array([0, 1]))
    layer.params.w[0, 0] = 2.0  # a device Variable is written by a fresh upload
    with raises_exactly(RuntimeError, "the Variable Dense.w of shape (3, 2) used by dense was "
                                      "modified in place (version 0 -> 1) after the forward "
                                      "pass; run the forward again before grad()"):
        loss.grad()
    with layer.train():
        loss = fc.softmax_cross_entropy(layer(np.ones((2, 3), np.float32)), np.array([0, 1]))
    loss.grad().update(fc.Adam())
    assert layer.params.w._version == 2 and layer.params.w[0, 0] != 2.0
