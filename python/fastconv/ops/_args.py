"""Argument plumbing shared by every op: size pairs and the choice of backend."""
from __future__ import annotations

import operator
from types import ModuleType

import numpy as np

from .._native import C, CUDA


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def pair(value, name: str) -> tuple[int, int]:
    """An int or an (h, w) pair of ints, as a tuple of ints that fit in int64 (what the C++ side
    takes). Whether each is positive or large enough is checked there, with the geometry."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise TypeError(f"{name} must be an int or a pair of ints; got {_described(value)}")
    try:
        v = operator.index(value)
        return _in_int64((v, v), name, v)
    except TypeError:
        pass
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an int or a pair of ints; got {_described(value)}"
        ) from None
    if len(items) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints (h, w); got {value!r}")
    if any(isinstance(i, (bool, np.bool_)) for i in items):
        raise TypeError(f"{name} must hold ints, not bools; got {value!r}")
    try:
        ints = (operator.index(items[0]), operator.index(items[1]))
    except TypeError:
        raise TypeError(f"{name} must hold ints; got {value!r}") from None
    return _in_int64(ints, name, ints)


def _in_int64(ints: tuple[int, int], name: str, shown) -> tuple[int, int]:
    if all(_INT64_MIN <= i <= _INT64_MAX for i in ints):
        return ints
    raise ValueError(f"{name} must hold int64 values, in [{_INT64_MIN}, {_INT64_MAX}]; "
                     f"got {shown}")


def _described(value) -> str:
    """What a malformed argument was: its type, and its value where that is short."""
    text = repr(value)
    return type(value).__name__ + (f" {text}" if len(text) <= 40 else "")


def backend(x, name: str = "x") -> ModuleType:
    """The kernel module for where `x` lives: numpy arrays run on the CPU (`_C`), DeviceArrays
    on the GPU (`_cuda`, whose kernels have the same names and signatures)."""
    if isinstance(x, np.ndarray):
        return C
    # A DeviceArray exists only where _cuda loaded, so CUDA is not None whenever this matches.
    if CUDA is not None and isinstance(x, CUDA.DeviceArray):
        return CUDA
    got = "None" if x is None else type(x).__name__
    raise TypeError(f"{name} must be a numpy array or a fastconv DeviceArray; got {got}")


def contiguous_ints(a):
    """A 1-D integer numpy array made C-contiguous (index and label vectors are often strided
    views, such as a slice of a permutation); anything else as it is, for the binding to check."""
    if isinstance(a, np.ndarray) and a.ndim == 1 and a.dtype.kind in "iu":
        return np.ascontiguousarray(a)
    return a


def flag(value, name: str) -> bool:
    """A bool argument: True/False or a numpy bool. Anything else is refused rather than judged
    by its truth value (need_dx='no' is a bug, not a yes)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be a bool; got {type(value).__name__} {value!r}")
