import math

import numpy as np
import pytest

import fastconv.ops as ops
import fastconv.reference as ref
from helpers import (DTYPES, assert_close, assert_grad, assert_same_bits_twice_and_on_one_thread,
                     numerical_grad, raises_exactly, rand)

fwd = ops.softmax_cross_entropy_forward
bwd = ops.softmax_cross_entropy_backward


def labels(rng, n, c, dtype=np.int64):
    return rng.integers(0, c, size=n).astype(dtype)


def onehot(t, c, dtype):
    out = np.zeros((t.size, c), dtype=dtype)
    out[np.arange(t.size), t] = 1
    return out


def soft(rng, n, c, dtype):
    # Non-negative weights that need not sum to 1, with some exact zeros.
    w = rng.random((n, c)) * (rng.random((n, c)) > 0.3)
    return w.astype(dtype)


def targets(rng, n, c, dtype, form):
    """Labels, one-hot rows or soft weights for n rows of c classes."""
    t = labels(rng, n, c)
    if form == "onehot":
        return onehot(t, c, dtype)
    return soft(rng, n, c, dtype) if form == "soft" else t


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", [1, 2, 10, 1000])
@pytest.mark.parametrize("n", [1, 37])
@pytest.mark.parametrize("form", ["labels", "onehot", "soft"])
def test_softmax_ce_matches_reference(n, c, dtype, form):
    rng = np.random.default_rng(n * 1000 + c)
    z = (3 * rand(rng, n, c)).astype(dtype)
    t = targets(rng, n, c, dtype, form)
    loss = fwd(z, t)
    assert loss.shape == () and loss.dtype == dtype
    z64 = z.astype(np.float64)
    t64 = t if form == "labels" else t.astype(np.float64)
    assert_close(loss, ref.softmax_cross_entropy_forward(z64, t64), reduction=n + c)
    dz = bwd(z, t, dloss=0.75)
    assert dz.shape == z.shape and dz.dtype == dtype
    expected = ref.softmax_cross_entropy_backward(z64, t64, dloss=0.75)
    # dz = tsum * softmax - t cancels: its rounding error follows the size of the terms (about
    # t * dloss / N), not of the difference, which can be much smaller.
    terms = (1.0 if form == "labels" else float(np.abs(t64).max())) * 0.75 / n
    factor = 16.0 * max(1.0, terms / max(float(np.abs(expected).max()), 1e-30))
    assert_close(dz, expected, reduction=c, factor=factor)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ["labels", "onehot", "soft"])
def test_forward_backward_is_both_ops_bitwise(dtype, form):
    rng = np.random.default_rng(11)
    for n, c in ((1, 1), (37, 10), (5, 1000)):
        z = (3 * rand(rng, n, c)).astype(dtype)
        t = targets(rng, n, c, dtype, form)
        for dloss in (1.0, -0.25):
            loss, dz = ops.softmax_cross_entropy_forward_backward(z, t, dloss)
            assert loss.tobytes() == fwd(z, t).tobytes()
            assert dz.dtype == dtype and dz.tobytes() == bwd(z, t, dloss).tobytes()
    want = ref.softmax_cross_entropy_forward_backward(z.astype(np.float64), t)
    assert_close(loss, want[0], reduction=n + c)


def test_forward_backward_rejects_what_the_separate_ops_reject():
    z = np.zeros((4, 3), np.float32)
    with raises_exactly(ValueError, "t must hold labels in [0, 3) (z's classes C); got label 3 at "
                        "row 2"):
        ops.softmax_cross_entropy_forward_backward(z, np.array([0, 1, 3, 2]))
    with raises_exactly(ValueError, "dloss must be finite; got nan"):
        ops.softmax_cross_entropy_forward_backward(z, np.array([0, 1, 2, 2]), float("nan"))


