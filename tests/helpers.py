"""Shared test tools: tolerance-aware comparison, finite differences, random data, and the same
call on the CPU and the GPU for the tests/test_X_cuda.py files."""
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


def assert_same_bits_twice_and_on_one_thread(run):
    """run() returns the bytes of a kernel's outputs: a second run, and a run on one thread, must
    give the same bytes (results never depend on the thread count). The suite runs on two."""
    import fastconv as fc

    first = run()
    assert run() == first
    try:
        fc.set_num_threads(1)
        single = run()
    finally:
        fc.set_num_threads(2)
    assert single == first


def train_tutorial_cnn(x, t, steps, seed):
    """(model, optimizer, losses) of `steps` SGD steps of the tutorial CNN on one batch, its
    initial weights and dropout seeds drawn after np.random.seed(seed): two runs with one seed
    start from the same weights, wherever they run."""
    import fastconv as fc
    from fastconv import train

    np.random.seed(seed)
    model, opt = train.tutorial_cnn(), fc.Sgd(lr=0.01, momentum=0.9)
    losses = []
    for _ in range(steps):
        with model.train():
            loss = fc.softmax_cross_entropy(model(x), t)
        loss.grad().update(opt)
        losses.append(float(loss))
    return model, opt, losses


def raises_exactly(exc, message: str):
    """pytest.raises that checks the whole message, not a fragment: a malformed call must say
    which argument, what it got and what was expected, and a truncated message must fail."""
    import re

    import pytest

    return pytest.raises(exc, match="^" + re.escape(message) + "$")


# ---- the CUDA op tests (tests/test_X_cuda.py): one call on both backends -------------------------

def dev(a):
    """A numpy array's copy on the GPU."""
    from fastconv.device import to_device

    return to_device(np.ascontiguousarray(a))


def host(a):
    """A device array's copy on the host (None stays None: an output not asked for)."""
    from fastconv.device import to_host

    return None if a is None else np.asarray(to_host(a))


def _to_dev(v):
    return dev(v) if isinstance(v, np.ndarray) else v


def both(name, *args, cpu_dtype=np.float64):
    """(CPU result in cpu_dtype, GPU result on the host) of the same call. Float arrays are first
    rounded to float32, so both backends see the same inputs (at large logits the rounding alone
    would move a softmax by more than the tolerance); the CPU then computes in cpu_dtype."""
    from fastconv._native import C, CUDA

    def is_float(a):
        return isinstance(a, np.ndarray) and a.dtype.kind == "f"

    cpu_args = [a.astype(np.float32).astype(cpu_dtype) if is_float(a) else a for a in args]
    gpu_args = [_to_dev(a.astype(np.float32)) if is_float(a) else _to_dev(a) for a in args]
    cpu = getattr(C, name)(*cpu_args)
    gpu = getattr(CUDA, name)(*gpu_args)
    if isinstance(cpu, tuple):
        return cpu, tuple(host(g) for g in gpu)
    return cpu, host(gpu)


def pairs(v):
    """An int or pair argument (filter, stride, padding, dilation) as the bindings' pair."""
    return (v, v) if isinstance(v, int) else tuple(v)


def rand32(rng, *shape):
    """float64 values that float32 holds exactly: the same inputs for both backends."""
    return rand(rng, *shape).astype(np.float32).astype(np.float64)


def overlap(a, b, common, size=48):
    """The optimizers' message for state array `a` sharing `common` of its `size` bytes with `b`."""
    return (f"{a} must not share memory with {b} (an in-place update would read what it has "
            f"just written); got {common} of its {size} bytes in common")


def cuda_emulated() -> bool:
    """True where the CUDA module is the CPU emulator's build (.ci/cuda-emulator): it runs the
    kernels thousands of times slower than a GPU, so the longest loops run shorter there."""
    import fastconv as fc

    return fc.build_info()["cuda"]["archs"] == ["emulator"]
