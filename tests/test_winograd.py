"""Winograd convolution (csrc/cpu/winograd.*): float32 3x3 stride-1 convolutions, F(2x2, 3x3) and
F(4x4, 3x3), against the float64 reference, and the algorithm setting that chooses it.

Error bounds (relative to the reference's largest magnitude, in units of float32's eps times
sqrt(reduction), as helpers.assert_close counts them; measured on the cases below and in
BENCHMARKS.md's "CPU Winograd" section): im2col stays under 1; F(2,3) under 1 too; F(4,3) reached
5 (dx) on random normal data. The tests hold F(2,3) to im2col's bound (factor 16) and F(4,3) to
factor 32. Element by element, Winograd's error follows the magnitude of the whole input tile,
not each output's own terms: an outlier raises the error of its tile's neighbours
(test_an_outlier_spreads_error_only_within_its_tile); likewise an inf or NaN input makes its
whole output tile non-finite, not only the outputs that read it.
"""
import numpy as np
import pytest

import fastconv as fc
import fastconv.ops as ops
import fastconv.reference as ref
from fastconv._native import C
from helpers import assert_close, rand, raises_exactly, train_tutorial_cnn

VARIANTS = {"winograd_f2": 16.0, "winograd_f4": 32.0}  # algorithm -> assert_close factor

# (N, C, H, W, K, padding): batch 1, one and many channels, odd sizes, sizes that are not a
# multiple of either tile, an image smaller than a tile, padding 0..3 (3: dx crops dy).
SHAPES = [
    (1, 1, 5, 5, 1, 1),
    (2, 3, 7, 9, 4, 1),
    (1, 16, 11, 13, 8, 2),
    (3, 5, 6, 4, 3, 3),
    (2, 4, 3, 3, 5, 0),
    (1, 2, 1, 7, 3, 1),        # a one-row image
    (2, 1, 9, 1, 2, 2),        # a one-column image
    (2, 24, 28, 28, 32, 1),    # one block of 14 tile rows
    (6, 40, 28, 28, 56, 1),    # three blocks of tile rows (16, 16, 10 under F(4,3)), so dW and
                               # db add partial sums of more than one slice
    (1, 8, 30, 61, 6, 0),      # wide rows: tiles in more than one SSE group
]


@pytest.fixture(autouse=True)
def _restore_setting():
    yield
    fc.set_conv_algorithm("auto")
    fc.set_num_threads(2)


def _data(shape, seed=0, relu=False):
    n, c, h, w, k, p = shape
    rng = np.random.default_rng(seed)
    x = rand(rng, n, c, h, w, dtype=np.float32)
    wt = rand(rng, k, c, 3, 3, dtype=np.float32)
    b = rand(rng, k, dtype=np.float32)
    return x, wt, b, p


def _f64(*arrays):
    return [a.astype(np.float64) for a in arrays]


