import numpy as np
import pytest

import fastconv.ops as ops
import fastconv.reference as ref
from fastconv._native import C
from helpers import (DTYPES, assert_close, assert_grad, assert_same_bits_twice_and_on_one_thread,
                     numerical_grad, raises_exactly, rand)

SIZES = [1, 7, 129]


def bias_of(rng, out, form, dtype):
    if form is None:
        return None
    b = rand(rng, out, dtype=dtype)
    return b if form == "flat" else b.reshape(1, out)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [None, "flat", "row"])
@pytest.mark.parametrize("out", SIZES)
@pytest.mark.parametrize("inp", SIZES)
@pytest.mark.parametrize("n", [1, 33])
def test_dense_matches_reference(n, inp, out, bias, dtype):
    rng = np.random.default_rng(n + 10 * inp + 1000 * out)
    x = rand(rng, n, inp, dtype=dtype)
    w = rand(rng, inp, out, dtype=dtype)
    b = bias_of(rng, out, bias, dtype)
    f64 = (lambda a: None if a is None else a.astype(np.float64))
    y = ops.dense_forward(x, w, b)
    assert y.shape == (n, out) and y.dtype == dtype
    assert_close(y, ref.dense_forward(f64(x), f64(w), f64(b)), reduction=inp + 1)
    dy = rand(rng, n, out, dtype=dtype)
    dx, dw, db = ops.dense_backward(x, w, dy)
    rdx, rdw, rdb = ref.dense_backward(f64(x), f64(w), f64(dy))
    assert dx.dtype == dw.dtype == db.dtype == dtype and db.shape == (out,)
    assert_close(dx, rdx, reduction=out)
    assert_close(dw, rdw, reduction=n)
    assert_close(db, rdb, reduction=n)


def test_dense_backward_skips_what_is_not_needed():
    rng = np.random.default_rng(1)
    x, w, dy = rand(rng, 5, 3), rand(rng, 3, 4), rand(rng, 5, 4)
    dx, dw, db = ops.dense_backward(x, w, dy, need_dx=False, need_db=False)
    assert dx is None and db is None
    assert_close(dw, x.T @ dy, reduction=5)


def test_dense_gradients():
    rng = np.random.default_rng(2)
    x, w, b = rand(rng, 3, 4), rand(rng, 4, 5), rand(rng, 1, 5)
    g = rand(rng, 3, 5)

    def f():
        return float((ops.dense_forward(x, w, b) * g).sum())

    dx, dw, db = ops.dense_backward(x, w, g)
    assert_grad(dx, numerical_grad(f, x))
    assert_grad(dw, numerical_grad(f, w))
    assert_grad(db, numerical_grad(f, b).reshape(-1))


BIAS_SHAPES = [(1, 1), (5, 3), (2, 3, 4), (2, 3, 4, 5), (1, 7, 1, 1), (4, 16, 9, 11), (3, 1000),
               (33, 10)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BIAS_SHAPES)
