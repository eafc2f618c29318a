"""Argument plumbing shared by every op: size pairs and the choice of backend."""
from __future__ import annotations

import operator
from types import ModuleType

import numpy as np

from .._native import C


def pair(value, name: str) -> tuple[int, int]:
    """An int or an (h, w) pair of ints, as a tuple. Ranges are checked by the C++ side."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    try:
        v = operator.index(value)
        return (v, v)
    except TypeError:
        pass
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an int or a pair of ints, got {type(value).__name__}"
        ) from None
    if len(items) != 2 or any(isinstance(i, (bool, np.bool_)) for i in items):
        raise ValueError(f"{name} must be an int or a pair of ints (h, w), got {value!r}")
    try:
        return (operator.index(items[0]), operator.index(items[1]))
    except TypeError:
        raise TypeError(f"{name} must hold ints, got {value!r}") from None


def backend(x, name: str = "x") -> ModuleType:
    """The kernel module for where `x` lives. Numpy arrays run on the CPU."""
    if isinstance(x, np.ndarray):
        return C
    if x is None:
        raise TypeError(f"{name} must be a numpy array, got None")
    raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
