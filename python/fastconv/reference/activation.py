"""Reference relu and dropout.

The dropout mask replays fastconv/rng.h in numpy uint64 arithmetic (which wraps modulo 2**64 like
C's unsigned integers), so tests can check the kernels' masks bit for bit.
"""
import numpy as np

__all__ = ["relu_forward", "relu_backward", "dropout_forward", "dropout_backward", "dropout_mask"]


def relu_forward(x):
    """y = max(x, 0) elementwise, any shape; -0.0 and NaN pass through as x has them."""
    return np.where(x < 0, np.zeros_like(x), x)


def relu_backward(dy, y):
    """dx = dy where the forward output y > 0, else 0 (dy and y of the same shape)."""
    return np.where(y > 0, dy, np.zeros_like(dy))


GOLDEN = np.uint64(0x9E3779B97F4A7C15)
SEED_SALT = np.uint64(0xD1B54A32D192ED03)


def mix64(z):
    """The splitmix64 finaliser on uint64 scalars or arrays."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):  # wrap-around modulo 2**64 is the point, as in C
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def uniform(seed, count):
    """uniform(seed, i) for i in range(count): the top 24 bits of the hash, scaled to [0, 1)."""
    key = mix64(np.uint64(seed) ^ SEED_SALT)
    i = np.arange(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        state = key + i * GOLDEN  # splitmix64's Weyl sequence, started at the hashed seed
    h = mix64(mix64(state) ^ key)
    return (h >> np.uint64(40)).astype(np.float64) / 2.0**24


def dropout_mask(shape, ratio, seed, dtype=np.float32):
    """The kernels' dropout mask of `shape`: 1 / (1 - ratio) where kept, 0 where dropped,
    element i kept when uniform(seed, i) >= ratio (i in C order)."""
    shape = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    keep = uniform(seed, int(np.prod(shape, dtype=np.int64))).reshape(shape) >= ratio
    scale = np.asarray(1.0 / (1.0 - ratio)).astype(dtype)
    return np.where(keep, scale, np.zeros((), dtype))


def dropout_forward(x, ratio, seed):
    """x times dropout_mask(x.shape, ratio, seed), in x's dtype (any layout, C order)."""
    keep = dropout_mask(x.shape, ratio, seed, np.float64) != 0
    return np.where(keep, x * x.dtype.type(1.0 / (1.0 - ratio)), np.zeros_like(x))


def dropout_backward(dy, ratio, seed):
    """dx = dy times the same mask as the forward pass (same ratio and seed)."""
    return dropout_forward(dy, ratio, seed)
