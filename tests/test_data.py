"""The training loop's data ops (gather_batch, accuracy_count) against fastconv.reference, with
every output poisoned first (conftest), and their malformed calls with whole messages. On the
GPU: test_data_cuda.py."""
import numpy as np
import pytest

import fastconv.ops as ops
import fastconv.reference as ref
from helpers import DTYPES, raises_exactly, rand


@pytest.mark.parametrize("dtype", [*DTYPES, np.int64])
def test_gather_batch_matches_reference(dtype):
    rng = np.random.default_rng(0)
    data = (rand(rng, 50, 1, 4, 3) * 100).astype(dtype)
    for idx in (rng.permutation(50)[:17], np.array([3, 3, 0, 49]), np.zeros(0, np.int64),
                rng.permutation(50).astype(np.uint8)[::3], np.array([7], np.int32)):
        got = ops.gather_batch(data, idx)
        assert got.dtype == data.dtype
        np.testing.assert_array_equal(got, ref.gather_batch(data, idx))


def test_gather_batch_labels_and_empty_rows():
    labels = np.arange(10, dtype=np.int64) * 7
    np.testing.assert_array_equal(ops.gather_batch(labels, np.array([9, 1])), [63, 7])
    rows = np.zeros((4, 0), np.float32)  # rows of no elements still gather
    assert ops.gather_batch(rows, np.array([1, 2, 3])).shape == (3, 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_accuracy_count_matches_reference(dtype):
    rng = np.random.default_rng(1)
    z = rand(rng, 64, 10, dtype=dtype)
    t = rng.integers(0, 10, size=64)
    t[::3] = z[::3].argmax(axis=1)  # some hits for sure
    onehot = np.eye(10, dtype=dtype)[t]
    for target in (t, t.astype(np.uint8), t[::-1], onehot):
        got = ops.accuracy_count(z, target)
        assert got.shape == () and got.dtype == np.int64
        assert int(got) == int(ref.accuracy_count(z, target))
    assert int(ops.accuracy_count(z, z.argmax(axis=1))) == 64


def test_accuracy_count_ties_nan_and_out_of_range_labels():
    z = np.array([[1, 3, 3], [np.nan, 5, np.nan], [2, np.nan, 9], [0, 0, 0]], np.float32)
    # First maximum on ties; the first NaN wins (numpy's argmax): rows argmax to 1, 0, 1, 0.
    assert int(ops.accuracy_count(z, np.array([1, 0, 1, 0]))) == 4
    assert int(ops.accuracy_count(z, np.array([2, 1, 2, 1]))) == 0
    assert int(ops.accuracy_count(z, np.array([1, 0, 99, -1]))) == 2  # misses, not errors
    big = np.array([1, 0, 2**63 + 1, 2**64 - 1], np.uint64)
    assert int(ops.accuracy_count(z, big)) == int(ref.accuracy_count(z, big)) == 2


def test_train_evaluate_counts_as_before():
    """The count train.evaluate now asks the op for is the numpy expression it replaced."""
    rng = np.random.default_rng(2)
    z, t = rand(rng, 100, 10, dtype=np.float32), rng.integers(0, 10, size=100)
    assert int(ops.accuracy_count(z, t)) == int((z.argmax(axis=1) == t).sum())


BAD_GATHER = [
    ([1.0, 2.0], np.array([0]), TypeError,
     "data must be a numpy array or a fastconv DeviceArray; got list"),
    (np.zeros(3, np.int32), np.array([0]), TypeError,
     "data must have dtype float32, float64 or int64; got int32"),
    (np.zeros((), np.float32), np.array([0]), ValueError,
     "data must have at least 1 dimension (rows, ...); got shape ()"),
    (np.zeros((4, 6), np.float32)[:, ::2], np.array([0]), ValueError,
     "data must be C-contiguous (pass numpy.ascontiguousarray(data)); got shape (4, 3) with "
     "strides (24, 8)"),
    (np.zeros((4, 2), np.float32), [0, 1], TypeError,
     "indices must be a numpy array (B,); got list"),
    (np.zeros((4, 2), np.float32), np.array([0.0]), TypeError,
     "indices must have an integer dtype; got float64"),
    (np.zeros((4, 2), np.float32), np.zeros((1, 2), np.int64), ValueError,
     "indices must be 1-D (B,); got shape (1, 2)"),
    (np.zeros((4, 2), np.float32), np.array([0, 4]), ValueError,
     "indices must be in [0, 4) (data's rows); got 4 at position 1"),
    (np.zeros((4, 2), np.float32), np.array([2, 1, -3]), ValueError,
     "indices must be in [0, 4) (data's rows); got -3 at position 2"),
]


@pytest.mark.parametrize("data, idx, exc, message", BAD_GATHER)
def test_gather_batch_malformed(data, idx, exc, message):
    with raises_exactly(exc, message):
        ops.gather_batch(data, idx)


Z = np.zeros((4, 3), np.float32)
BAD_ACCURACY = [
    (None, np.zeros(4, np.int64), TypeError,
     "z must be a numpy array or a fastconv DeviceArray; got None"),
    (np.zeros(4, np.float32), np.zeros(4, np.int64), ValueError,
     "z must be 2-D (N, C); got shape (4,)"),
    (np.zeros((4, 3), np.int64), np.zeros(4, np.int64), TypeError,
     "z must have dtype float32 or float64; got int64"),
    (np.zeros((0, 3), np.float32), np.zeros(0, np.int64), ValueError,
     "z.shape[0] (the batch N) must be positive; got 0"),
    (Z, None, TypeError,
     "t must be a numpy array of (N,) integer labels or (N, C) target weights; got None"),
    (Z, np.zeros(4), TypeError, "t must have an integer dtype as (N,) labels; got float64"),
    (Z, np.zeros(3, np.int64), ValueError,
     "t.shape[0] must be 4 (z's batch N); got shape (3,)"),
    (Z, np.zeros((4, 3, 1), np.float32), ValueError,
     "t must be (N, C) target weights or (N,) integer labels; got shape (4, 3, 1)"),
    (Z, np.zeros((4, 3)), TypeError, "t must have the dtype of z (float32); got float64"),
    (Z, np.zeros((4, 2), np.float32), ValueError,
     "t must have the shape of z (4, 3); got (4, 2)"),
]


@pytest.mark.parametrize("z, t, exc, message", BAD_ACCURACY)
def test_accuracy_count_malformed(z, t, exc, message):
    with raises_exactly(exc, message):
        ops.accuracy_count(z, t)

