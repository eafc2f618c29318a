import numpy as np
import pytest

import fastconv.ops as ops
import fastconv.reference as ref
from helpers import DTYPES, assert_close, assert_grad, numerical_grad, raises_exactly, rand

SHAPES = [(1,), (7,), (3, 5), (2, 3, 4, 5), (1, 1, 1, 1), (300, 257)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_relu_matches_reference(shape, dtype):
    rng = np.random.default_rng(0)
    x = rand(rng, *shape, dtype=dtype)
    y = ops.relu_forward(x)
    assert y.dtype == dtype
    assert_close(y, ref.relu_forward(x))
    dy = rand(rng, *shape, dtype=dtype)
    assert_close(ops.relu_backward(dy, y), ref.relu_backward(dy, y))


def test_relu_nan_passes_and_gradient():
    x = np.array([-2.0, -0.0, 0.0, 3.0, np.nan], dtype=np.float32)
    y = ops.relu_forward(x)
    np.testing.assert_array_equal(y[:4], [0, 0, 0, 3])
    assert np.isnan(y[4])
    rng = np.random.default_rng(1)
    x = rand(rng, 4, 6)
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink, where differences are ill-defined
    g = rand(rng, 4, 6)
    num = numerical_grad(lambda: float((ops.relu_forward(x) * g).sum()), x)
    assert_grad(ops.relu_backward(g, ops.relu_forward(x)), num)


# ---- dropout -------------------------------------------------------------------------------------

RATIOS = [0.0, 0.1, 0.5, 0.9]
SEEDS = [0, 1, 12345, 2**63, 2**64 - 1]


def test_mix64_is_splitmix64():
    # The published splitmix64 generator started at state 0 first outputs 0xE220A8397B1DCDAF:
    # pins the reference's finaliser (and so the kernels', checked bit for bit below) to it.
    assert int(ref.activation.mix64(ref.activation.GOLDEN)) == 0xE220A8397B1DCDAF


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ratio", RATIOS)
def test_dropout_mask_matches_reference_bitwise(ratio, dtype):
    for seed in SEEDS:
        for shape in [(1,), (7,), (3, 5), (2, 3, 4, 5), (300, 257)]:
            mask = ops.dropout_mask(shape, ratio, seed, dtype)
            assert mask.dtype == dtype and mask.shape == shape
            np.testing.assert_array_equal(mask, ref.dropout_mask(shape, ratio, seed, dtype))
    # float and double keep exactly the same elements (the decision is an integer comparison)
    a = ops.dropout_mask((1000,), ratio, 7, np.float32)
    b = ops.dropout_mask((1000,), ratio, 7, np.float64)
    np.testing.assert_array_equal(a != 0, b != 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_dropout_matches_reference(shape, dtype):
    rng = np.random.default_rng(2)
    x = rand(rng, *shape, dtype=dtype)
    dy = rand(rng, *shape, dtype=dtype)
    for ratio, seed in [(0.3, 5), (0.5, 2**64 - 1), (0.9, 0)]:
        y = ops.dropout_forward(x, ratio, seed)
        assert y.dtype == dtype
        assert_close(y, ref.dropout_forward(x.astype(np.float64), ratio, seed))
        dx = ops.dropout_backward(dy, ratio, seed)
        assert_close(dx, ref.dropout_backward(dy.astype(np.float64), ratio, seed))
        # forward and backward use one mask: y = x * mask and dx = dy * mask, elementwise exactly
        mask = ops.dropout_mask(shape, ratio, seed, dtype)
        np.testing.assert_array_equal(y, x * mask)
        np.testing.assert_array_equal(dx, dy * mask)


def test_dropout_ratio_zero_is_identity():
    x = np.array([1.5, -2.0, np.inf, np.nan, 0.0], dtype=np.float32)
    np.testing.assert_array_equal(ops.dropout_forward(x, 0.0, 3), x)
    np.testing.assert_array_equal(ops.dropout_backward(x, 0, 3), x)


def test_dropout_dropped_elements_are_exact_zeros():
    x = np.full(4096, np.nan)
    x[::2] = np.inf
    y = ops.dropout_forward(x, 0.5, 11)
    keep = ops.dropout_mask(x.shape, 0.5, 11, np.float64) != 0
    assert np.all(y[~keep] == 0)
    assert np.all(np.isnan(y[keep & np.isnan(x)])) and np.all(y[keep & np.isinf(x)] == np.inf)


@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.9])
def test_dropout_kept_fraction(ratio):
    n = 1_000_000
    mask = ops.dropout_mask(n, ratio, 2024, np.float64)
    kept = np.count_nonzero(mask)
    p = 1 - ratio
    assert abs(kept / n - p) < 5 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_array_equal(np.unique(mask), [0.0, 1.0 / (1.0 - ratio)])


