"""Shared test tools: tolerance-aware comparison, finite differences, random data."""
from __future__ import annotations

import numpy as np

DTYPES = (np.float32, np.float64)


def assert_close(actual, expected, *, reduction: int = 1, factor: float = 16.0):
    """Compare a kernel's output with a reference computed in float64.

    The tolerance follows the rounding error of a sum of `reduction` products: unit roundoff of
    the output's dtype times sqrt(reduction), relative to the reference's largest magnitude (so
    cancellation near zero does not demand impossible relative accuracy).
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    u = np.finfo(actual.dtype).eps if actual.dtype.kind == "f" else 0.0
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    tol = factor * u * max(1.0, np.sqrt(reduction))
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=tol,
                               atol=tol * max(scale, 1e-30))


def numerical_grad(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f() with respect to x (float64, perturbed in place)."""
    assert x.dtype == np.float64
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        hi = f()
        flat[i] = old - eps
        lo = f()
        flat[i] = old
        gflat[i] = (hi - lo) / (2 * eps)
    return g


def rand(rng: np.random.Generator, *shape, dtype=np.float64) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


def assert_grad(analytic, numeric, rtol: float = 1e-5):
    """Analytic float64 gradient against central differences (error ~ eps^2 + roundoff/eps)."""
    scale = max(float(np.abs(numeric).max()), 1e-12)
    np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=rtol * scale)


def raises_exactly(exc, message: str):
    """pytest.raises that checks the whole message, not a fragment: a malformed call must say
    which argument, what it got and what was expected, and a truncated message must fail."""
    import re

    import pytest

    return pytest.raises(exc, match="^" + re.escape(message) + "$")
