"""The autograd against float64 finite differences, and the Node/Variable API."""
import numpy as np
import pytest

import fastconv as fc
from helpers import assert_grad, numerical_grad, raises_exactly


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
    with raises_exactly(ValueError, "initial must have shape (2, 2); got shape (3,)"):
        y.grad(initial=np.ones(3))
    with raises_exactly(TypeError, "initial must be an array of real numbers (float, int or "
                                   "bool); got complex 1j"):
        y.grad(initial=1j)


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


# ---- Variable values (issue 8) -------------------------------------------------------------------
VALUE = "value must be an array of real numbers (float, int or bool); got "


def test_variable_keeps_a_0d_value_0d():
    v = fc.Variable(np.float64(2))
    assert v.shape == () and v.dtype == np.float64 and float(v) == 2.0
    assert fc.Variable(3).shape == ()
    g = (v * v).grad()
    assert float(g.get(v)) == 4.0
    fc.Sgd(lr=0.5, momentum=0.0).step(v, g.get(v))  # the optimiser takes 0-d parameters too
    assert v.shape == () and float(v) == 0.0


def test_variable_dtypes():
    assert fc.Variable(np.ones(2, np.float32)).dtype == np.float32
    assert fc.Variable(np.ones(2)).dtype == np.float64
    for dtype in (np.uint8, np.int64, np.bool_, np.float16):
        assert fc.Variable(np.ones(2, dtype)).dtype == np.float32
    assert fc.Variable(np.ones(2, np.longdouble)).dtype == np.float64
    src = np.ones((3, 4))[:, ::2]
    v = fc.Variable(src)
    assert v._value.flags.c_contiguous and v._value is not src
    np.testing.assert_array_equal(v.as_ndarray(), src)


@pytest.mark.parametrize("bad,got", [
    (None, "None"),
    (np.array([1j]), "an array of dtype complex128 and shape (1,)"),
    ("2.0", "str '2.0'"),
    (np.array([None]), "an array of dtype object and shape (1,)"),
    ([1, "a"], "a list that numpy reads as dtype <U21"),
])
def test_variable_refuses_non_real_values(bad, got):
    with raises_exactly(TypeError, VALUE + got):
        fc.Variable(bad)
    v = fc.Variable(np.zeros(2))
    with raises_exactly(TypeError, VALUE + got):
        v[0] = bad
    with raises_exactly(TypeError, VALUE + got):
        v.copy_from(bad)
    assert v._version == 0  # a refused write is no write


# ---- in-place writes between forward and grad() (issue 8) ----------------------------------------
def modified(which, op, before, after):
    return raises_exactly(RuntimeError, f"{which} used by {op} was modified in place (version "
                                        f"{before} -> {after}) after the forward pass; run the "
                                        "forward again before grad()")


def test_setitem_after_forward_is_caught():
    x = np.ones((2, 4))
    w = fc.Variable(np.ones((4, 3)))
    y = fc.dense(x, w)
    w[0, 0] = 5.0
    with modified("a Variable of shape (4, 3)", "dense", 0, 1):
        y.grad()
    y = fc.dense(x, w)  # a fresh forward sees the new value
    np.testing.assert_array_equal(y.grad().get(w), np.full((4, 3), 2.0))


def test_copy_from_after_forward_is_caught():
    w = fc.Variable(np.ones((3, 2, 3, 3)))
    y = fc.conv2d(np.ones((1, 2, 5, 5)), w)
    w.copy_from(np.zeros((3, 2, 3, 3)))
    with modified("a Variable of shape (3, 2, 3, 3)", "conv2d", 0, 1):
        y.grad()


def test_an_input_variable_is_checked_too():
    x = fc.Variable(np.ones((2, 3)))
    loss = (fc.relu(x) * 2.0).sum()
    x[1] = -1.0
    with modified("a Variable of shape (2, 3)", "relu", 0, 1):
        loss.grad()


def test_training_loop_updates_after_the_backward_and_a_second_grad_is_refused():
    np.random.seed(0)
    model = fc.Sequential([fc.Conv2d(2, padding=1), fc.Relu(), fc.Flatten(), fc.Dense(3)])
    x, t = np.random.default_rng(0).random((4, 1, 5, 5)), np.array([0, 1, 2, 0])
    opt = fc.Sgd(lr=0.1, momentum=0.9)
    losses = []
    for _ in range(3):  # the normal loop: forward, grad, update
        with model.train():
            loss = fc.softmax_cross_entropy(model(x), t)
        loss.grad().update(opt)
        losses.append(float(loss))
    assert losses[-1] < losses[0]
    assert [p._version for p in model.parameters()] == [3, 3, 3, 3]
    with modified("the Variable Dense.w of shape (50, 3)", "dense", 2, 3):
        loss.grad()  # the graph of the last step, after its update


def test_adam_step_and_load_bump_the_version(tmp_path):
    model = fc.Sequential([fc.Dense(2)])
    x = np.ones((1, 3), np.float32)
    model(x)
    model.save(tmp_path / "m.npz")
    with model.train():
        loss = (model(x) * 1.0).sum()
    fc.Adam().step(model[0].params.b, np.ones((1, 2), np.float32))
    with modified("the Variable Dense.b of shape (1, 2)", "dense", 0, 1):
        loss.grad()
    with model.train():
        loss = (model(x) * 1.0).sum()
    model.load(tmp_path / "m.npz")
    with modified("the Variable Dense.w of shape (3, 2)", "dense", 0, 1):
        loss.grad()


def test_writes_to_unrelated_variables_and_after_grad_are_fine():
    a, b = fc.Variable(np.ones(3)), fc.Variable(np.ones(3))
    y = (a * 2.0).sum()
    b[0] = 7.0  # not in this graph
    g = y.grad()
    a[0] = 7.0  # after the backward
    np.testing.assert_array_equal(g.get(a), [2.0, 2.0, 2.0])


def test_optimizer_step_needs_a_variable():
    with raises_exactly(TypeError, "variable must be a fastconv Variable; got an array of dtype "
                                   "float64 and shape (2,)"):
        fc.Sgd().step(np.ones(2), np.ones(2))


def test_copy_from_checks_the_shape():
    v = fc.Variable(np.zeros((3, 2)))
    with raises_exactly(ValueError, "value must have shape (3, 2); got shape (2,)"):
        v.copy_from([1.0, 2.0])
    assert v._version == 0