def test_dropout_seeds_give_uncorrelated_masks():
    n = 1_000_000
    bound = 5 / np.sqrt(n)  # correlations of independent masks are ~N(0, 1/n)
    masks = {s: ops.dropout_mask(n, 0.5, s, np.float32) != 0 for s in (0, 1, 2, 2**32, 2**32 + 1)}
    for a, b in [(0, 1), (1, 2), (2**32, 2**32 + 1), (0, 2**32)]:
        assert not np.array_equal(masks[a], masks[b])
        assert abs(np.corrcoef(masks[a], masks[b])[0, 1]) < bound
    # neighbouring elements of one mask are uncorrelated too
    m = masks[0]
    assert abs(np.corrcoef(m[:-1], m[1:])[0, 1]) < bound


def test_dropout_gradient():
    rng = np.random.default_rng(3)
    x = rand(rng, 3, 4, 5)
    g = rand(rng, 3, 4, 5)
    num = numerical_grad(lambda: float((ops.dropout_forward(x, 0.4, 99) * g).sum()), x)
    assert_grad(ops.dropout_backward(g, 0.4, 99), num)


def test_dropout_deterministic_across_threads():
    import fastconv as fc

    rng = np.random.default_rng(4)
    x = rand(rng, 8, 16, 28, 28, dtype=np.float32)  # above the parallel threshold
    runs = []
    try:
        for threads in (1, 2, 2):
            fc.set_num_threads(threads)
            runs.append((ops.dropout_forward(x, 0.5, 77), ops.dropout_backward(x, 0.5, 77)))
    finally:
        fc.set_num_threads(2)
    for y, dx in runs[1:]:
        np.testing.assert_array_equal(y, runs[0][0])
        np.testing.assert_array_equal(dx, runs[0][1])


X32 = np.ones((2, 3), dtype=np.float32)
X_ARRAY = "x must be a numpy array or a fastconv DeviceArray; got "
X_DTYPE = "x must have dtype float32 or float64; got "
SEED = "seed must be a non-negative int < 2**64"
OOM = "out of memory allocating {} bytes for a float32 output of shape ({},)"