@pytest.mark.parametrize("algorithm", VARIANTS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x{}x{}x{}x{}-k{}-p{}".format(*s))
def test_matches_the_float64_reference(shape, algorithm):
    fc.set_conv_algorithm(algorithm)
    x, w, b, p = _data(shape)
    n, c, _, _, k, _ = shape
    assert C._conv2d_algorithm(x, w, (1, 1), (p, p), (1, 1)) == algorithm
    factor = VARIANTS[algorithm]
    y = ops.conv2d_forward(x, w, b, padding=p)
    assert_close(y, ref.conv2d_forward(*_f64(x, w, b), padding=p), reduction=c * 9, factor=factor)
    dy = rand(np.random.default_rng(1), *y.shape, dtype=np.float32)
    dx, dw, db = ops.conv2d_backward(x, w, dy, padding=p)
    dx_r, dw_r, db_r = ref.conv2d_backward(*_f64(x, w, dy), padding=p)
    plane = y.shape[2] * y.shape[3]
    assert_close(dx, dx_r, reduction=k * 9, factor=factor)
    assert_close(dw, dw_r, reduction=n * plane, factor=factor)
    assert_close(db, db_r, reduction=n * plane)


@pytest.mark.parametrize("algorithm", VARIANTS)
def test_fused_relu_forward_and_backward(algorithm):
    fc.set_conv_algorithm(algorithm)
    x, w, b, p = _data((2, 6, 10, 11, 5, 1), seed=2)
    y = ops.conv2d_forward(x, w, b, padding=p, relu=True)
    want = ref.conv2d_forward(*_f64(x, w, b), padding=p, relu=True)
    assert_close(y, want, reduction=6 * 9, factor=VARIANTS[algorithm])
    assert (y >= 0).all() and (y == 0).any()
    g = rand(np.random.default_rng(3), *y.shape, dtype=np.float32)
    fused = ops.conv2d_backward(x, w, g, padding=p, relu_y=y)
    unfused = ops.conv2d_backward(x, w, ops.relu_backward(g, y), padding=p)
    for a, e in zip(fused, unfused):
        np.testing.assert_array_equal(a, e)


ADVERSARIAL = ["dynamic-range", "channel-scales", "all-positive"]


@pytest.mark.parametrize("algorithm", VARIANTS)
@pytest.mark.parametrize("kind", ADVERSARIAL)
def test_adversarial_inputs_stay_within_the_bound(kind, algorithm):
    fc.set_conv_algorithm(algorithm)
    rng = np.random.default_rng(4)
    n, c, h, w, k = 2, 32, 13, 17, 24
    x, wt = rng.standard_normal((n, c, h, w)), rng.standard_normal((k, c, 3, 3))
    dy = rng.standard_normal((n, k, h, w))
    if kind == "dynamic-range":  # every element its own scale, 1e-4 .. 1e4
        x *= 10.0 ** rng.uniform(-4, 4, x.shape)
        wt *= 10.0 ** rng.uniform(-2, 2, wt.shape)
        dy *= 10.0 ** rng.uniform(-3, 3, dy.shape)
    elif kind == "channel-scales":  # input channels from 1e-4 to 1e4, weights the other way
        x *= 10.0 ** np.linspace(-4, 4, c)[None, :, None, None]
        wt *= 10.0 ** np.linspace(3, -3, c)[None, :, None, None]
    else:  # no cancellation to hide behind, and a large mean
        x, wt = np.abs(x) + 10.0, np.abs(wt)
    x, wt, dy = (a.astype(np.float32) for a in (x, wt, dy))
    factor = VARIANTS[algorithm]
    y = ops.conv2d_forward(x, wt, padding=1)
    assert_close(y, ref.conv2d_forward(*_f64(x, wt), padding=1), reduction=c * 9, factor=factor)
    dx, dw, _ = ops.conv2d_backward(x, wt, dy, padding=1)
    dx_r, dw_r, _ = ref.conv2d_backward(*_f64(x, wt, dy), padding=1)
    assert_close(dx, dx_r, reduction=k * 9, factor=factor)
    assert_close(dw, dw_r, reduction=n * h * w, factor=factor)


def test_an_outlier_spreads_error_only_within_its_tile():
    # One input of 1e6 among N(0, 1) values. Under F(4,3) the outputs of its 4x4 tile that do
    # not read it still see errors of order eps * 1e6 (the transforms mix the tile); outputs of
    # other tiles keep im2col-like accuracy.
    fc.set_conv_algorithm("winograd_f4")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 4, 16, 16)).astype(np.float32)
    w = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    x[0, 0, 9, 9] = 1e6  # padding 1: read by outputs 8..10 (rows and columns)
    err = np.abs(ops.conv2d_forward(x, w, padding=1) - ref.conv2d_forward(*_f64(x, w), padding=1))
    scale = ref.conv2d_forward(*_f64(np.abs(x), np.abs(w)), padding=1)  # sum |x||w| per output
    eps = np.finfo(np.float32).eps
    ratio = err / (eps * scale)
    tile = np.zeros((16, 16), bool)
    tile[8:12, 8:12] = True  # the one tile whose 6x6 input patch (rows/cols 7..12) holds it
    assert ratio[:, :, ~tile].max() <= 64
    # Row and column 11 of the tile do not read input (9, 9), yet carry its rounding error.
    assert max(ratio[:, :, 11, 8:12].max(), ratio[:, :, 8:12, 11].max()) > 1000


