import numpy as np
import pytest

import fastconv as fc
import fastconv.ops as ops
import fastconv.reference as ref
from helpers import DTYPES, assert_close, rand

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


OPTIM_BAD_CALLS = [
    ("param", TypeError, lambda: SGD(np.ones((2, 3), np.int32), z(dtype=np.int32))),
    ("param", TypeError, lambda: SGD([1.0, 2.0], [0.0, 0.0])),
    ("param", TypeError, lambda: SGD(None, z())),
    ("param", ValueError, lambda: SGD(readonly(), z())),
    ("param", ValueError, lambda: SGD(np.ones((3, 4))[:, ::2], z((3, 2)))),
    ("grad", ValueError, lambda: SGD(np.ones((2, 3)), z((3, 2)))),
    ("grad", TypeError, lambda: SGD(np.ones((2, 3)), z(dtype=np.float32))),
    ("grad", TypeError, lambda: SGD(np.ones((2, 3)), None)),
    ("grad", TypeError, lambda: SGD(np.ones((2, 3)), [[0.0] * 3] * 2)),
    ("velocity", ValueError, lambda: SGD(np.ones((2, 3)), z(), None, momentum=0.9)),
    ("velocity", ValueError, lambda: SGD(np.ones((2, 3)), z(), readonly(), momentum=0.9)),
    ("velocity", ValueError, lambda: SGD(np.ones((2, 3)), z(), z((6,)), momentum=0.9)),
    ("nesterov", ValueError, lambda: SGD(np.ones((2, 3)), z(), z(), nesterov=True)),
    ("nesterov", TypeError, lambda: SGD(np.ones((2, 3)), z(), z(), 0.1, 0.9, "yes")),
    ("lr", ValueError, lambda: SGD(np.ones((2, 3)), z(), lr=-0.1)),
    ("lr", ValueError, lambda: SGD(np.ones((2, 3)), z(), lr=float("inf"))),
    ("lr", TypeError, lambda: SGD(np.ones((2, 3)), z(), lr=None)),
    ("momentum", ValueError, lambda: SGD(np.ones((2, 3)), z(), z(), momentum=-0.5)),
    ("weight_decay", ValueError, lambda: SGD(np.ones((2, 3)), z(), weight_decay=float("nan"))),
    ("step", ValueError, adam(step=0)),
    ("step", TypeError, adam(step=1.0)),
    ("step", TypeError, adam(step=True)),
    ("eps", ValueError, adam(eps=0.0)),
    ("beta1", ValueError, adam(beta1=1.0)),
    ("beta2", ValueError, adam(beta2=-0.1)),
    ("lr", ValueError, adam(lr=-1e-3)),
    ("m", TypeError, adam(m=z(dtype=np.float32))),
    ("m", ValueError, adam(m=readonly())),
    ("v", ValueError, adam(v=z((3, 2)))),
    ("v", TypeError, adam(v=None)),
    ("param", ValueError, adam(param=np.ones((2, 3)).T.copy().T)),
    ("velocity", ValueError, lambda: SGD(P, z(), P, momentum=0.9)),
    ("m", ValueError, lambda: ops.adam_update(P, z(), P[...], z(), 1)),
    ("v", ValueError, lambda: ops.adam_update(np.ones((2, 3)), z(), P, P, 1)),
]


@pytest.mark.parametrize("name,exc,call", OPTIM_BAD_CALLS,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(OPTIM_BAD_CALLS)])
def test_optim_bad_input(name, exc, call):
    with pytest.raises(exc, match=rf"^{name}\b"):
        call()


def test_bad_call_leaves_state_untouched():
    # validation happens before any write: a rejected call must not half-update the parameter
    p, v = np.ones((2, 3)), z()
    with pytest.raises(ValueError, match="eps"):
        ops.adam_update(p, np.ones((2, 3)), v, z(), 1, eps=0.0)
    np.testing.assert_array_equal(p, 1.0)
    np.testing.assert_array_equal(v, 0.0)