@pytest.mark.parametrize("dtype", DTYPES)
def test_exact_cases_from_the_issue(dtype):
    assert float(fwd(np.array([[0, -200]], dtype), np.array([1]))) == 200.0
    assert float(fwd(np.array([[1e8, 1e8]], dtype), np.array([0]))) == pytest.approx(
        math.log(2), rel=4 * float(np.finfo(dtype).eps))
    assert round(float(fwd(np.array([[-20000, -20001]], dtype), np.array([0]))), 4) == 0.3133
    # Huge logits: the gradient stays finite and sums to zero per row.
    dz = bwd(np.array([[3e38 if dtype == np.float32 else 1e300, -1e30]], dtype), np.array([1]))
    assert np.all(np.isfinite(dz))
    np.testing.assert_array_equal(dz, [[1, -1]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ["labels", "soft"])
def test_shift_by_1000_changes_nothing(dtype, form):
    rng = np.random.default_rng(5)
    # Multiples of 1/8 in [-8, 8]: z + 1000 is exact in float32, so z - max z is too.
    z = (rng.integers(-64, 65, size=(13, 10)) / 8).astype(dtype)
    t = labels(rng, 13, 10) if form == "labels" else soft(rng, 13, 10, dtype)
    shifted = z + dtype(1000)
    np.testing.assert_array_equal(shifted - dtype(1000), z)
    assert fwd(shifted, t).tobytes() == fwd(z, t).tobytes()
    assert bwd(shifted, t).tobytes() == bwd(z, t).tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
def test_onehot_and_labels_agree_bitwise(dtype):
    rng = np.random.default_rng(6)
    z = (4 * rand(rng, 50, 17)).astype(dtype)
    t = labels(rng, 50, 17)
    oh = onehot(t, 17, dtype)
    assert fwd(z, t).tobytes() == fwd(z, oh).tobytes()
    assert bwd(z, t, 0.5).tobytes() == bwd(z, oh, 0.5).tobytes()
    # Any integer width is accepted and means the same labels.
    for int_dtype in (np.int32, np.uint8, np.int16, np.uint64):
        ti = t.astype(int_dtype)
        assert fwd(z, ti).tobytes() == fwd(z, t).tobytes()
        assert bwd(z, ti).tobytes() == bwd(z, t).tobytes()


def test_minus_inf_logit_off_target_is_harmless():
    z = np.array([[0.0, -np.inf, 1.0]], np.float32)
    for t in (np.array([0]), np.array([[1, 0, 0]], np.float32)):
        loss = float(fwd(z, t))
        assert loss == pytest.approx(math.log(1 + math.e), rel=1e-6)
        dz = bwd(z, t)
        assert np.all(np.isfinite(dz)) and dz[0, 1] == 0


@pytest.mark.parametrize("form", ["labels", "onehot", "soft"])
def test_softmax_ce_gradient(form):
    rng = np.random.default_rng(7)
    z = 2 * rand(rng, 4, 5)
    t = labels(rng, 4, 5)
    if form == "onehot":
        t = onehot(t, 5, np.float64)
    elif form == "soft":
        t = soft(rng, 4, 5, np.float64)
    g = 1.7
    num = numerical_grad(lambda: float(fwd(z, t)) * g, z)
    assert_grad(bwd(z, t, dloss=g), num)


@pytest.mark.parametrize("form", ["labels", "soft"])
def test_softmax_ce_deterministic(form):
    rng = np.random.default_rng(8)
    z = rand(rng, 300, 1000, dtype=np.float32)  # large enough to run on both threads
    t = labels(rng, 300, 1000) if form == "labels" else soft(rng, 300, 1000, np.float32)

    def run():
        return fwd(z, t).tobytes() + bwd(z, t, 0.3).tobytes()

    assert_same_bits_twice_and_on_one_thread(run)


Z = np.zeros((3, 4), np.float32)
T = np.array([0, 1, 2])
LABELS_IN_RANGE = "t must hold labels in [0, 4) (z's classes C); got label "
WEIGHTS = "t must hold finite target weights >= 0; got "
T_ARRAY = "t must be a numpy array of (N,) integer labels or (N, C) target weights; got "
Z_ARRAY = "z must be a numpy array or a fastconv DeviceArray; got "
Z_DTYPE = "z must have dtype float32 or float64; got "
T_LABELS = "t must have an integer dtype as (N,) labels; got "

BAD_CALLS = [
    # shapes
    (ValueError, "z must be 2-D (N, C); got shape (4,)",
     lambda: fwd(np.zeros(4, np.float32), np.array([0]))),
    (ValueError, "t must have the shape of z (3, 4); got (3, 5)",
     lambda: fwd(Z, np.zeros((3, 5), np.float32))),
    (ValueError, "t.shape[0] must be 3 (z's batch N); got shape (2,)",
     lambda: fwd(Z, np.array([0, 1]))),
    (ValueError, "t must be (N,) integer labels or (N, C) target weights; got shape (3, 4, 1)",
     lambda: fwd(Z, np.zeros((3, 4, 1), np.float32))),
    (ValueError, "t must be (N,) integer labels or (N, C) target weights; got shape ()",
     lambda: fwd(Z, np.array(3))),
    (ValueError, "z must be C-contiguous (pass numpy.ascontiguousarray(z)); got shape (3, 4) "
     "with strides (4, 12)", lambda: fwd(np.zeros((4, 3), np.float32).T, T)),
    (ValueError, "z.shape[0] (the batch N) must be positive; got 0",
     lambda: fwd(np.zeros((0, 4), np.float32), np.zeros(0, np.int64))),
    (ValueError, "z.shape[1] (the classes C) must be positive; got 0",
     lambda: bwd(np.zeros((3, 0), np.float32), T)),
    # labels out of range, in their own dtype
    (ValueError, LABELS_IN_RANGE + "-1 at row 1", lambda: fwd(Z, np.array([0, -1, 2]))),
    (ValueError, LABELS_IN_RANGE + "4 at row 1", lambda: bwd(Z, np.array([0, 4, 2]))),
    (ValueError, LABELS_IN_RANGE + "7 at row 2", lambda: fwd(Z, np.array([0, 1, 7], np.uint8))),
    (ValueError, LABELS_IN_RANGE + "9223372036854775809 at row 1",
     lambda: fwd(Z, np.array([1, 2**63 + 1, 0], np.uint64))),
    (ValueError, LABELS_IN_RANGE + "18446744073709551615 at row 0",
     lambda: bwd(Z, np.array([2**64 - 1, 0, 0], np.uint64))),
    # soft targets: finite weights >= 0
    (ValueError, WEIGHTS + "-1 at row 1, column 2",
     lambda: fwd(np.zeros((2, 3), np.float32), np.array([[1, 0, 0], [0, 0, -1]], np.float32))),
    (ValueError, WEIGHTS + "-0.1 at row 1, column 2",
     lambda: bwd(np.zeros((2, 3), np.float32), np.array([[1, 0, 0], [0, 0, -0.1]], np.float32))),
    (ValueError, WEIGHTS + "nan at row 0, column 1",
     lambda: bwd(np.zeros((2, 3)), np.array([[1, np.nan, 0], [0, 0, 1]]))),
    (ValueError, WEIGHTS + "inf at row 1, column 0",
     lambda: fwd(np.zeros((2, 3)), np.array([[1, 0, 0], [np.inf, 0, 1]]))),
    (ValueError, WEIGHTS + "-inf at row 0, column 0",
     lambda: fwd(np.zeros((1, 2)), np.array([[-np.inf, 1]]))),
    # dtypes and non-arrays
    (TypeError, "t must have the dtype of z (float32); got float64",
     lambda: fwd(Z, np.zeros((3, 4), np.float64))),
    (TypeError, T_LABELS + "float64", lambda: fwd(Z, np.array([0.0, 1.0, 2.0]))),
    (TypeError, T_LABELS + "bool", lambda: fwd(Z, np.array([True, False, True]))),
    (TypeError, T_LABELS + "object", lambda: fwd(Z, np.array([0, 1, 2], object))),
    (TypeError, T_LABELS + "<U1", lambda: fwd(Z, np.array(["a", "b", "c"]))),
    (TypeError, T_LABELS + "complex128", lambda: bwd(Z, np.zeros(3, complex))),
    (TypeError, "t must have dtype float32 or float64; got complex64",
     lambda: fwd(Z, np.zeros((3, 4), np.complex64))),
    (TypeError, "t must have dtype float32 or float64; got int64",
     lambda: fwd(Z, np.zeros((3, 4), np.int64))),
    (TypeError, T_ARRAY + "None", lambda: fwd(Z, None)),
    (TypeError, T_ARRAY + "list", lambda: fwd(Z, [0, 1, 2])),
    (TypeError, T_ARRAY + "int", lambda: bwd(Z, 3)),
    (TypeError, Z_ARRAY + "None", lambda: fwd(None, T)),
    (TypeError, Z_ARRAY + "list", lambda: bwd([[0.0, 1.0]], [1])),
    (TypeError, Z_ARRAY + "float32", lambda: fwd(np.float32(3), T)),
    (TypeError, Z_DTYPE + "int32", lambda: fwd(np.zeros((3, 4), np.int32), T)),
    (TypeError, Z_DTYPE + "int64", lambda: bwd(np.zeros((3, 4), np.int64), T)),
    (TypeError, Z_DTYPE + "bool", lambda: fwd(np.zeros((3, 4), bool), T)),
    (TypeError, Z_DTYPE + "complex128", lambda: fwd(np.zeros((3, 4), complex), T)),
    (TypeError, Z_DTYPE + "object", lambda: fwd(np.zeros((3, 4), object), T)),
    (TypeError, Z_DTYPE + "<U1", lambda: fwd(np.zeros((3, 4), "U1"), T)),
    # dloss
    (TypeError, "dloss must be a real number; got str", lambda: bwd(Z, T, "1")),
    (TypeError, "dloss must be a real number; got bool", lambda: bwd(Z, T, True)),
    (TypeError, "dloss must be a real number; got NoneType", lambda: bwd(Z, T, None)),
    (ValueError, "dloss must be finite; got nan", lambda: bwd(Z, T, float("nan"))),
]


@pytest.mark.parametrize("case", range(len(BAD_CALLS)))
def test_softmax_ce_rejects_bad_input(case):
    err, message, call = BAD_CALLS[case]
    with raises_exactly(err, message):
        call()


def test_soft_targets_need_not_sum_to_one():
    # Documented: any finite weights >= 0. A row's loss scales with its sum; a zero row adds 0.
    z = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]])
    one = fwd(z, np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
    three = fwd(z, np.array([[0.0, 3.0, 0.0], [0.0, 0.0, 0.0]]))
    assert float(three) == pytest.approx(3 * float(one), rel=1e-14)
    assert_close(three, ref.softmax_cross_entropy_forward(z, np.array([[0, 3.0, 0], [0, 0, 0]])))
    # -0.0 is a weight >= 0 (it compares equal to 0), not a negative one
    assert float(fwd(z, np.array([[-0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))) == float(one)


def test_strided_and_unsigned_labels_are_accepted():
    z = rand(np.random.default_rng(9), 3, 4)
    t = np.array([3, 0, 1])
    expected = fwd(z, t).tobytes()
    assert fwd(z, np.repeat(t, 2)[::2]).tobytes() == expected
    assert fwd(z, t.astype(np.uint64)).tobytes() == expected


@pytest.mark.parametrize("c", [1, 7, 8, 9, 31, 32, 33, 40, 64, 65, 100])
def test_row_max_finds_the_max_in_every_lane_and_skips_nan(c):
    """The float32 row maximum runs in 2 x 8 lanes plus a scalar tail. Put a logit of 200 at
    every position in turn (each lane, accumulator and the tail): a shift by anything smaller
    would overflow e^(z - m) in float32, so the loss and gradient stay finite and match the
    reference only if the maximum was found. A NaN anywhere makes its row NaN."""
    rng = np.random.default_rng(c)
    for pos in range(c):
        z = rng.standard_normal(c).astype(np.float32)
        z[pos] = 200.0
        t = np.array([(pos + 1) % c])
        z64 = z[None].astype(np.float64)
        assert_close(fwd(z[None], t), ref.softmax_cross_entropy_forward(z64, t), reduction=c)
        dz = bwd(z[None], t)
        assert np.isfinite(dz).all()
        assert_close(dz, ref.softmax_cross_entropy_backward(z64, t), reduction=c)
        z[(pos + 1) % c] = np.nan
        assert np.isnan(float(fwd(z[None], t))) and np.isnan(bwd(z[None], t)).all()


def test_rows_with_and_without_the_exp_shortcut_agree_bitwise():
    # A float32 row whose z - max all lie in [-86, 0] runs the exp without its per-vector range
    # test; one more column 200 below the max sends the row down the general path. That column's
    # e^-200 is +0, so every other element of the loss and the gradient must keep its bits.
    rng = np.random.default_rng(11)
    for c in (8, 37, 1000):
        z = (10 * rand(rng, 23, c)).astype(np.float32)
        t = labels(rng, 23, c)
        wide = np.concatenate([z, z.max(axis=1, keepdims=True) - 200], axis=1)
        assert fwd(z, t).tobytes() == fwd(wide, t).tobytes()
        dwide = bwd(wide, t)
        assert bwd(z, t).tobytes() == dwide[:, :c].tobytes()
        assert dwide[:, c].tolist() == [0.0] * 23


@pytest.mark.parametrize("c", [1, 8, 17, 40])
def test_a_nan_in_a_row_within_the_shortcut_range_makes_it_nan(c):
    # Rows of small logits take the exp's shortcut for the whole row; the scan does not look for
    # NaN, so the shortcut itself must keep a NaN lane NaN, wherever it sits.
    rng = np.random.default_rng(c)
    nans = np.array([0x7FC00000, 0x7FC12345, 0xFFD00001, 0x7F800001], np.uint32).view(np.float32)
    for pos in range(c):
        z = rng.uniform(-1, 1, (2, c)).astype(np.float32)
        z[1, pos] = nans[pos % nans.size]  # NaNs with payloads and signs
        t = np.array([0, (pos + 1) % c])
        assert np.isnan(float(fwd(z, t)))
        dz = bwd(z, t)
        assert np.isfinite(dz[0]).all() and np.isnan(dz[1]).all()
