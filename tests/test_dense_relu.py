"""The dense layer with its ReLU fused (ops.dense_forward(relu=True), dense_backward(relu_y=y)),
through autograd (F.dense(relu=True)) and in Sequential, which fuses a Dense followed by a Relu:
against the numpy reference, finite differences, and bitwise against the unfused chain."""
import numpy as np
import pytest

import fastconv as fc
import fastconv.functional as F
import fastconv.ops as ops
import fastconv.reference as ref
from fastconv._native import C
from helpers import (DTYPES, assert_close, assert_grad, assert_same_bits_twice_and_on_one_thread,
                     numerical_grad, raises_exactly, rand)
from test_dense import SIZES, bias_of


def _f64(a):
    return None if a is None else a.astype(np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [None, "flat", "row"])
@pytest.mark.parametrize("out", SIZES)
@pytest.mark.parametrize("inp", SIZES)
@pytest.mark.parametrize("n", [1, 33])
def test_fused_relu_matches_reference(n, inp, out, bias, dtype):
    rng = np.random.default_rng(n + 10 * inp + 1000 * out + 7)
    x, w = rand(rng, n, inp, dtype=dtype), rand(rng, inp, out, dtype=dtype)
    b = bias_of(rng, out, bias, dtype)
    y = ops.dense_forward(x, w, b, relu=True)
    assert y.shape == (n, out) and y.dtype == dtype
    assert_close(y, ref.dense_forward(_f64(x), _f64(w), _f64(b), relu=True), reduction=inp + 1)
    assert (y >= 0).all()
    dy = rand(rng, n, out, dtype=dtype)
    dx, dw, db = ops.dense_backward(x, w, dy, relu_y=y)
    rdx, rdw, rdb = ref.dense_backward(_f64(x), _f64(w), _f64(dy), relu_y=_f64(y))
    assert dx.dtype == dw.dtype == db.dtype == dtype and db.shape == (out,)
    assert_close(dx, rdx, reduction=out)
    assert_close(dw, rdw, reduction=n)
    assert_close(db, rdb, reduction=n)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1, 1), (33, 129, 7), (300, 129, 257)])
def test_fused_relu_is_the_unfused_chain_bitwise(shape, dtype):
    # (300, 129, 257): GEMMs of several tiles, the mask pass and the column sums on both threads.
    n, inp, out = shape
    rng = np.random.default_rng(n + inp + out)
    x, w, b = (rand(rng, n, inp, dtype=dtype), rand(rng, inp, out, dtype=dtype),
               rand(rng, out, dtype=dtype))
    y = ops.dense_forward(x, w, b, relu=True)
    assert y.tobytes() == ops.relu_forward(ops.dense_forward(x, w, b)).tobytes()
    dy = rand(rng, n, out, dtype=dtype)
    for need_dx, need_db in [(True, True), (False, False)]:
        got = ops.dense_backward(x, w, dy, need_dx, need_db, relu_y=y)
        want = ops.dense_backward(x, w, ops.relu_backward(dy, y), need_dx, need_db)
        for a, e in zip(got, want):
            assert (a is None and e is None) or a.tobytes() == e.tobytes()


def test_fused_relu_keeps_nan_and_masks_by_the_output():
    x = np.array([[1.0], [-1.0], [np.nan]])
    w = np.array([[2.0, -3.0]])
    y = ops.dense_forward(x, w, relu=True)
    np.testing.assert_array_equal(y, [[2.0, 0.0], [0.0, 3.0], [np.nan, np.nan]])
    dy = np.full((3, 2), 5.0)
    dx, dw, db = ops.dense_backward(x[:2], w, dy[:2], relu_y=y[:2])
    np.testing.assert_array_equal(db, [5.0, 5.0])      # one positive output per column
    np.testing.assert_array_equal(dx, [[10.0], [-15.0]])
    np.testing.assert_array_equal(dw, [[5.0, -5.0]])


def test_fused_relu_gradients_match_finite_differences():
    rng = np.random.default_rng(2)
    x, w, b = rand(rng, 5, 4), rand(rng, 4, 6), rand(rng, 1, 6)
    g = rand(rng, 5, 6)

    def f():
        return float((ops.dense_forward(x, w, b, relu=True) * g).sum())

    y = ops.dense_forward(x, w, b, relu=True)
    assert 0 < (y > 0).sum() < y.size  # both sides of the ReLU are exercised
    dx, dw, db = ops.dense_backward(x, w, g, relu_y=y)
    assert_grad(dx, numerical_grad(f, x))
    assert_grad(dw, numerical_grad(f, w))
    assert_grad(db, numerical_grad(f, b).reshape(-1))


def test_fused_relu_is_deterministic():
    rng = np.random.default_rng(4)
    x, w = rand(rng, 300, 129, dtype=np.float32), rand(rng, 129, 257, dtype=np.float32)
    b, dy = rand(rng, 257, dtype=np.float32), rand(rng, 300, 257, dtype=np.float32)

    def run():
        y = ops.dense_forward(x, w, b, relu=True)
        return b"".join(o.tobytes() for o in (y, *ops.dense_backward(x, w, dy, relu_y=y)))

    assert_same_bits_twice_and_on_one_thread(run)


