"""Moving arrays between the host (numpy) and the GPU (fastconv._cuda.DeviceArray).

A DeviceArray is C-contiguous float32, float64 or int64 memory on the GPU; `fastconv.ops` runs
the CUDA kernels on it and the CPU kernels on numpy arrays. It also speaks
`__cuda_array_interface__` and DLPack, so `torch.from_dlpack(x)` or `cupy.asarray(x)` view it
without a copy, and `fastconv._cuda.from_dlpack(t)` views a torch CUDA tensor.

Indexing a DeviceArray works along its first axis only: `x[i]` (one row, (ndim-1)-D) and `x[a:b]`
(rows a to b, step 1) are views of the same memory, not copies, and keep it alive; `len(x)` is its
first dimension. Other steps, tuples and index arrays are refused (they would need a copy).

The GPU ops return without waiting for the device, and so do their checks of the data only a
kernel can see (a label outside [0, C), a bad target weight, a gather index out of range): such an
error is raised as the same ValueError the CPU gives, at the next point where the host waits for
the device anyway: a copy to the host (`to_host`, `float(loss)`) or `synchronize()`.
"""
from __future__ import annotations

import numpy as np

from . import _native
from ._runtime import cuda_available, cuda_status

__all__ = ["to_device", "to_host", "is_device_array", "zeros_like", "synchronize"]


def is_device_array(x) -> bool:
    """True for a fastconv DeviceArray (always False where the CUDA module is not loaded)."""
    return _native.CUDA is not None and isinstance(x, _native.CUDA.DeviceArray)


def to_device(array):
    """A DeviceArray holding a copy of `array` (numpy or anything np.asarray takes).

    A DeviceArray is returned as it is. Non-contiguous input is made contiguous first; the dtype
    must be float32, float64 or int64. Raises RuntimeError, with the reason, where no GPU is usable.
    """
    if is_device_array(array):
        return array
    if not cuda_available():
        raise RuntimeError(f"to_device needs a usable CUDA GPU: {cuda_status()}")
    # np.asarray(order="C"), unlike np.ascontiguousarray, keeps 0-d arrays 0-d.
    return _native.CUDA.from_numpy(np.asarray(array, order="C"))


def to_host(x) -> np.ndarray:
    """A numpy array: a DeviceArray is copied to the host, a numpy array is returned as it is."""
    if isinstance(x, np.ndarray):
        return x
    if is_device_array(x):
        return x.to_numpy()
    raise TypeError(f"x must be a numpy array or a DeviceArray; got {type(x).__name__}")


def zeros_like(x):
    """Zeros of x's shape and dtype, where x lives (optimiser state)."""
    if is_device_array(x):
        return _native.CUDA.zeros(tuple(x.shape), np.dtype(x.dtype).name)
    return np.zeros_like(x)


def synchronize() -> None:
    """Wait for the GPU work fastconv queued, then raise the first data error its kernels found
    since the last check as a ValueError (see above). Does nothing where no GPU is usable."""
    if cuda_available():
        _native.CUDA.synchronize()
