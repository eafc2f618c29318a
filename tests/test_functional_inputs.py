"""What the functional API accepts as input: real data of any dtype (int, uint and bool cast to
float like numpy would), lists and scalars; and what it refuses, with the argument named:
None, object, complex, string, bytes, void and datetime data (issue 8)."""
import numpy as np
import pytest

import fastconv as fc
from helpers import raises_exactly

EXPECTED = "must be an array of real numbers (float, int or bool); got "

X4 = np.arange(2 * 3 * 5 * 5, dtype=np.float32).reshape(2, 3, 5, 5) % 7 - 3
W4 = np.linspace(-1, 1, 4 * 3 * 3 * 3, dtype=np.float32).reshape(4, 3, 3, 3)
B4 = np.linspace(-1, 1, 4, dtype=np.float32).reshape(1, 4, 1, 1)
X2 = np.arange(12, dtype=np.float32).reshape(3, 4) - 5
W2 = np.linspace(-1, 1, 8, dtype=np.float32).reshape(4, 2)
B2 = np.array([[0.5, -0.5]], np.float32)
LABELS = np.array([0, 1, 0])

# Each public op with one argument left open: op(bad) must name that argument.
CALLS = {
    "relu x": ("x", lambda v: fc.relu(v)),
    "flatten x": ("x", lambda v: fc.flatten(v)),
    "dropout x": ("x", lambda v: fc.dropout(v, 0.5, seed=1)),
    "max_pool2d x": ("x", lambda v: fc.max_pool2d(v, filter=2)),
    "average_pool2d x": ("x", lambda v: fc.average_pool2d(v, filter=2)),
    "conv2d x": ("x", lambda v: fc.conv2d(v, W4, B4)),
    "conv2d w": ("w", lambda v: fc.conv2d(X4, v, B4)),
    "conv2d b": ("b", lambda v: fc.conv2d(X4, W4, v)),
    "dense x": ("x", lambda v: fc.dense(v, W2, B2)),
    "dense w": ("w", lambda v: fc.dense(X2, v, B2)),
    "dense b": ("b", lambda v: fc.dense(X2, W2, v)),
    "softmax_cross_entropy z": ("z", lambda v: fc.softmax_cross_entropy(v, LABELS)),
    "softmax_cross_entropy t": ("t", lambda v: fc.softmax_cross_entropy(X2[:, :3], v)),
    "Node arithmetic": ("other", lambda v: fc.Variable(X2) * v),
    "Variable": ("value", lambda v: fc.Variable(v)),
}

BAD = [
    (None, "None"),
    (np.array([1 + 2j, 3]), "an array of dtype complex128 and shape (2,)"),
    (np.zeros((2, 3), np.complex64), "an array of dtype complex64 and shape (2, 3)"),
    ([1.0, 2j], "a list that numpy reads as dtype complex128"),
    (1j, "complex 1j"),
    (np.complex128(2), "a numpy complex128 scalar (2+0j)"),
    (np.array([1.0, None]), "an array of dtype object and shape (2,)"),
    ([1.0, None], "a list that numpy reads as dtype object"),
    (("1", "2"), "a tuple that numpy reads as dtype <U1"),
    (object(), "object"),
    ({"x": 1}, "dict"),
    ("abc", "str 'abc'"),
    (b"abc", "bytes b'abc'"),
    ("x" * 30, "str 'xxxxxxxxxxxxxxxxxxxx'..."),
    (np.array(["1.0", "2.0"]), "an array of dtype <U3 and shape (2,)"),
    (np.array([b"1"]), "an array of dtype |S1 and shape (1,)"),
    (np.zeros(3, "V4"), "an array of dtype |V4 and shape (3,)"),
    (np.zeros(2, "M8[s]"), "an array of dtype datetime64[s] and shape (2,)"),
    (np.zeros(2, "m8[s]"), "an array of dtype timedelta64[s] and shape (2,)"),
    ([[1.0], [1.0, 2.0]], "a list that numpy cannot read as one array (ragged or mixed nesting)"),
]


# b=None means "no bias", so it is not a bad b.
CASES = [(call, bad, got) for call in CALLS for bad, got in BAD
         if not (CALLS[call][0] == "b" and bad is None)]


@pytest.mark.parametrize("call,bad,got", CASES, ids=[f"{c}-{g}" for c, _, g in CASES])
def test_non_real_input_is_refused_naming_the_argument(call, bad, got):
    name, fn = CALLS[call]
    with raises_exactly(TypeError, f"{name} {EXPECTED}{got}"):
        fn(bad)


