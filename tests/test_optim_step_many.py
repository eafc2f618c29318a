"""Optimizer.step_many: Sgd and Adam update every parameter with one multi-tensor call, with the
same bits, state and versions as step on each in turn; mixed dtypes, a repeated variable or a
subclass that redefines step take the loop; a refused call changes nothing; Grads.update hands
a user's optimiser that has only step one call per Variable. The tutorial CNN trained 3 steps
either way ends with the same weights, bit for bit (the GPU twin: test_optim_multi_cuda.py)."""
from __future__ import annotations

import numpy as np
import pytest

import fastconv as fc
import fastconv.ops as ops
from fastconv.autograd import Variable
from helpers import raises_exactly
from test_optim_multi import same_bits


def variables(rng, dtype=np.float64, shapes=((3, 4), (5,), (0,), (2, 1, 3, 3))):
    wds = [None, 1e-2, None, 5e-4]
    return [Variable(rng.standard_normal(s).astype(dtype), weight_decay=wds[i % 4])
            for i, s in enumerate(shapes)]


OPTIMIZERS = [lambda: fc.Sgd(lr=0.1, momentum=0.0), lambda: fc.Sgd(lr=0.1, momentum=0.9,
                                                                    nesterov=False),
              lambda: fc.Sgd(), lambda: fc.Adam(lr=0.01)]


def run_steps(opt, vs, grads, many):
    for g in grads:
        if many:
            opt.step_many(zip(vs, g))
        else:
            for v, gi in zip(vs, g):
                opt.step(v, gi)


def state_bytes(opt, vs):
    out = []
    for v in vs:
        s = opt.get_state(v) or {}
        out += [v.as_ndarray().tobytes(), v._version] + [s[k].tobytes() for k in sorted(s)]
    return out


@pytest.mark.parametrize("make", range(len(OPTIMIZERS)))
@pytest.mark.parametrize("dtypes", [(np.float64,), (np.float32,), (np.float32, np.float64)])
def test_step_many_equals_step_in_turn(make, dtypes):
    # Mixed dtypes take the loop (the multi op takes one dtype); the results are the same.
    rng = np.random.default_rng(make)
    vs = [v for d in dtypes for v in variables(rng, d)]
    grads = [[rng.standard_normal(v.shape).astype(v.dtype) for v in vs] for _ in range(3)]
    twins = [Variable(v.as_ndarray(), weight_decay=v.weight_decay) for v in vs]
    many, one = OPTIMIZERS[make](), OPTIMIZERS[make]()
    run_steps(many, vs, grads, True)
    run_steps(one, twins, grads, False)
    assert state_bytes(many, vs) == state_bytes(one, twins)
    assert all(v._version == 3 for v in vs)


def test_step_many_takes_one_multi_call(monkeypatch):
    calls = []
    real = ops.sgd_update_multi
    monkeypatch.setattr(ops, "sgd_update_multi", lambda *a, **k: calls.append(1) or real(*a, **k))
    vs = variables(np.random.default_rng(0))
    fc.Sgd().step_many([(v, np.ones(v.shape)) for v in vs])
    assert calls == [1]


def test_a_refused_step_many_changes_nothing():
    rng = np.random.default_rng(6)
    vs = variables(rng)
    opt = fc.Adam()
    opt.step_many([(v, np.ones(v.shape)) for v in vs])
    before = state_bytes(opt, vs)
    bad = [(v, np.ones(v.shape)) for v in vs[:-1]] + [(vs[-1], np.ones(3))]
    with raises_exactly(ValueError, "grads[3] must have the shape of params[3] (2, 1, 3, 3); "
                                    "got (3,)"):
        opt.step_many(bad)
    assert state_bytes(opt, vs) == before
    with raises_exactly(TypeError, "pairs must hold (variable, grad) pairs; got int 3"):
        opt.step_many([(vs[0], np.ones(vs[0].shape)), 3])
    with raises_exactly(TypeError, "variable must be a fastconv Variable; got an array of "
                                   "dtype float64 and shape (3,)"):
        opt.step_many([(np.ones(3), np.ones(3))])
    assert state_bytes(opt, vs) == before


def test_a_variable_twice_is_stepped_twice():
    a, b = Variable(np.ones(3)), Variable(np.ones(3))
    opt_a, opt_b = fc.Sgd(lr=0.1, momentum=0.0), fc.Sgd(lr=0.1, momentum=0.0)
    opt_a.step_many([(a, np.ones(3)), (a, np.ones(3))])
    opt_b.step(b, np.ones(3))
    opt_b.step(b, np.ones(3))
    same_bits([a.as_ndarray()], [b.as_ndarray()])


class StepOnly:
    """A user's optimiser with only step: Grads.update calls it once per Variable."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def step(self, variable, grad):
        self.calls += 1
        self.inner.step(variable, grad)


class CountingSgd(fc.Sgd):
    """A subclass that redefines step: step_many must go through it."""

    calls = 0

    def step(self, variable, grad):
        CountingSgd.calls += 1
        super().step(variable, grad)


def tutorial_steps(x, t, opt, steps=3, seed=5):
    from fastconv import train

    np.random.seed(seed)
    model = train.tutorial_cnn()
    for _ in range(steps):
        with model.train():
            loss = fc.softmax_cross_entropy(model(x), t)
        loss.grad().update(opt)
    return model


@pytest.mark.parametrize("make", [lambda: fc.Sgd(lr=0.01, momentum=0.9), lambda: fc.Adam()])
def test_tutorial_cnn_steps_equal_the_per_variable_loop(make):
    rng = np.random.default_rng(2)
    x = rng.random((8, 1, 28, 28), dtype=np.float32)
    t = rng.integers(0, 10, 8).astype(np.int64)
    looped = StepOnly(make())
    a = tutorial_steps(x, t, make())
    b = tutorial_steps(x, t, looped)
    assert looped.calls == 3 * len(list(b.parameters())) == 24
    same_bits([p.as_ndarray() for p in a.parameters()], [p.as_ndarray() for p in b.parameters()])
    CountingSgd.calls = 0
    tutorial_steps(x, t, CountingSgd(lr=0.01), steps=1)
    assert CountingSgd.calls == 8
