"""NCCL through ctypes: loaded at run time from the nvidia-nccl-cu13 wheel (as fastconv loads
cuBLAS from its wheel), else from the system's libnccl.so.2.

The communicator is bootstrapped over MPI: rank 0 makes the ncclUniqueId and broadcasts its 128
bytes. The all-reduce averages in place (ncclAvg) on fastconv's stream, so it is ordered after
the backward pass that wrote the gradients and before the optimiser step that reads them.
"""
from __future__ import annotations

import ctypes
import os

import numpy as np

NCCL_INSTALL_HINT = 'pip install "fastconv[nccl]" (the nvidia-nccl-cu13 wheel)'
_SONAME = "libnccl.so.2"
_DTYPES = {"float32": 7, "float64": 8}  # ncclFloat32, ncclFloat64
_NCCL_AVG = 4


class _UniqueId(ctypes.Structure):
    _fields_ = [("internal", ctypes.c_char * 128)]


def _candidates() -> list:
    paths = []
    try:
        import nvidia  # namespace package of the nvidia-* wheels

        paths = [os.path.join(root, "nccl", "lib", _SONAME) for root in nvidia.__path__]
    except ImportError:
        pass
    return [p for p in paths if os.path.exists(p)] + [_SONAME]


def load():
    """The loaded libnccl, or RuntimeError saying what was tried and what to install."""
    errors = []
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            errors.append(str(e))
            continue
        lib.ncclGetErrorString.restype = ctypes.c_char_p
        return lib
    raise RuntimeError(f"NCCL cannot be loaded ({'; '.join(errors)}); {NCCL_INSTALL_HINT}")


def _check(lib, code: int, what: str) -> None:
    if code != 0:
        raise RuntimeError(f"NCCL: {what} failed: {lib.ncclGetErrorString(code).decode()}")


class NcclComm:
    """One NCCL communicator over the ranks of an MPI communicator, one GPU per rank."""

    def __init__(self, mpi_comm, lib=None):
        self.lib = lib or load()
        self.rank, self.size = mpi_comm.Get_rank(), mpi_comm.Get_size()
        uid = _UniqueId()
        if self.rank == 0:
            _check(self.lib, self.lib.ncclGetUniqueId(ctypes.byref(uid)), "ncclGetUniqueId")
        raw = np.frombuffer(bytearray(bytes(uid)), dtype=np.uint8).copy()
        mpi_comm.Bcast(raw, root=0)
        uid = _UniqueId.from_buffer_copy(raw.tobytes())
        self.handle = ctypes.c_void_p()
        _check(self.lib, self.lib.ncclCommInitRank(ctypes.byref(self.handle), self.size, uid,
                                                   self.rank), "ncclCommInitRank")

    def allreduce_mean(self, buffer, stream: int) -> None:
        """Average a DeviceArray over the ranks, in place, queued on `stream`."""
        dtype = _DTYPES[np.dtype(buffer.dtype).name]
        ptr = ctypes.c_void_p(buffer.ptr)
        _check(self.lib, self.lib.ncclAllReduce(ptr, ptr, ctypes.c_size_t(buffer.size), dtype,
                                                _NCCL_AVG, self.handle, ctypes.c_void_p(stream)),
               "ncclAllReduce")

    def close(self) -> None:
        if self.handle:
            self.lib.ncclCommDestroy(self.handle)
            self.handle = ctypes.c_void_p()