def test_issue_reproducers():
    with raises_exactly(TypeError, f"x {EXPECTED}None"):
        fc.relu(None)  # was: Node([nan])
    with raises_exactly(TypeError, f"x {EXPECTED}None"):
        fc.conv2d(None, W4)  # was: "x must be 4-D (N, C, H, W); got shape (1,)"
    with raises_exactly(TypeError, f"x {EXPECTED}an array of dtype complex128 and shape (2, 3)"):
        fc.relu(np.full((2, 3), 1 + 1j))  # was: the real part and a ComplexWarning
    with raises_exactly(ValueError, "x must have at least 1 dimension (N, ...); got shape ()"):
        fc.flatten(np.float32(3))  # was: IndexError
    with raises_exactly(ValueError, "x must have at least 1 dimension (N, ...); got shape ()"):
        fc.flatten(fc.Variable(np.float64(3)))  # the recorded path too


def test_a_node_built_around_bad_data_is_refused_too():
    with raises_exactly(TypeError, f"x {EXPECTED}an array of dtype complex128 and shape (1,)"):
        fc.relu(fc.Node(np.array([1j])))
    with raises_exactly(TypeError, f"w {EXPECTED}None"):
        fc.dense(X2, fc.Node(None))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.int64, np.uint64,
                                   np.bool_])
def test_int_uint_and_bool_input_is_cast_to_float32(dtype):
    raw = (np.arange(2 * 3 * 5 * 5).reshape(2, 3, 5, 5) % 3).astype(dtype)  # 0, 1, 2 (or bools)
    as_float = raw.astype(np.float32)
    for op in (fc.relu, fc.flatten, lambda v: fc.max_pool2d(v, filter=2),
               lambda v: fc.average_pool2d(v, filter=2), lambda v: fc.dropout(v, 0.5, seed=3),
               lambda v: fc.conv2d(v, W4, B4)):
        got, want = op(raw), op(as_float)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got.as_ndarray(), want.as_ndarray())
    flat = raw.reshape(2, -1)[:, :4]
    np.testing.assert_array_equal(fc.dense(flat, W2, B2).as_ndarray(),
                                  fc.dense(flat.astype(np.float32), W2, B2).as_ndarray())
    z = fc.softmax_cross_entropy(flat[:, :3], [0, 2])
    assert z.dtype == np.float32
    assert float(z) == float(fc.softmax_cross_entropy(flat[:, :3].astype(np.float32), [0, 2]))


def test_bool_values_become_zero_and_one():
    y = fc.relu(np.array([[True, False, True]]))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.as_ndarray(), [[1.0, 0.0, 1.0]])


def test_x_and_b_follow_the_weights_dtype():
    x8 = np.abs(X4).astype(np.uint8)  # pixels
    b = np.array([-2, 0, 1, 3], np.int32).reshape(1, 4, 1, 1)
    y = fc.conv2d(x8, W4.astype(np.float64), b)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y.as_ndarray(), fc.conv2d(
        x8.astype(np.float64), W4.astype(np.float64), b.astype(np.float64)).as_ndarray())
    assert fc.dense(X2, W2.astype(np.int64)).dtype == np.float32  # int weights: float32


def test_other_floats_lists_and_scalars():
    assert fc.relu(np.array([1, -2], np.float16)).dtype == np.float32
    assert fc.relu(np.array([1, -2], np.longdouble)).dtype == np.float64
    np.testing.assert_array_equal(fc.relu([[1.5, -2.0]]).as_ndarray(), [[1.5, 0.0]])
    np.testing.assert_array_equal(fc.relu((1, -2)).as_ndarray(), [1.0, 0.0])
    y = fc.relu(np.float32(-3))
    assert y.shape == () and float(y) == 0.0  # a 0-d input stays 0-d
    np.testing.assert_array_equal(fc.relu(X2[:, ::2]).as_ndarray(), np.maximum(X2[:, ::2], 0))


def test_int_inputs_keep_gradients_flowing_to_float_parameters():
    w = fc.Variable(W2)
    x = np.arange(12, dtype=np.int64).reshape(3, 4)
    g = fc.dense(x, w).sum().grad()
    np.testing.assert_allclose(g.get(w), x.T.astype(np.float32) @ np.ones((3, 2), np.float32))


def test_a_huge_padding_is_refused_in_the_ops_words_before_any_allocation():
    # Reported as numpy's own "array is too big" at the output's allocation; the functional API
    # and the layer go through the ops layer's check on the output's size instead.
    oh = X4.shape[2] + 2 * 2**30 - W4.shape[2] + 1
    message = ("x and w with this stride, padding and dilation must give an output of fewer than "
               f"2**60 elements; got output shape (2, 4, {oh}, {oh})")
    with raises_exactly(ValueError, message):
        fc.conv2d(X4, W4, padding=2**30)
    with raises_exactly(ValueError, message):
        fc.Conv2d(4, 3, padding=2**30)(X4)
    with raises_exactly(ValueError, message):
        fc.ops.conv2d_forward(X4, W4, padding=2**30)
