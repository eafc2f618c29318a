"""Argument checks for the user-facing Python layer (functional, autograd, layers, optimisers).

Every message follows the package's convention, "<name> must be <expected>; got <received>", so
that a malformed call says which argument, what it held and what would have been accepted.
"""
from __future__ import annotations

import math
import numbers
import operator

import numpy as np

from .ops import pair

# dtype kinds that hold real numbers: float, signed and unsigned int, bool.
_REAL_KINDS = "fiub"
REAL_ARRAY = "an array of real numbers (float, int or bool)"


def describe(value) -> str:
    """What a caller passed, for the 'got ...' half of a message: the value for a scalar, the
    dtype and shape for an array, the type for anything else (its repr may be long or hold an
    address)."""
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    if isinstance(value, np.generic):
        return f"a numpy {value.dtype} scalar {value.item()!r}"
    if isinstance(value, (bool, int, float, complex)):
        return f"{type(value).__name__} {value!r}"
    if isinstance(value, (str, bytes)):
        more = "..." if len(value) > 20 else ""
        return f"{type(value).__name__} {value[:20]!r}{more}"
    return type(value).__name__


def real_array(value, name: str) -> np.ndarray:
    """`value` as a numpy array of real numbers (no copy when it already is one), or TypeError.

    Lists, tuples and scalars are read by numpy. Refused: None, and anything numpy reads as
    object, complex, string, bytes, void or datetime data, where a cast would lose information
    or turn it into NaN. The dtype is not changed here: callers decide what int and bool become.
    """
    if isinstance(value, np.ndarray):
        array = value
    elif value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be {REAL_ARRAY}; got {describe(value)}")
    else:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError):
            # numpy refuses ragged nesting ("inhomogeneous shape") and some odd objects.
            raise TypeError(f"{name} must be {REAL_ARRAY}; got a {type(value).__name__} that "
                            "numpy cannot read as one array (ragged or mixed nesting)") from None
    if array.dtype.kind not in _REAL_KINDS:
        got = describe(value)
        if isinstance(value, (list, tuple)):
            got = f"a {type(value).__name__} that numpy reads as dtype {array.dtype}"
        raise TypeError(f"{name} must be {REAL_ARRAY}; got {got}")
    return array


def positive_int(value, name: str) -> int:
    """An int >= 1 (Python or numpy int; bools and floats such as 2.7 or 3.0 are refused)."""
    n = integer(value, name, "an int >= 1")
    if n < 1:
        raise ValueError(f"{name} must be an int >= 1; got {n}")
    return n


def integer(value, name: str, expected: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be {expected}; got {describe(value)}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be {expected}; got {describe(value)}") from None


def real(value, name: str, expected: str) -> float:
    """A finite real number (int or float, Python or numpy; not bool) as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {expected}; got {describe(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be {expected}; got {_number(value)}")
    return number


def _number(value) -> str:
    """A number as the caller wrote it: -1 stays -1, np.float32(0.5) shows as 0.5."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def in_range(value, name: str, low: float, high: float | None = None, *,
             low_open: bool = False, high_open: bool = True) -> float:
    """A finite real in [low, high) by default; `low_open` excludes low, `high=None` means no
    upper bound. The message states the interval."""
    left = "(" if low_open else "["
    if high is None:
        expected = f"a number > {low:g}" if low_open else f"a number >= {low:g}"
    else:
        expected = f"a number in {left}{low:g}, {high:g}{')' if high_open else ']'}"
    number = real(value, name, expected)
    too_low = number <= low if low_open else number < low
    too_high = high is not None and (number >= high if high_open else number > high)
    if too_low or too_high:
        raise ValueError(f"{name} must be {expected}; got {_number(value)}")
    return number


def size_pair(value, name: str, minimum: int) -> tuple[int, int]:
    """An int or (h, w) pair (read by ops.pair, which checks the types), each >= minimum."""
    h, w = pair(value, name)
    if h < minimum or w < minimum:
        raise ValueError(f"{name} must be >= {minimum} in both dimensions; got {(h, w)}")
    return h, w


def flag(value, name: str) -> bool:
    """True/False or a numpy bool; 0/1 and strings are refused rather than judged by truth."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be a bool; got {describe(value)}")


def compute_dtype(dtype) -> np.dtype:
    """The float type the kernels run real data in: float32 and float64 as they are, long double
    as float64, any other real (float16, ints, bools) as float32, as numpy would cast them."""
    dtype = np.dtype(dtype)
    if dtype == np.float32 or dtype == np.float64:
        return dtype
    if dtype.kind == "f" and dtype.itemsize >= 8:  # long double (the same as double on some)
        return np.dtype(np.float64)
    return np.dtype(np.float32)
