"""Optimisers with ReNom's names and defaults. State (velocity, moments) lives per parameter and
the update runs in place through the fused kernels of `fastconv.ops`.

step_many(pairs) updates many parameters at once: Sgd and Adam then make one call of the
multi-tensor op (ops.sgd_update_multi / adam_update_multi: one kernel launch per 32 parameters on
the GPU) with the same result, bit for bit, as calling step on each. Grads.update uses it.

Each step bumps the Variable's version, so a graph recorded before the update refuses a later
grad() (see fastconv.autograd). Hyperparameters are checked when the optimiser is made: finite
numbers, not bools, within the ranges given in each class's docstring."""
from __future__ import annotations

import weakref

import numpy as np

from . import graphs, ops
from ._validate import describe, flag, in_range
from .autograd import Variable
from .device import is_device_array, to_device, to_host, zeros_like

__all__ = ["Sgd", "Adam"]


def _contiguous(grad):
    # np.asarray(order="C") keeps a 0-d gradient 0-d (np.ascontiguousarray would make it 1-d).
    return grad if is_device_array(grad) else np.asarray(grad, order="C")


def _check_variable(variable) -> None:
    if not isinstance(variable, Variable):
        raise TypeError(f"variable must be a fastconv Variable; got {describe(variable)}")


def _pairs(pairs) -> list:
    """pairs as a list of (variable, grad), every variable checked before anything is updated."""
    out = []
    for item in pairs:
        try:
            variable, grad = item
        except (TypeError, ValueError):
            raise TypeError("pairs must hold (variable, grad) pairs; got "
                            f"{describe(item)}") from None
        _check_variable(variable)
        out.append((variable, grad))
    return out


def _one_call(variables) -> bool:
    """Whether the multi-tensor op can take these variables: all on one backend with one dtype,
    none twice (a repeated variable is stepped twice, in turn, as step would)."""
    kinds = {(is_device_array(v._value), np.dtype(v._value.dtype)) for v in variables}
    return len(kinds) == 1 and len({id(v) for v in variables}) == len(variables)


class Optimizer:
    """Base of Sgd and Adam: per-parameter state, kept as long as the parameter lives."""

    def __init__(self):
        self._state = weakref.WeakKeyDictionary()

    def _slots(self, variable, count):
        state = self._state.get(variable)
        if state is None:
            state = self._state[variable] = [zeros_like(variable._value) for _ in range(count)]
        return state

    def step(self, variable, grad) -> None:
        """Update `variable` in place from its gradient `grad` (bumping its version)."""
        raise TypeError(f"{type(self).__name__} must define step(variable, grad)")

    def step_many(self, pairs) -> None:
        """Update each variable of `pairs`, an iterable of (variable, grad), as step does. Here
        step on each in turn; Sgd and Adam update them all in one call of the multi-tensor op
        (same results, bit for bit) when they live on one backend with one dtype. Parameters
        that share memory are then refused (a ValueError names both), and a malformed gradient
        is named by its index (grads[i]), with nothing updated."""
        for variable, grad in _pairs(pairs):
            self.step(variable, grad)

    def slot_names(self) -> tuple:
        """The names of the arrays this optimiser keeps per parameter (checkpoint entries)."""
        return ()

    def state_names(self) -> tuple:
        """The entries of get_state()'s dict: the slots, and "step" where steps are counted."""
        return self.slot_names()

    def hyperparameters(self) -> dict:
        """The constructor's arguments, as saved (for information) in a checkpoint."""
        return {}

    def get_state(self, variable) -> dict | None:
        """`variable`'s state as host arrays by slot name (plus "step" where counted), or None
        if the optimiser has not stepped it yet. Used by Sequential.save(optimizer=...)."""
        state = self._state.get(variable)
        if state is None:
            return None
        return {name: to_host(slot).copy() for name, slot in zip(self.slot_names(), state)}

    def set_state(self, variable, state: dict | None) -> None:
        """Replace `variable`'s state by `state` (as get_state returns it; None: start afresh).
        The arrays are copied to where the variable lives, in its dtype; the caller (load)
        has checked the names and shapes."""
        self._state.pop(variable, None)
        if state is None:
            return
        slots = []
        for name in self.slot_names():
            value = np.array(state[name], dtype=variable.dtype, order="C", copy=True)
            slots.append(to_device(value) if is_device_array(variable._value) else value)
        if slots:
            self._state[variable] = slots