F32 = np.float32
X, W, DY = np.zeros((4, 3), F32), np.zeros((3, 5), F32), np.zeros((4, 5), F32)

BAD_CALLS = [
    (TypeError, "relu must be a bool; got NoneType None",
     lambda: ops.dense_forward(X, W, relu=None)),
    (TypeError, "relu must be a bool; got str", lambda: C.dense_forward(X, W, None, "yes")),
    (ValueError, "relu_y must have the shape of dy (4, 5); got (3, 5)",
     lambda: ops.dense_backward(X, W, DY, relu_y=DY[:3])),
    (ValueError, "relu_y must be 2-D (N, Out); got shape (20,)",
     lambda: ops.dense_backward(X, W, DY, relu_y=DY.reshape(-1))),
    (TypeError, "relu_y must have the dtype of dy (float32); got float64",
     lambda: ops.dense_backward(X, W, DY, relu_y=DY.astype(np.float64))),
    (TypeError, "relu_y must be a numpy array (N, Out); got list",
     lambda: ops.dense_backward(X, W, DY, relu_y=DY.tolist())),
    (ValueError, "relu_y must be C-contiguous (pass numpy.ascontiguousarray(relu_y)); got shape "
     "(4, 5) with strides (4, 16)", lambda: ops.dense_backward(X, W, DY, relu_y=DY.T.copy().T)),
]


@pytest.mark.parametrize("case", range(len(BAD_CALLS)))
def test_fused_relu_rejects_bad_input(case):
    err, message, call = BAD_CALLS[case]
    with raises_exactly(err, message):
        call()


# ---- autograd and Sequential ------------------------------------------------------------------

def _same_grads(out_a, out_b, params, dy):
    g_a = (out_a * fc.Variable(dy)).sum().grad()
    g_b = (out_b * fc.Variable(dy)).sum().grad()
    for p in params:
        assert g_a.get(p) is not None
        assert np.asarray(g_a.get(p)).tobytes() == np.asarray(g_b.get(p)).tobytes()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_functional_fused_node_equals_dense_then_relu(dtype, bias):
    rng = np.random.default_rng(5)
    x, w = fc.Variable(rand(rng, 7, 9, dtype=dtype)), fc.Variable(rand(rng, 9, 4, dtype=dtype))
    b = fc.Variable(rand(rng, 1, 4, dtype=dtype)) if bias else None
    fused, chain = F.dense(x, w, b, relu=True), F.relu(F.dense(x, w, b))
    assert fused._op == "dense" and fused._parents[0] is x
    assert np.asarray(fused).tobytes() == np.asarray(chain).tobytes()
    _same_grads(fused, chain, (x, w) + ((b,) if bias else ()),
                rand(np.random.default_rng(6), 7, 4, dtype=dtype))


def test_functional_fused_gradients_match_finite_differences():
    rng = np.random.default_rng(8)
    xa, wa, ba, g = rand(rng, 3, 5), rand(rng, 5, 4), rand(rng, 1, 4), rand(rng, 3, 4)
    x, w, b = fc.Variable(xa), fc.Variable(wa), fc.Variable(ba)
    grads = (F.dense(x, w, b, relu=True) * fc.Variable(g)).sum().grad()

    def f():
        return float((ref.dense_forward(xa, wa, ba, relu=True) * g).sum())

    for var, arr in ((x, xa), (w, wa), (b, ba)):
        assert_grad(np.asarray(grads.get(var)), numerical_grad(f, arr))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sequential_fuses_dense_then_relu(dtype):
    rng = np.random.default_rng(9)
    xa = rand(rng, 6, 10, dtype=dtype)
    model = fc.Sequential([fc.Dense(8), fc.Relu(), fc.Dense(3), fc.Relu(), fc.Dense(2)])
    x = fc.Variable(xa)
    with model.train():  # records the graph through the parameters
        y = model(x)
    p = dict(model.named_parameters())
    # The unfused chain over the same parameters: dense, relu, dense, relu, dense.
    h = F.relu(F.dense(x, p["l0.w"], p["l0.b"]))
    h = F.relu(F.dense(h, p["l2.w"], p["l2.b"]))
    chain = F.dense(h, p["l4.w"], p["l4.b"])
    assert np.asarray(y).tobytes() == np.asarray(chain).tobytes()
    assert y._parents[0]._op == "dense"  # the Relu layers left no node of their own
    _same_grads(y, chain, [x, *p.values()], rand(rng, 6, 2, dtype=dtype))


def test_sequential_fuses_only_a_dense_followed_by_a_relu(monkeypatch):
    calls = []
    real = F.dense
    monkeypatch.setattr(F, "dense", lambda *a, **k: calls.append(k.get("relu")) or real(*a, **k))
    x = np.ones((2, 3), np.float32)
    fc.Sequential([fc.Dense(2), fc.Dropout(0.5), fc.Relu(), fc.Dense(2), fc.Relu()])(x)
    fc.Sequential([fc.Relu(), fc.Dense(2)])(x)
    assert calls == [False, True, False]
