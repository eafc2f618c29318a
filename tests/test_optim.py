import numpy as np
import pytest

import fastconv as fc
import fastconv.ops as ops
import fastconv.reference as ref
from helpers import DTYPES, assert_close, overlap, raises_exactly, rand

SHAPES = [(1,), (7,), (3, 5), (16, 3, 3, 3), (1, 1, 1, 1), (300, 257)]
STEPS = 4

SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.05, weight_decay=1e-2),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4),
]
ADAM_CONFIGS = [dict(), dict(lr=0.01, beta1=0.5, beta2=0.9, eps=1e-6, weight_decay=1e-2)]


def run_sgd(update, params, grads, velocity, cfg):
    for g in grads:
        update(params, g, velocity, **cfg)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_sgd_matches_reference(shape, dtype):
    rng = np.random.default_rng(0)
    p0 = rand(rng, *shape, dtype=dtype)
    grads = [rand(rng, *shape, dtype=dtype) for _ in range(STEPS)]
    for cfg in SGD_CONFIGS:
        p, v = p0.copy(), np.zeros_like(p0)
        for g in grads:
            assert ops.sgd_update(p, g, v, **cfg) is None
        # the reference in float64 is the oracle; in the array's dtype it follows the same
        # rounding steps, so it agrees to a few ulps
        p64, v64 = p0.astype(np.float64), np.zeros(shape)
        pd, vd = p0.copy(), np.zeros_like(p0)
        for g in grads:
            ref.sgd_update(p64, g.astype(np.float64), v64, **cfg)
            ref.sgd_update(pd, g, vd, **cfg)
        assert_close(p, p64, reduction=4 * STEPS)
        assert_close(v, v64, reduction=4 * STEPS)
        assert_close(p, pd, factor=4)
        assert_close(v, vd, factor=4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_adam_matches_reference(shape, dtype):
    rng = np.random.default_rng(1)
    p0 = rand(rng, *shape, dtype=dtype)
    grads = [rand(rng, *shape, dtype=dtype) for _ in range(STEPS)]
    for cfg in ADAM_CONFIGS:
        p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
        p64, m64, v64 = p0.astype(np.float64), np.zeros(shape), np.zeros(shape)
        pd, md, vd = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
        for step, g in enumerate(grads, start=1):
            assert ops.adam_update(p, g, m, v, step, **cfg) is None
            ref.adam_update(p64, g.astype(np.float64), m64, v64, step, **cfg)
            ref.adam_update(pd, g, md, vd, step, **cfg)
        for actual, expected, same in [(p, p64, pd), (m, m64, md), (v, v64, vd)]:
            assert_close(actual, expected, reduction=8 * STEPS)
            assert_close(actual, same, factor=4)


def one(value, dtype):
    return np.array([value], dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_hand_computed(dtype):
    tol = dict(rtol=2 * np.finfo(dtype).eps, atol=0)

    def sgd(param=1.0, grad=0.5, velocity=None, **cfg):
        p = one(param, dtype)
        v = None if velocity is None else one(velocity, dtype)
        ops.sgd_update(p, one(grad, dtype), v, **cfg)
        return p[0], (None if v is None else v[0])

    # plain: 1 - 0.1 * 0.5
    np.testing.assert_allclose(sgd(lr=0.1)[0], 0.95, **tol)
    # weight decay: g = 0.5 + 0.1 * 1.0 = 0.6
    np.testing.assert_allclose(sgd(lr=0.1, weight_decay=0.1)[0], 0.94, **tol)
    # momentum from v = 0: v = 0.5, step = v
    p, v = sgd(velocity=0.0, lr=0.1, momentum=0.9)
    np.testing.assert_allclose([p, v], [0.95, 0.5], **tol)
    # Nesterov from v = 0: v = 0.5, step = 0.5 + 0.9 * 0.5 = 0.95
    p, v = sgd(velocity=0.0, lr=0.1, momentum=0.9, nesterov=True)
    np.testing.assert_allclose([p, v], [0.905, 0.5], **tol)
    # momentum with history v = 1: v = 0.9 + 0.5 = 1.4
    p, v = sgd(velocity=1.0, lr=0.1, momentum=0.9)
    np.testing.assert_allclose([p, v], [0.86, 1.4], **tol)
    # Nesterov with history and weight decay: g = 0.6, v = 1.5, step = 0.6 + 1.35 = 1.95
    p, v = sgd(velocity=1.0, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)
    np.testing.assert_allclose([p, v], [0.805, 1.5], **tol)
    # two momentum steps from zero: v = 0.5 then 0.95; p = 0.95 then 0.855
    p, v = one(1.0, dtype), one(0.0, dtype)
    for _ in range(2):
        ops.sgd_update(p, one(0.5, dtype), v, lr=0.1, momentum=0.9)
    np.testing.assert_allclose([p[0], v[0]], [0.855, 0.95], **tol)
    # momentum 0 ignores (and leaves alone) a velocity that is passed anyway
    p, v = sgd(velocity=3.0, lr=0.1)
    np.testing.assert_allclose([p, v], [0.95, 3.0], **tol)
    # lr 0 changes nothing in param, but momentum still accumulates
    p, v = sgd(velocity=0.0, lr=0.0, momentum=0.9)
    assert p == 1.0 and v == 0.5


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_hand_computed(dtype):
    tol = dict(rtol=4 * np.finfo(dtype).eps, atol=0)
    p, m, v = one(1.0, dtype), one(0.0, dtype), one(0.0, dtype)
    ops.adam_update(p, one(0.5, dtype), m, v, 1, lr=0.1)
    # m = 0.1 * 0.5, v = 0.001 * 0.25; bias-corrected: m_hat = 0.5, v_hat = 0.25
    np.testing.assert_allclose([m[0], v[0]], [0.05, 0.00025], **tol)
    np.testing.assert_allclose(p[0], 1 - 0.1 * 0.5 / (0.5 + 1e-8), **tol)
    # second step with the same gradient: m_hat and v_hat stay 0.5 and 0.25
    ops.adam_update(p, one(0.5, dtype), m, v, 2, lr=0.1)
    np.testing.assert_allclose([m[0], v[0]], [0.095, 0.00049975], **tol)
    np.testing.assert_allclose(p[0], 1 - 2 * 0.1 * 0.5 / (0.5 + 1e-8), **tol)
    # weight decay enters the gradient: g = 0.5 + 0.5 * 1.0 = 1; m_hat = v_hat = 1
    p, m, v = one(1.0, dtype), one(0.0, dtype), one(0.0, dtype)
    ops.adam_update(p, one(0.5, dtype), m, v, 1, lr=0.1, beta1=0.5, beta2=0.75, eps=0.5,
                    weight_decay=0.5)
    np.testing.assert_allclose([p[0], m[0], v[0]], [1 - 0.1 / 1.5, 0.5, 0.25], **tol)


def test_optim_deterministic_across_threads():
    rng = np.random.default_rng(5)
    shape = (64, 32, 3, 3, 4)  # above the parallel thresholds
    p0 = rand(rng, *shape, dtype=np.float32)
    g = rand(rng, *shape, dtype=np.float32)
    results = []
    try:
        for threads in (1, 2, 2):
            fc.set_num_threads(threads)
            p, vel = p0.copy(), np.zeros_like(p0)
            q, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
            for step in (1, 2):
                ops.sgd_update(p, g, vel, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
                ops.adam_update(q, g, m, v, step, weight_decay=1e-3)
            results.append((p, vel, q, m, v))
    finally:
        fc.set_num_threads(2)
    for r in results[1:]:
        for a, b in zip(r, results[0]):
            np.testing.assert_array_equal(a, b)


P = np.ones((2, 3))  # only ever passed to calls that must fail before writing


def z(shape=(2, 3), dtype=np.float64):
    return np.zeros(shape, dtype)


def readonly():
    a = z()
    a.flags.writeable = False
    return a


SGD = ops.sgd_update


def adam(**kw):
    args = dict(param=np.ones((2, 3)), grad=z(), m=z(), v=z(), step=1)
    args.update(kw)
    return lambda: ops.adam_update(**args)


def shared(n=8):
    """Two contiguous, writeable (6,) views of one buffer of n floats: [0:6] and [n-6:n]."""
    base = np.zeros(n)
    return base[:6], base[n - 6:]


def sgd_overlap(pair):
    """An SGD call whose two named arrays share 32 of their 48 bytes; the rest are separate."""
    lo, hi = shared()
    arrays = dict(param=np.ones(6), grad=np.zeros(6), velocity=np.zeros(6))
    arrays[pair[0]], arrays[pair[1]] = hi, lo
    return lambda: SGD(arrays["param"], arrays["grad"], arrays["velocity"], momentum=0.9)


def adam_overlap(pair):
    lo, hi = shared()
    arrays = dict(param=np.ones(6), grad=np.zeros(6), m=np.zeros(6), v=np.zeros(6))
    arrays[pair[0]], arrays[pair[1]] = hi, lo
    return adam(**arrays)


PARAM_ARRAY = "param must be a numpy array or a fastconv DeviceArray; got "
RO = " must be a writeable array (it is updated in place); got a read-only array"

OPTIM_BAD_CALLS = [
    (TypeError, "param must have dtype float32 or float64; got int32",
     lambda: SGD(np.ones((2, 3), np.int32), z(dtype=np.int32))),
    (TypeError, "param must have dtype float32 or float64; got complex128",
     lambda: SGD(np.ones(3, complex), np.zeros(3, complex))),
    (TypeError, "param must have dtype float32 or float64; got bool",
     lambda: adam(param=np.ones(6, bool), grad=np.zeros(6, bool))()),
    (TypeError, PARAM_ARRAY + "list", lambda: SGD([1.0, 2.0], [0.0, 0.0])),
    (TypeError, PARAM_ARRAY + "None", lambda: SGD(None, z())),
    (TypeError, PARAM_ARRAY + "float", lambda: SGD(2.0, z())),
    (ValueError, "param" + RO, lambda: SGD(readonly(), z())),
    (ValueError, "param must be C-contiguous (pass numpy.ascontiguousarray(param)); got shape "
     "(3, 2) with strides (32, 16)", lambda: SGD(np.ones((3, 4))[:, ::2], z((3, 2)))),
    (ValueError, "param must be C-contiguous (pass numpy.ascontiguousarray(param)); got shape "
     "(2, 3) with strides (8, 16)", adam(param=np.ones((2, 3)).T.copy().T)),
    (ValueError, "grad must have the shape of param (2, 3); got (3, 2)",
     lambda: SGD(np.ones((2, 3)), z((3, 2)))),
    (TypeError, "grad must have the dtype of param (float64); got float32",
     lambda: SGD(np.ones((2, 3)), z(dtype=np.float32))),
    (TypeError, "grad must have dtype float32 or float64; got int64",
     lambda: SGD(np.ones((2, 3)), z(dtype=np.int64))),
    (TypeError, "grad must have dtype float32 or float64; got bool",
     lambda: SGD(np.ones(3), np.zeros(3, bool))),
    (TypeError, "grad must have dtype float32 or float64; got object",
     lambda: SGD(np.ones(3), np.zeros(3, object))),
    (TypeError, "grad must have dtype float32 or float64; got <U1",
     lambda: SGD(np.ones(3), np.array(["a", "b", "c"]))),
    (TypeError, "grad must be a numpy array; got None", lambda: SGD(np.ones((2, 3)), None)),
    (TypeError, "grad must be a numpy array; got list",
     lambda: SGD(np.ones((2, 3)), [[0.0] * 3] * 2)),
    (TypeError, "grad must be a numpy array; got float", lambda: SGD(np.ones(3), 0.5)),
    (ValueError, "velocity must be an array like param when momentum != 0 (momentum 0.9; start "
     "it at numpy.zeros_like(param)); got None", lambda: SGD(np.ones((2, 3)), z(), None,
                                                             momentum=0.9)),
    (ValueError, "velocity" + RO, lambda: SGD(np.ones((2, 3)), z(), readonly(), momentum=0.9)),
    (ValueError, "velocity must have the shape of param (2, 3); got (6,)",
     lambda: SGD(np.ones((2, 3)), z(), z((6,)), momentum=0.9)),
    (TypeError, "velocity must be a numpy array; got list",
     lambda: SGD(np.ones(2), z((2,)), [0.0, 0.0], momentum=0.9)),
    (ValueError, "nesterov=True needs momentum > 0; got momentum 0",
     lambda: SGD(np.ones((2, 3)), z(), z(), nesterov=True)),
    (TypeError, "nesterov must be a bool; got str",
     lambda: SGD(np.ones((2, 3)), z(), z(), 0.1, 0.9, "yes")),
    (ValueError, "lr must be >= 0; got -0.1", lambda: SGD(np.ones((2, 3)), z(), lr=-0.1)),
    (ValueError, "lr must be finite; got inf", lambda: SGD(np.ones((2, 3)), z(), lr=float("inf"))),
    (TypeError, "lr must be a real number; got NoneType",
     lambda: SGD(np.ones((2, 3)), z(), lr=None)),
    (TypeError, "lr must be a real number; got bool", lambda: SGD(np.ones((2, 3)), z(), lr=True)),
    (ValueError, "momentum must be >= 0; got -0.5",
     lambda: SGD(np.ones((2, 3)), z(), z(), momentum=-0.5)),
    (ValueError, "weight_decay must be finite; got nan",
     lambda: SGD(np.ones((2, 3)), z(), weight_decay=float("nan"))),
    (ValueError, "step must be >= 1 (the 1-based count of this update); got 0", adam(step=0)),
    (ValueError, "step must be an int in [1, 2**63) (the 1-based count of this update); got "
     "9223372036854775808", adam(step=2**63)),
    (TypeError, "step must be an int (the 1-based count of this update); got float",
     adam(step=1.0)),
    (TypeError, "step must be an int (the 1-based count of this update); got bool",
     adam(step=True)),
    (ValueError, "eps must be > 0; got 0.0", adam(eps=0.0)),
    (ValueError, "beta1 must be in [0, 1); got 1.0", adam(beta1=1.0)),
    (ValueError, "beta2 must be in [0, 1); got -0.1", adam(beta2=-0.1)),
    (ValueError, "lr must be >= 0; got -0.001", adam(lr=-1e-3)),
    (TypeError, "m must have the dtype of param (float64); got float32",
     adam(m=z(dtype=np.float32))),
    (ValueError, "m" + RO, adam(m=readonly())),
    (ValueError, "v must have the shape of param (2, 3); got (3, 2)", adam(v=z((3, 2)))),
    (TypeError, "v must be a numpy array; got None", adam(v=None)),
    # every array an update writes is disjoint from every other array of the call
    (ValueError, overlap("velocity", "param", 48), lambda: SGD(P, z(), P, momentum=0.9)),
    (ValueError, overlap("velocity", "param", 48), lambda: SGD(P, z(), P[...])),
    (ValueError, overlap("m", "param", 48), lambda: ops.adam_update(P, z(), P[...], z(), 1)),
    (ValueError, overlap("v", "m", 48), lambda: ops.adam_update(np.ones((2, 3)), z(), P, P, 1)),
    (ValueError, overlap("grad", "param", 32), sgd_overlap(("param", "grad"))),
    (ValueError, overlap("grad", "param", 32), sgd_overlap(("grad", "param"))),
    (ValueError, overlap("velocity", "param", 32), sgd_overlap(("param", "velocity"))),
    # the reproducer: a velocity overlapping the gradient updated wrongly
    (ValueError, overlap("velocity", "grad", 32), sgd_overlap(("grad", "velocity"))),
    (ValueError, overlap("velocity", "grad", 32), sgd_overlap(("velocity", "grad"))),
    (ValueError, overlap("velocity", "grad", 8, size=8),
     lambda: (lambda g: SGD(np.ones(1), g, g, momentum=0.9))(np.zeros(1))),
    (ValueError, overlap("grad", "param", 32), adam_overlap(("grad", "param"))),
    (ValueError, overlap("m", "param", 32), adam_overlap(("m", "param"))),
    (ValueError, overlap("m", "grad", 32), adam_overlap(("grad", "m"))),
    (ValueError, overlap("v", "param", 32), adam_overlap(("param", "v"))),
    (ValueError, overlap("v", "grad", 32), adam_overlap(("v", "grad"))),
    (ValueError, overlap("v", "m", 32), adam_overlap(("m", "v"))),
    (ValueError, overlap("m", "grad", 48), lambda: (lambda g: adam(grad=g, m=g)())(z())),
]


@pytest.mark.parametrize("case", range(len(OPTIM_BAD_CALLS)))
def test_optim_bad_input(case):
    exc, message, call = OPTIM_BAD_CALLS[case]
    with raises_exactly(exc, message):
        call()


@pytest.mark.parametrize("dtype", DTYPES)
def test_grad_may_be_param_itself(dtype):
    # Each element reads its gradient before its update writes it, so grad is param is well
    # defined (decay towards 0): the same result as a separate copy.
    rng = np.random.default_rng(9)
    p0 = rand(rng, 300, 257, dtype=dtype)
    p, q = p0.copy(), p0.copy()
    ops.sgd_update(p, p, lr=0.1, weight_decay=0.5)
    ops.sgd_update(q, p0.copy(), lr=0.1, weight_decay=0.5)
    np.testing.assert_array_equal(p, q)
    p, q = p0.copy(), p0.copy()
    state = [np.zeros_like(p0) for _ in range(4)]
    ops.adam_update(p, p, state[0], state[1], 1)
    ops.adam_update(q, p0.copy(), state[2], state[3], 1)
    np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(state[0], state[2])


def test_bad_call_leaves_state_untouched():
    # validation happens before any write: a rejected call must not half-update the parameter
    p, v = np.ones((2, 3)), z()
    with raises_exactly(ValueError, "eps must be > 0; got 0.0"):
        ops.adam_update(p, np.ones((2, 3)), v, z(), 1, eps=0.0)
    np.testing.assert_array_equal(p, 1.0)
    np.testing.assert_array_equal(v, 0.0)