class Sgd(Optimizer):
    """p -= lr * step with step = g (+ momentum: v = m v + g; step = v, or g + m v for Nesterov).
    g includes the variable's own weight decay (wd * p) when it has one.

    lr >= 0 and momentum >= 0 are finite numbers; nesterov is a bool (with momentum 0 it has
    nothing to act on and is ignored)."""

    def __init__(self, lr=0.1, momentum=0.4, nesterov=True):
        super().__init__()
        self.lr = in_range(lr, "lr", 0.0, None)
        self.momentum = in_range(momentum, "momentum", 0.0, None)
        self.nesterov = flag(nesterov, "nesterov") and self.momentum > 0

    def slot_names(self) -> tuple:
        return ("velocity",) if self.momentum else ()

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov}

    def step(self, variable, grad) -> None:
        _check_variable(variable)
        velocity = self._slots(variable, 1)[0] if self.momentum else None
        ops.sgd_update(variable._value, _contiguous(grad), velocity, lr=self.lr,
                       momentum=self.momentum, nesterov=self.nesterov,
                       weight_decay=variable.weight_decay or 0.0)
        variable._bump_version()

    def step_many(self, pairs) -> None:
        pairs = _pairs(pairs)
        variables = [v for v, _ in pairs]
        # A subclass that redefines step gets it called, once per variable.
        if type(self).step is not Sgd.step or not _one_call(variables):
            return super().step_many(pairs)
        velocities = [self._slots(v, 1)[0] for v in variables] if self.momentum else None
        capture = graphs.capture_in_progress()
        if capture is not None:
            _guard_settings(capture, self, variables)
            capture.every_replay(lambda: [v._bump_version() for v in variables])
        ops.sgd_update_multi([v._value for v in variables], [_contiguous(g) for _, g in pairs],
                             velocities, lr=self.lr, momentum=self.momentum,
                             nesterov=self.nesterov,
                             weight_decays=[v.weight_decay or 0.0 for v in variables])
        for variable in variables:
            variable._bump_version()


class Adam(Optimizer):
    """Adam with bias correction; ReNom's argument names: b = beta1, g = beta2.

    lr >= 0; b and g in [0, 1) (1 would make the bias correction divide by zero); epsilon > 0
    (with 0, a parameter whose gradient is 0 gets 0/0 = NaN). All finite numbers."""

    def __init__(self, lr=0.001, g=0.999, b=0.9, epsilon=1e-8):
        super().__init__()
        self.lr = in_range(lr, "lr", 0.0, None)
        self.g = in_range(g, "g", 0.0, 1.0)
        self.b = in_range(b, "b", 0.0, 1.0)
        self.epsilon = in_range(epsilon, "epsilon", 0.0, None, low_open=True)
        self._steps = weakref.WeakKeyDictionary()

    def slot_names(self) -> tuple:
        return ("m", "v")

    def state_names(self) -> tuple:
        return ("m", "v", "step")

    def hyperparameters(self) -> dict:
        return {"lr": self.lr, "g": self.g, "b": self.b, "epsilon": self.epsilon}

    def get_state(self, variable) -> dict | None:
        state = super().get_state(variable)
        if state is not None:
            state["step"] = np.array(self._steps.get(variable, 0), dtype=np.int64)
        return state

    def set_state(self, variable, state: dict | None) -> None:
        super().set_state(variable, state)
        self._steps.pop(variable, None)
        if state is not None:
            self._steps[variable] = int(state["step"])

    def step(self, variable, grad) -> None:
        _check_variable(variable)
        if graphs.capture_in_progress() is not None:
            raise RuntimeError("Adam.step cannot be captured in a CUDA graph (its bias correction "
                               "is a per-step host value); Adam.step_many can")
        m, v = self._slots(variable, 2)
        t = self._steps.get(variable, 0) + 1
        self._steps[variable] = t
        ops.adam_update(variable._value, _contiguous(grad), m, v, t, lr=self.lr,
                        beta1=self.b, beta2=self.g, eps=self.epsilon,
                        weight_decay=variable.weight_decay or 0.0)
        variable._bump_version()

    def step_many(self, pairs) -> None:
        pairs = _pairs(pairs)
        variables = [v for v, _ in pairs]
        if type(self).step is not Adam.step or not _one_call(variables):
            return super().step_many(pairs)
        slots = [self._slots(v, 2) for v in variables]
        steps = [self._steps.get(v, 0) + 1 for v in variables]
        corrections = None
        capture = graphs.capture_in_progress()
        if capture is not None:
            _guard_settings(capture, self, variables)
            corrections = self._replayed_corrections(capture, variables)
        ops.adam_update_multi([v._value for v in variables], [_contiguous(g) for _, g in pairs],
                              [s[0] for s in slots], [s[1] for s in slots], steps, lr=self.lr,
                              beta1=self.b, beta2=self.g, eps=self.epsilon,
                              weight_decays=[v.weight_decay or 0.0 for v in variables],
                              corrections=corrections)
        if capture is not None:
            return  # each replay counts its own step
        # Counted once the update is done: a refused call leaves the steps as they were.
        for variable, t in zip(variables, steps):
            self._steps[variable] = t
            variable._bump_version()

    def _replayed_corrections(self, capture, variables):
        """Device rows of bias corrections that a captured update reads: before each replay the
        step counts advance and the rows are filled exactly as an eager step_many forms them."""
        device_rows, host_rows = capture.adam_corrections(len(variables))

        def advance():
            steps = [self._steps.get(v, 0) + 1 for v in variables]
            host_rows[:] = ops.adam_bias_corrections(steps, self.b, self.g)
            for variable, t in zip(variables, steps):
                self._steps[variable] = t
                variable._bump_version()

        capture.every_replay(advance)
        return device_rows


def _guard_settings(capture, optimizer, variables) -> None:
    """A captured update holds the hyperparameters as constants and the arrays by address: if
    any changes (a new lr, a state loaded from a checkpoint), the step must be captured again.
    The arrays themselves are kept, so memory a graph writes is never handed to anyone else."""
    def read():
        return (optimizer.hyperparameters(), [v.weight_decay for v in variables],
                [v._value for v in variables],
                [tuple(optimizer._state.get(v) or ()) for v in variables])

    capture.guard(read)
