import numpy as np
import pytest

import fastconv as fc
import fastconv.ops as ops
import fastconv.reference as ref
from helpers import DTYPES, assert_close, assert_grad, numerical_grad, rand

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

    first = run()
    assert run() == first
    try:
        fc.set_num_threads(1)
        single = run()
    finally:
        fc.set_num_threads(2)
    assert single == first


def _bad_calls():
    f32 = np.float32
    x, w, dy = np.zeros((4, 3), f32), np.zeros((3, 5), f32), np.zeros((4, 5), f32)
    img = np.zeros((2, 3, 4, 4), f32)
    return [
        (ValueError, "w", lambda: ops.dense_forward(x, np.zeros((4, 5), f32))),
        (ValueError, "b", lambda: ops.dense_forward(x, w, np.zeros(4, f32))),
        (ValueError, "b", lambda: ops.dense_forward(x, w, np.zeros((5, 1), f32))),
        (TypeError, "b", lambda: ops.dense_forward(x, w, np.zeros(5, np.float64))),
        (ValueError, "dy", lambda: ops.dense_backward(x, w, np.zeros((4, 6), f32))),
        (ValueError, "dy", lambda: ops.dense_backward(x, w, np.zeros((3, 5), f32))),
        (TypeError, "dy", lambda: ops.dense_backward(x, w, np.zeros((4, 5), np.float64))),
        (ValueError, "x", lambda: ops.dense_forward(np.zeros((3, 4), f32).T, w)),
        (TypeError, "x", lambda: ops.dense_forward(np.zeros((4, 3), np.int32), w)),
        (TypeError, "x", lambda: ops.dense_forward(None, w)),
        (TypeError, "w", lambda: ops.dense_forward(x, [[1.0] * 5] * 3)),
        (TypeError, "w", lambda: ops.dense_backward(x, w.astype(np.float64), dy)),
        (ValueError, "x", lambda: ops.dense_forward(np.zeros(3, f32), w)),
        (ValueError, "x", lambda: ops.dense_forward(np.zeros((4, 0), f32), np.zeros((0, 5), f32))),
        (ValueError, "x", lambda: ops.bias_add(np.zeros(3, f32), np.zeros(3, f32))),
        (ValueError, "b", lambda: ops.bias_add(img, np.zeros(4, f32))),
        (TypeError, "b", lambda: ops.bias_add(img, [0.0, 0.0, 0.0])),
        (ValueError, "dy", lambda: ops.bias_grad(np.zeros(3, f32))),
        (TypeError, "dy", lambda: ops.bias_grad(None)),
        (TypeError, "dy", lambda: ops.bias_grad(np.zeros((2, 3), np.int64))),
    ]


@pytest.mark.parametrize("case", range(len(_bad_calls())))
def test_dense_and_bias_reject_bad_input(case):
    err, name, call = _bad_calls()[case]
    with pytest.raises(err, match=rf"^{name}\b"):
        call()