def test_a_non_finite_input_poisons_only_its_tile():
    # im2col makes the 3x3 outputs that read an inf non-finite; F(4,3) all 16 of its tile (the
    # transforms subtract inf from inf), and nothing outside it.
    rng = np.random.default_rng(14)
    x = rng.standard_normal((1, 2, 16, 16)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    x[0, 0, 9, 9] = np.inf
    bad = {}
    for algorithm in ("im2col", "winograd_f4"):
        fc.set_conv_algorithm(algorithm)
        bad[algorithm] = ~np.isfinite(ops.conv2d_forward(x, w, padding=1)[0])
    want = np.zeros((16, 16), bool)
    want[8:11, 8:11] = True
    assert (bad["im2col"] == want).all()
    want[8:12, 8:12] = True
    assert (bad["winograd_f4"] == want).all()


@pytest.mark.parametrize("algorithm", VARIANTS)
def test_backward_is_the_adjoint_of_the_forward(algorithm):
    # sum(conv(x, w) * dy) = sum(x * dx) = sum(w * dw): the products are summed in float64.
    fc.set_conv_algorithm(algorithm)
    x, w, _, p = _data((3, 8, 12, 9, 6, 1), seed=6)
    y = ops.conv2d_forward(x, w, padding=p)
    dy = rand(np.random.default_rng(7), *y.shape, dtype=np.float32)
    dx, dw, _ = ops.conv2d_backward(x, w, dy, padding=p)
    inner = float(np.sum(y.astype(np.float64) * dy))
    scale = float(np.sum(np.abs(y.astype(np.float64) * dy)))
    for a, g in ((x, dx), (w, dw)):
        assert abs(float(np.sum(a.astype(np.float64) * g)) - inner) <= 1e-4 * scale


@pytest.mark.parametrize("algorithm", VARIANTS)
def test_gradients_match_finite_differences(algorithm):
    # The loss sum(conv(x, w) * g) is linear in x and in w, so a central difference with a step
    # of 1 has no truncation error: only float32 rounding of the two forward passes.
    fc.set_conv_algorithm(algorithm)
    x, w, b, p = _data((2, 3, 7, 8, 4, 1), seed=8)
    g = rand(np.random.default_rng(9), 2, 4, 7, 8, dtype=np.float32)
    dx, dw, _ = ops.conv2d_backward(x, w, g, padding=p)

    def loss():
        return float(np.sum(ops.conv2d_forward(x, w, b, padding=p).astype(np.float64) * g))

    rng = np.random.default_rng(10)
    for arr, grad in ((x, dx), (w, dw)):
        for i in rng.choice(arr.size, 12, replace=False):
            flat = arr.reshape(-1)
            old = flat[i]
            flat[i] = old + 1.0
            hi = loss()
            flat[i] = old - 1.0
            lo = loss()
            flat[i] = old
            assert abs((hi - lo) / 2.0 - grad.reshape(-1)[i]) <= 1e-3 * max(1.0, abs(hi))


@pytest.mark.parametrize("algorithm", VARIANTS)
@pytest.mark.parametrize("shape", [(8, 16, 28, 28, 32, 1), (3, 5, 9, 300, 4, 0)])
def test_independent_of_thread_count(shape, algorithm):
    fc.set_conv_algorithm(algorithm)
    x, w, b, p = _data(shape, seed=11)
    dy = rand(np.random.default_rng(12), shape[0], shape[4], shape[2] + 2 * p - 2,
              shape[3] + 2 * p - 2, dtype=np.float32)

    def run():
        y = ops.conv2d_forward(x, w, b, padding=p, relu=True)
        return (y, *ops.conv2d_backward(x, w, dy, padding=p, relu_y=y))

    fc.set_num_threads(1)
    one = run()
    fc.set_num_threads(2)
    two = run()
    for a, s in zip(one, two):
        np.testing.assert_array_equal(a, s)
    for a, s in zip(two, run()):
        np.testing.assert_array_equal(a, s)


def _algorithm(x, w, stride=1, padding=1, dilation=1):
    pair = lambda v: (v, v)  # noqa: E731
    return C._conv2d_algorithm(x, w, pair(stride), pair(padding), pair(dilation))


def test_auto_picks_winograd_only_where_it_applies_and_pays():
    f32, f64 = np.float32, np.float64
    big_x, big_w = np.zeros((2, 32, 28, 28), f32), np.zeros((64, 32, 3, 3), f32)
    assert fc.conv_algorithm() == "auto"
    assert _algorithm(big_x, big_w) == "winograd_f4"
    assert _algorithm(big_x, big_w, padding=0) == "winograd_f4"
    assert _algorithm(big_x.astype(f64), big_w.astype(f64)) == "im2col"  # float64
    assert _algorithm(big_x, big_w, stride=2) == "im2col"
    assert _algorithm(big_x, big_w, dilation=2) == "im2col"
    assert _algorithm(big_x, np.zeros((64, 32, 5, 5), f32)) == "im2col"
    assert _algorithm(np.zeros((2, 1, 28, 28), f32), np.zeros((32, 1, 3, 3), f32)) == "im2col"
    assert _algorithm(big_x, np.zeros((8, 32, 3, 3), f32)) == "im2col"  # few output channels
    small_x, small_w = np.zeros((2, 1, 28, 28), f32), np.zeros((32, 1, 3, 3), f32)
    fc.set_conv_algorithm("winograd")
    assert _algorithm(small_x, small_w) == "winograd_f4"
    assert _algorithm(big_x, big_w, stride=2) == "im2col"  # where it does not apply
    fc.set_conv_algorithm("winograd_f2")
    assert _algorithm(small_x, small_w) == "winograd_f2"
    fc.set_conv_algorithm("im2col")
    assert _algorithm(big_x, big_w) == "im2col"


def test_the_setting_changes_what_runs():
    x, w, b, p = _data((2, 16, 12, 12, 16, 1), seed=13)
    results = {}
    for algorithm in ("auto", "im2col", "winograd_f2", "winograd_f4"):
        fc.set_conv_algorithm(algorithm)
        results[algorithm] = ops.conv2d_forward(x, w, b, padding=p)
    np.testing.assert_array_equal(results["auto"], results["winograd_f4"])
    assert not np.array_equal(results["im2col"], results["winograd_f4"])
    assert not np.array_equal(results["winograd_f2"], results["winograd_f4"])


def test_scratch_bytes_follow_the_algorithm_and_not_the_batch():
    w = np.zeros((32, 16, 3, 3), np.float32)
    sizes = {}
    for algorithm in ("im2col", "winograd_f4"):
        fc.set_conv_algorithm(algorithm)
        sizes[algorithm] = [ops.conv2d_scratch_bytes(np.zeros((n, 16, 28, 28), np.float32), w,
                                                     padding=1) for n in (64, 256)]
    assert sizes["im2col"] != sizes["winograd_f4"]
    assert sizes["winograd_f4"][0] == sizes["winograd_f4"][1] > 0
    fc.set_conv_algorithm("winograd_f4")
    x64 = np.zeros((64, 16, 28, 28), np.float64)
    fc.set_conv_algorithm("im2col")
    want = ops.conv2d_scratch_bytes(x64, w.astype(np.float64), padding=1)
    fc.set_conv_algorithm("winograd_f4")
    assert ops.conv2d_scratch_bytes(x64, w.astype(np.float64), padding=1) == want  # float64


def test_setting_round_trips_and_shows_in_build_info():
    for algorithm in ("im2col", "winograd", "winograd_f2", "winograd_f4", "auto"):
        fc.set_conv_algorithm(algorithm)
        assert fc.conv_algorithm() == algorithm
        assert fc.build_info()["conv_algorithm"] == algorithm


ALLOWED = "'auto', 'im2col', 'winograd', 'winograd_f2', 'winograd_f4'"


@pytest.mark.parametrize("value, exc, message", [
    ("fft", ValueError, f"algorithm must be one of {ALLOWED}; got 'fft'"),
    ("Winograd", ValueError, f"algorithm must be one of {ALLOWED}; got 'Winograd'"),
    ("", ValueError, f"algorithm must be one of {ALLOWED}; got ''"),
    (None, TypeError, "algorithm must be a str; got NoneType"),
    (4, TypeError, "algorithm must be a str; got int"),
])
def test_bad_settings_are_refused_and_change_nothing(value, exc, message):
    fc.set_conv_algorithm("im2col")
    with raises_exactly(exc, message):
        fc.set_conv_algorithm(value)
    assert fc.conv_algorithm() == "im2col"


def test_the_module_level_setter_checks_the_value_too():
    with raises_exactly(ValueError, f"algorithm must be one of {ALLOWED}; got 'fft'"):
        C.set_conv_algorithm("fft")
    assert fc.conv_algorithm() == "auto"


# The stated training tolerance: the tutorial CNN, 20 SGD steps (lr 0.01, momentum 0.9, dropout
# with the same seeds) on one batch from the same weights; each step's loss relative to im2col's.
# Measured (30 steps): F(2,3) at most 2e-6, F(4,3) 8e-5 after 10 steps, 4.2e-4 after 20, 1.1e-3
# after 30 (training amplifies the last-bit differences); the bounds leave 5x.
TRAINING_TOLERANCE = {"winograd_f2": 1e-5, "winograd_f4": 2e-3}


@pytest.mark.parametrize("algorithm", sorted(TRAINING_TOLERANCE))
def test_training_follows_im2col_within_the_stated_tolerance(algorithm):
    rng = np.random.default_rng(5)
    x = rng.random((32, 1, 28, 28)).astype(np.float32)
    t = rng.integers(0, 10, 32)
    before = fc.conv_algorithm()
    try:
        fc.set_conv_algorithm("im2col")
        _, _, plain = train_tutorial_cnn(x, t, steps=20, seed=3)
        fc.set_conv_algorithm(algorithm)
        _, _, wino = train_tutorial_cnn(x, t, steps=20, seed=3)
    finally:
        fc.set_conv_algorithm(before)
    plain, wino = np.array(plain), np.array(wino)
    assert plain[-1] < 0.9 * plain[0]  # it trains
    np.testing.assert_allclose(wino, plain, rtol=TRAINING_TOLERANCE[algorithm], atol=0)