def test_bias_matches_reference(shape, dtype):
    rng = np.random.default_rng(len(shape) + shape[-1])
    x = rand(rng, *shape, dtype=dtype)
    c = shape[1]
    b = rand(rng, c, dtype=dtype)
    if len(shape) == 4:
        b = b.reshape(1, c, 1, 1)  # the conv bias layout
    y = ops.bias_add(x, b)
    assert y.shape == x.shape and y.dtype == dtype
    assert_close(y, ref.bias_add(x.astype(np.float64), b.astype(np.float64)), reduction=2)
    db = ops.bias_grad(x)
    assert db.shape == (c,) and db.dtype == dtype
    assert_close(db, ref.bias_grad(x.astype(np.float64)), reduction=x.size // c)


def test_bias_gradients():
    rng = np.random.default_rng(3)
    x, b, g = rand(rng, 2, 3, 4, 2), rand(rng, 3), rand(rng, 2, 3, 4, 2)

    def f():
        return float((ops.bias_add(x, b) * g).sum())

    assert_grad(ops.bias_grad(g), numerical_grad(f, b))
    assert_grad(g, numerical_grad(f, x))


def test_dense_and_bias_deterministic():
    rng = np.random.default_rng(4)
    # Large enough that the GEMMs, the column sums and the channel sums all use both threads.
    x, w = rand(rng, 300, 129, dtype=np.float32), rand(rng, 129, 257, dtype=np.float32)
    b, dy = rand(rng, 257, dtype=np.float32), rand(rng, 300, 257, dtype=np.float32)
    img = rand(rng, 8, 16, 33, 33, dtype=np.float32)
    cb = rand(rng, 16, dtype=np.float32)

    def run():
        outs = [ops.dense_forward(x, w, b), *ops.dense_backward(x, w, dy),
                ops.bias_add(img, cb), ops.bias_grad(img), ops.bias_grad(dy)]
        return b"".join(o.tobytes() for o in outs)

    assert_same_bits_twice_and_on_one_thread(run)


F32 = np.float32
X, W, DY = np.zeros((4, 3), F32), np.zeros((3, 5), F32), np.zeros((4, 5), F32)
IMG = np.zeros((2, 3, 4, 4), F32)
B_SHAPE = "b must have shape (5,) or (1, 5) (w's outputs Out); got "
X_ARRAY = "x must be a numpy array or a fastconv DeviceArray; got "
X_DTYPE = "x must have dtype float32 or float64; got "
W_DTYPE = "w must have dtype float32 or float64; got "

BAD_CALLS = [
    # shapes
    (ValueError, "w.shape[0] must be 3 (x's inputs In); got shape (4, 5)",
     lambda: ops.dense_forward(X, np.zeros((4, 5), F32))),
    (ValueError, B_SHAPE + "(4,)", lambda: ops.dense_forward(X, W, np.zeros(4, F32))),
    (ValueError, B_SHAPE + "(5, 1)", lambda: ops.dense_forward(X, W, np.zeros((5, 1), F32))),
    (ValueError, "dy.shape[1] must be 5 (w's outputs Out); got shape (4, 6)",
     lambda: ops.dense_backward(X, W, np.zeros((4, 6), F32))),
    (ValueError, "dy.shape[0] must be 4 (x's batch N); got shape (3, 5)",
     lambda: ops.dense_backward(X, W, np.zeros((3, 5), F32))),
    (ValueError, "x must be C-contiguous (pass numpy.ascontiguousarray(x)); got shape (4, 3) "
     "with strides (4, 16)", lambda: ops.dense_forward(np.zeros((3, 4), F32).T, W)),
    (ValueError, "b must be C-contiguous (pass numpy.ascontiguousarray(b)); got shape (5,) "
     "with strides (8,)", lambda: ops.dense_forward(X, W, np.zeros((5, 2), F32)[:, 0])),
    (ValueError, "x must be 2-D (N, In); got shape (3,)",
     lambda: ops.dense_forward(np.zeros(3, F32), W)),
    (ValueError, "x.shape[1] (the inputs In) must be positive; got 0",
     lambda: ops.dense_forward(np.zeros((4, 0), F32), np.zeros((0, 5), F32))),
    (ValueError, "x.shape[0] (the batch N) must be positive; got 0",
     lambda: ops.dense_backward(np.zeros((0, 3), F32), W, np.zeros((0, 5), F32))),
    (ValueError, "w.shape[1] (the outputs Out) must be positive; got 0",
     lambda: ops.dense_forward(X, np.zeros((3, 0), F32))),
    (ValueError, "x must have at least 2 dimensions (N, C, ...); got shape (3,)",
     lambda: ops.bias_add(np.zeros(3, F32), np.zeros(3, F32))),
    (ValueError, "b must have 3 elements (x's channels C = x.shape[1]); got shape (4,)",
     lambda: ops.bias_add(IMG, np.zeros(4, F32))),
    (ValueError, "dy must have at least 2 dimensions (N, C, ...); got shape (3,)",
     lambda: ops.bias_grad(np.zeros(3, F32))),
    (ValueError, "dy must not be empty; got shape (2, 0)",
     lambda: ops.bias_grad(np.zeros((2, 0), F32))),
    # dtypes
    (TypeError, "b must have the dtype of x (float32); got float64",
     lambda: ops.dense_forward(X, W, np.zeros(5, np.float64))),
    (TypeError, "dy must have the dtype of x (float32); got float64",
     lambda: ops.dense_backward(X, W, np.zeros((4, 5), np.float64))),
    (TypeError, "w must have the dtype of x (float32); got float64",
     lambda: ops.dense_backward(X, W.astype(np.float64), DY)),
    (TypeError, "b must have the dtype of x (float32); got float64",
     lambda: ops.bias_add(IMG, np.zeros(3))),
    (TypeError, X_DTYPE + "int32", lambda: ops.dense_forward(np.zeros((4, 3), np.int32), W)),
    (TypeError, X_DTYPE + "int64", lambda: ops.bias_add(np.zeros((2, 3), np.int64), np.zeros(3))),
    (TypeError, X_DTYPE + "bool", lambda: ops.dense_forward(np.zeros((4, 3), bool), W)),
    (TypeError, X_DTYPE + "complex128", lambda: ops.dense_forward(np.zeros((4, 3), complex), W)),
    (TypeError, X_DTYPE + "object", lambda: ops.dense_backward(np.zeros((4, 3), object), W, DY)),
    (TypeError, X_DTYPE + "<U1", lambda: ops.dense_forward(np.zeros((4, 3), "U1"), W)),
    (TypeError, W_DTYPE + "complex128", lambda: ops.dense_forward(X, np.zeros((3, 5), complex))),
    (TypeError, W_DTYPE + "object", lambda: ops.dense_forward(X, np.zeros((3, 5), object))),
    (TypeError, W_DTYPE + "<U2", lambda: ops.dense_forward(X, np.zeros((3, 5), "U2"))),
    (TypeError, W_DTYPE + "bool", lambda: ops.dense_forward(X, np.zeros((3, 5), bool))),
    (TypeError, W_DTYPE + "int64", lambda: ops.dense_forward(X, np.zeros((3, 5), np.int64))),
    (TypeError, "dy must have dtype float32 or float64; got int64",
     lambda: ops.bias_grad(np.zeros((2, 3), np.int64))),
    # non-arrays
    (TypeError, X_ARRAY + "None", lambda: ops.dense_forward(None, W)),
    (TypeError, X_ARRAY + "list", lambda: ops.dense_forward([[1.0] * 3] * 4, W)),
    (TypeError, X_ARRAY + "float", lambda: ops.bias_add(1.0, np.zeros(1, F32))),
    (TypeError, "w must be a numpy array (In, Out); got list",
     lambda: ops.dense_forward(X, [[1.0] * 5] * 3)),
    (TypeError, "w must be a numpy array (In, Out); got float", lambda: ops.dense_forward(X, 2.0)),
    (TypeError, "w must be a numpy array (In, Out); got None",
     lambda: ops.dense_backward(X, None, DY)),
    (TypeError, "dy must be a numpy array (N, Out); got tuple",
     lambda: ops.dense_backward(X, W, (1.0,))),
    (TypeError, "b must be a numpy array (Out,) or (1, Out); got list",
     lambda: ops.dense_forward(X, W, [0.0] * 5)),
    (TypeError, "b must be a numpy array with C elements; got list",
     lambda: ops.bias_add(IMG, [0.0, 0.0, 0.0])),
    (TypeError, "dy must be a numpy array or a fastconv DeviceArray; got None",
     lambda: ops.bias_grad(None)),
    # need_dx / need_db are strict bools: need_dx='no' used to mean yes
    (TypeError, "need_dx must be a bool; got str 'no'",
     lambda: ops.dense_backward(X, W, DY, need_dx="no")),
    (TypeError, "need_db must be a bool; got int 1",
     lambda: ops.dense_backward(X, W, DY, need_db=1)),
    (TypeError, "need_dx must be a bool; got NoneType None",
     lambda: ops.dense_backward(X, W, DY, need_dx=None)),
    (TypeError, "need_db must be a bool; got str",
     lambda: C.dense_backward(X, W, DY, True, "no")),
]


@pytest.mark.parametrize("case", range(len(BAD_CALLS)))
def test_dense_and_bias_reject_bad_input(case):
    err, message, call = BAD_CALLS[case]
    with raises_exactly(err, message):
        call()


def test_need_flags_take_numpy_bools():
    dx, dw, db = ops.dense_backward(X, W, DY, need_dx=np.False_, need_db=np.True_)
    assert dx is None and dw.shape == (3, 5) and db.shape == (5,)