BAD_CALLS = [
    # relu: fc.relu(None) used to return [nan]
    (TypeError, X_ARRAY + "None", lambda: ops.relu_forward(None)),
    (TypeError, X_ARRAY + "list", lambda: ops.relu_forward([1.0, -1.0])),
    (TypeError, X_ARRAY + "float32", lambda: ops.relu_forward(np.float32(3))),
    (TypeError, X_ARRAY + "int", lambda: ops.relu_forward(3)),
    (TypeError, X_DTYPE + "complex128", lambda: ops.relu_forward(np.zeros(3, complex))),
    (TypeError, X_DTYPE + "object", lambda: ops.relu_forward(np.zeros(3, object))),
    (TypeError, X_DTYPE + "<U1", lambda: ops.relu_forward(np.array(["a"]))),
    (TypeError, X_DTYPE + "bool", lambda: ops.relu_forward(np.zeros(3, bool))),
    (TypeError, X_DTYPE + "int64", lambda: ops.relu_forward(np.zeros(3, np.int64))),
    (TypeError, X_DTYPE + "uint8", lambda: ops.relu_forward(np.zeros(3, np.uint8))),
    (ValueError, "x must be C-contiguous (pass numpy.ascontiguousarray(x)); got shape (4, 2) "
     "with strides (32, 16)", lambda: ops.relu_forward(np.zeros((4, 4))[:, ::2])),
    (ValueError, "y must have the shape of dy (3,); got (4,)",
     lambda: ops.relu_backward(np.zeros(3), np.zeros(4))),
    (TypeError, "y must have the dtype of dy (float64); got float32",
     lambda: ops.relu_backward(np.zeros(3), np.zeros(3, np.float32))),
    (TypeError, "y must be a numpy array; got None", lambda: ops.relu_backward(np.zeros(3), None)),
    (TypeError, "y must have dtype float32 or float64; got complex128",
     lambda: ops.relu_backward(np.zeros(3), np.zeros(3, complex))),
    (TypeError, "dy must be a numpy array or a fastconv DeviceArray; got list",
     lambda: ops.relu_backward([0.0], np.zeros(1))),
    # dropout
    (TypeError, X_DTYPE + "int32", lambda: ops.dropout_forward(np.ones(4, dtype=np.int32), 0.5, 0)),
    (TypeError, X_DTYPE + "complex64",
     lambda: ops.dropout_forward(np.ones(4, np.complex64), 0.5, 0)),
    (TypeError, X_DTYPE + "bool", lambda: ops.dropout_forward(np.ones(4, bool), 0.5, 0)),
    (TypeError, X_ARRAY + "list", lambda: ops.dropout_forward([1.0, 2.0], 0.5, 0)),
    (TypeError, X_ARRAY + "None", lambda: ops.dropout_forward(None, 0.5, 0)),
    (TypeError, "dy must have dtype float32 or float64; got object",
     lambda: ops.dropout_backward(np.ones(4, object), 0.5, 0)),
    (ValueError, "dy must be C-contiguous (pass numpy.ascontiguousarray(dy)); got shape (4, 2) "
     "with strides (32, 16)", lambda: ops.dropout_backward(np.ones((4, 4))[:, ::2], 0.5, 0)),
    (ValueError, "ratio must be in [0, 1); got 1.0", lambda: ops.dropout_forward(X32, 1.0, 0)),
    (ValueError, "ratio must be in [0, 1); got -0.1", lambda: ops.dropout_forward(X32, -0.1, 0)),
    (ValueError, "ratio must be in [0, 1); got 1.5", lambda: ops.dropout_mask(3, 1.5, 0)),
    (ValueError, "ratio must be finite; got nan",
     lambda: ops.dropout_backward(X32, float("nan"), 0)),
    (TypeError, "ratio must be a real number; got str", lambda: ops.dropout_forward(X32, "0.5", 0)),
    (TypeError, "ratio must be a real number; got NoneType",
     lambda: ops.dropout_forward(X32, None, 0)),
    (ValueError, SEED + "; got -1", lambda: ops.dropout_forward(X32, 0.5, -1)),
    (ValueError, SEED + "; got 18446744073709551616",
     lambda: ops.dropout_forward(X32, 0.5, 2**64)),
    (TypeError, SEED + "; got float", lambda: ops.dropout_forward(X32, 0.5, 1.5)),
    (TypeError, SEED + "; got NoneType", lambda: ops.dropout_backward(X32, 0.5, None)),
    (TypeError, SEED + "; got bool", lambda: ops.dropout_mask(4, 0.5, True)),
    (TypeError, "dtype must be float32 or float64; got int32",
     lambda: ops.dropout_mask(4, 0.5, 0, np.int32)),
    (TypeError, "dtype must be float32 or float64; got float16",
     lambda: ops.dropout_mask(4, 0.5, 0, "float16")),
    (TypeError, "dtype must be float32 or float64; got str",
     lambda: ops.dropout_mask(4, 0.5, 0, "not a dtype")),
    # dropout_mask's shape: every entry an int64 size, and the element count too
    (ValueError, "shape[1] must be an int in [0, 2**63); got -1",
     lambda: ops.dropout_mask((2, -1), 0.5, 0)),
    (ValueError, "shape must be an int in [0, 2**63); got -3",
     lambda: ops.dropout_mask(-3, 0.5, 0)),
    (ValueError, "shape[0] must be an int in [0, 2**63); got 9223372036854775808",
     lambda: ops.dropout_mask((2**63,), 0.5, 0)),
    (ValueError, "shape must be an int in [0, 2**63); got 9223372036854775808",
     lambda: ops.dropout_mask(2**63, 0.5, 0)),
    (ValueError, "shape[0] must be an int in [0, 2**63); got -1180591620717411303424",
     lambda: ops.dropout_mask([-2**70], 0.5, 0)),
    (ValueError, "shape must hold fewer than 2**63 elements in all; got (4294967296, 4294967296)",
     lambda: ops.dropout_mask((2**32, 2**32), 0.5, 0)),
    (TypeError, "shape[1] must be an int; got float", lambda: ops.dropout_mask((2, 1.5), 0.5, 0)),
    (TypeError, "shape[1] must be an int; got bool", lambda: ops.dropout_mask((2, True), 0.5, 0)),
    (TypeError, "shape[0] must be an int; got NoneType", lambda: ops.dropout_mask([None], 0.5, 0)),
    (TypeError, "shape must be an int or a tuple of ints; got NoneType",
     lambda: ops.dropout_mask(None, 0.5, 0)),
    (TypeError, "shape must be an int or a tuple of ints; got str",
     lambda: ops.dropout_mask("3", 0.5, 0)),
    (TypeError, "shape must be an int or a tuple of ints; got bool",
     lambda: ops.dropout_mask(True, 0.5, 0)),
    # sizes that fit in int64 but not in memory: a MemoryError with the bytes asked for
    (MemoryError, OOM.format("more than 9223372036854775807", 2**62),
     lambda: ops.dropout_mask((2**62,), 0.5, 0)),
    # 512 TiB: more than a 47- or 48-bit user address space holds, whatever the overcommit policy
    (MemoryError, OOM.format(2**49, 2**47), lambda: ops.dropout_mask(2**47, 0.5, 0)),
]


@pytest.mark.parametrize("case", range(len(BAD_CALLS)))
def test_activation_bad_input(case):
    err, message, call = BAD_CALLS[case]
    with raises_exactly(err, message):
        call()


def test_dropout_mask_takes_numpy_ints_and_lists():
    expected = ops.dropout_mask((2, 3), 0.5, 4)
    np.testing.assert_array_equal(ops.dropout_mask([np.int64(2), np.uint8(3)], 0.5, 4), expected)
    assert ops.dropout_mask((), 0.5, 4).shape == ()
    assert ops.dropout_mask((0, 5), 0.5, 4).shape == (0, 5)
