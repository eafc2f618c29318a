"""The autograd against float64 finite differences, and the Node/Variable API."""
import numpy as np
import pytest

import fastconv as fc
from helpers import assert_grad, numerical_grad


def small_model():
    return fc.Sequential([
        fc.Conv2d(channel=3, filter=3, padding=1), fc.Relu(),
        fc.Conv2d(channel=4, filter=(2, 3), stride=(1, 2)), fc.Relu(),
        fc.MaxPool2d(filter=2, stride=2), fc.AveragePool2d(filter=2, stride=1, padding=1),
        fc.Dropout(0.3), fc.Flatten(), fc.Dense(6), fc.Relu(), fc.Dense(4),
    ])


def test_sequential_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    x = fc.Variable(rng.standard_normal((2, 2, 7, 9)))
    labels = np.array([1, 3])
    model = small_model()
    model(x)  # create the parameters first: their initialisation also draws from np.random

    def loss():
        np.random.seed(5)  # the Dropout layer draws its seed here: the same mask every call
        return fc.softmax_cross_entropy(model(x), labels)

    with model.train():
        out = loss()
    grads = out.grad()
    params = list(model.parameters())
    assert len(params) == 8 and all(p.dtype == np.float64 for p in params)
    for var in params + [x]:
        num = numerical_grad(lambda: float(loss()), var.as_ndarray())
        assert_grad(grads.get(var), num, rtol=1e-5)


def test_node_arithmetic_broadcasting_and_reductions():
    rng = np.random.default_rng(1)
    a = fc.Variable(rng.standard_normal((3, 4)))
    b = fc.Variable(rng.standard_normal((1, 4)))
    c = fc.Variable(rng.standard_normal((3, 1)) + 3.0)

    def f():
        d = (a - b) * (a + 2.0) / c - 1.5 * b
        return ((d * d).mean(axis=0).sum() + (-a).reshape(12).sum() / 7.0 + (2.0 - c).sum())

    out = f()
    g = out.grad()
    for var in (a, b, c):
        num = numerical_grad(lambda: float(f()), var.as_ndarray())
        assert_grad(g.get(var), num)


def test_node_behaves_like_its_array():
    w = fc.Variable(np.arange(12, dtype=np.float32).reshape(3, 4))
    assert w.shape == (3, 4) and w.dtype == np.float32 and len(w) == 3
    np.testing.assert_array_equal(w[1, 2:], [6, 7])
    np.testing.assert_array_equal(np.asarray(w), w.as_ndarray())
    s = w.sum()
    assert float(s) == 66.0 and s.as_ndarray().shape == ()
    assert isinstance(np.float32(2) * w, fc.Node)  # numpy scalars defer to Node


def test_grad_initial_and_unused_variables():
    a = fc.Variable(np.ones((2, 2)))
    unused = fc.Variable(np.ones(3))
    y = a * 3.0
    g = y.grad(initial=np.full((2, 2), 2.0))
    np.testing.assert_array_equal(g.get(a), np.full((2, 2), 6.0))
    assert g.get(unused) is None
    with pytest.raises(ValueError, match="initial"):
        y.grad(initial=np.ones(3))


def test_parameters_tracked_only_under_train():
    model = fc.Sequential([fc.Dense(3)])
    x = np.ones((2, 5), np.float32)
    plain = model(x)
    assert not plain._tracked  # inference builds no graph
    with model.train():
        loss = fc.softmax_cross_entropy(model(x), np.array([0, 2]))
    g = loss.grad()
    assert g.get(model[0].params.w).shape == (5, 3)
    assert g.get(model[0].params.b).shape == (1, 3)
