"""Weight initialisers (ReNom's names). Fans follow the usual convention: a conv kernel
(K, C, kh, kw) has fan_in C*kh*kw and fan_out K*kh*kw; a dense weight (In, Out) has In and Out."""
from __future__ import annotations

import numpy as np

from ._validate import in_range, real

__all__ = ["GlorotNormal", "GlorotUniform", "HeNormal", "Gaussian"]


def _fans(shape: tuple) -> tuple[int, int]:
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[2:]))
    return shape[1] * receptive, shape[0] * receptive


class GlorotNormal:
    """N(0, 2 / (fan_in + fan_out)): keeps activations' variance steady through the layers."""

    def __init__(self, gain: float = 1.0):
        self.gain = real(gain, "gain", "a finite number")

    def __call__(self, shape, dtype=np.float32, rng=None):
        fan_in, fan_out = _fans(tuple(shape))
        std = self.gain * np.sqrt(2.0 / (fan_in + fan_out))
        return _normal(rng, shape, std, dtype)


class GlorotUniform(GlorotNormal):
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)): Glorot's variance, uniformly."""

    def __call__(self, shape, dtype=np.float32, rng=None):
        fan_in, fan_out = _fans(tuple(shape))
        limit = self.gain * np.sqrt(6.0 / (fan_in + fan_out))
        rng = rng or np.random
        return rng.uniform(-limit, limit, size=shape).astype(dtype)


class HeNormal:
    """N(0, 2 / fan_in): the variance that ReLU halves is restored."""

    def __call__(self, shape, dtype=np.float32, rng=None):
        fan_in, _ = _fans(tuple(shape))
        return _normal(rng, shape, np.sqrt(2.0 / fan_in), dtype)


class Gaussian:
    """N(mean, std**2) whatever the shape (ReNom's default std 0.1)."""

    def __init__(self, mean: float = 0.0, std: float = 0.1):
        self.mean = real(mean, "mean", "a finite number")
        self.std = in_range(std, "std", 0.0, None)

    def __call__(self, shape, dtype=np.float32, rng=None):
        return (_normal(rng, shape, self.std, np.float64) + self.mean).astype(dtype)


def _normal(rng, shape, std, dtype):
    # The global numpy RNG by default, as in ReNom: np.random.seed(...) makes models repeatable.
    draw = (rng or np.random).standard_normal(size=tuple(shape))
    return (draw * std).astype(dtype)
