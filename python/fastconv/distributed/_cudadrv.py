"""The few CUDA driver calls the collectives need, through ctypes on libcuda.so.1: copies queued
on fastconv's stream, waiting for that stream, and page-locked host memory for MPI's staging.

The driver library comes with the NVIDIA driver, so nothing is installed for it; fastconv's own
CUDA module does not export raw copies, and these act on its memory through the pointers its
DeviceArrays expose (`.ptr`), on the context the CUDA runtime made current.
"""
from __future__ import annotations

import ctypes

import numpy as np

_lib = None


def _driver():
    global _lib
    if _lib is None:
        lib = ctypes.CDLL("libcuda.so.1")
        pointer = ctypes.POINTER(ctypes.c_void_p)
        for name, args in (("cuMemcpyAsync", [ctypes.c_uint64] * 3 + [ctypes.c_void_p]),
                           ("cuStreamSynchronize", [ctypes.c_void_p]),
                           ("cuMemAllocHost_v2", [pointer, ctypes.c_size_t]),
                           ("cuGetErrorString", [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)])):
            getattr(lib, name).argtypes = args
            getattr(lib, name).restype = ctypes.c_int
        _lib = lib
    return _lib


def _check(code: int, what: str) -> None:
    if code != 0:
        text = ctypes.c_char_p()
        _driver().cuGetErrorString(code, ctypes.byref(text))
        reason = text.value.decode() if text.value else f"error {code}"
        raise RuntimeError(f"CUDA driver: {what} failed: {reason}")


def copy_device(dst: int, src: int, nbytes: int, stream: int) -> None:
    """Queue a copy of nbytes between any two addresses (unified addressing: device or
    page-locked host) on `stream`."""
    _check(_driver().cuMemcpyAsync(dst, src, nbytes, stream), "cuMemcpyAsync")


def synchronize(stream: int) -> None:
    _check(_driver().cuStreamSynchronize(stream), "cuStreamSynchronize")


def pinned_empty(count: int, dtype: str) -> np.ndarray:
    """A numpy array in page-locked host memory (kept for the life of the process: one per
    gradient dtype, made once)."""
    nbytes = max(int(count) * np.dtype(dtype).itemsize, 1)
    address = ctypes.c_void_p()
    _check(_driver().cuMemAllocHost_v2(ctypes.byref(address), nbytes), "cuMemAllocHost")
    raw = (ctypes.c_byte * nbytes).from_address(address.value)
    return np.frombuffer(raw, dtype=dtype, count=int(count))
