"""Optimisers with ReNom's names and defaults. State (velocity, moments) lives per parameter and
the update runs in place through the fused kernels of `fastconv.ops`."""
from __future__ import annotations

import weakref

import numpy as np

from . import ops
from .device import is_device_array, zeros_like

__all__ = ["Sgd", "Adam"]


def _check_lr(lr) -> float:
    lr = float(lr)
    if not np.isfinite(lr) or lr < 0:
        raise ValueError(f"lr must be a finite number >= 0; got {lr}")
    return lr


def _contiguous(grad):
    return grad if is_device_array(grad) else np.ascontiguousarray(grad)


class Optimizer:
    def __init__(self):
        self._state = weakref.WeakKeyDictionary()

    def _slots(self, variable, count):
        state = self._state.get(variable)
        if state is None:
            state = self._state[variable] = [zeros_like(variable._value) for _ in range(count)]
        return state

    def step(self, variable, grad) -> None:
        raise TypeError(f"{type(self).__name__} must define step(variable, grad)")


class Sgd(Optimizer):
    """p -= lr * step with step = g (+ momentum: v = m v + g; step = v, or g + m v for Nesterov).
    g includes the variable's own weight decay (wd * p) when it has one."""

    def __init__(self, lr=0.1, momentum=0.4, nesterov=True):
        super().__init__()
        self.lr = _check_lr(lr)
        self.momentum = float(momentum)
        if self.momentum < 0:
            raise ValueError(f"momentum must be >= 0; got {momentum}")
        self.nesterov = bool(nesterov) and self.momentum > 0

    def step(self, variable, grad) -> None:
        velocity = self._slots(variable, 1)[0] if self.momentum else None
        ops.sgd_update(variable._value, _contiguous(grad), velocity, lr=self.lr,
                       momentum=self.momentum, nesterov=self.nesterov,
                       weight_decay=variable.weight_decay or 0.0)


class Adam(Optimizer):
    """Adam with bias correction; ReNom's argument names: b = beta1, g = beta2."""

    def __init__(self, lr=0.001, g=0.999, b=0.9, epsilon=1e-8):
        super().__init__()
        self.lr = _check_lr(lr)
        self.g, self.b, self.epsilon = float(g), float(b), float(epsilon)
        self._steps = weakref.WeakKeyDictionary()

    def step(self, variable, grad) -> None:
        m, v = self._slots(variable, 2)
        t = self._steps.get(variable, 0) + 1
        self._steps[variable] = t
        ops.adam_update(variable._value, _contiguous(grad), m, v, t, lr=self.lr,
                        beta1=self.b, beta2=self.g, eps=self.epsilon,
                        weight_decay=variable.weight_decay or 0.0)
