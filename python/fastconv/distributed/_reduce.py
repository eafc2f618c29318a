"""allreduce_gradients' engine: pack the step's gradients into the flat buffers, average them over
the ranks with one collective per dtype, and hand back views of the result.

Backends: `mpi` reduces host memory (device gradients are staged through page-locked host
buffers: the CUDA-awareness of an MPI is not relied on); `nccl` reduces device memory on
fastconv's stream. `auto` takes NCCL for device gradients when every rank can load it, MPI
otherwise. The choice is made on the first step, by all ranks together, so they never disagree.
"""
from __future__ import annotations

import time

import numpy as np

from .. import _native
from ._flat import FlatBuffers, layout_of
from ._models import agree_on_layout

BACKENDS = ("auto", "mpi", "nccl")


def check_backend(backend) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    return backend


class GradientReducer:
    """Averages gradient sets of one fixed layout over the ranks of `world`."""

    def __init__(self, world, backend: str = "auto"):
        self.world = world
        self.requested = check_backend(backend)
        self.backend = None     # "mpi" or "nccl" once the first gradients have been seen
        self.flat = None
        self.seconds = 0.0      # time spent reducing (packing included), for the benchmark
        self.steps = 0
        self._nccl = None
        self._staging = {}

    def __call__(self, arrays: list) -> list:
        """The averaged gradients, as views of the flat buffers, in the order given."""
        start = time.perf_counter()
        layout = layout_of(arrays)
        if self.flat is None or self.flat.layout != layout:
            self._prepare(layout)
        stream = _native.CUDA.stream_handle() if self.flat.on_device else 0
        self.flat.pack(arrays, stream)
        # One process on the CPU has nothing to do; on the GPU the path runs even so (a
        # single-rank job tests it).
        if self.world.size > 1 or self.flat.on_device:
            for dtype, buffer in self.flat.buffers.items():
                self._reduce(dtype, buffer, stream)
        self.seconds += time.perf_counter() - start
        self.steps += 1
        return self.flat.views

    def _prepare(self, layout: tuple) -> None:
        # Made once per layout (the first step): the ranks check that their gradients line up,
        # so a mismatch is an error naming it rather than a collective of the wrong size.
        agree_on_layout(self.world.comm, layout)
        self.flat = FlatBuffers(layout)
        self.backend = self._choose(self.flat.on_device)
        if self.backend == "mpi" and self.flat.on_device:
            from . import _cudadrv

            self._staging = {dtype: _cudadrv.pinned_empty(b.size, dtype)
                             for dtype, b in self.flat.buffers.items()}

    def _choose(self, on_device: bool) -> str:
        if not on_device:
            if self.requested == "nccl":
                raise ValueError("backend 'nccl' reduces GPU arrays; got numpy gradients "
                                 "(train on the GPU, or use backend 'mpi' or 'auto')")
            return "mpi"
        if self.requested == "mpi":
            return "mpi"
        from . import _nccl

        try:
            lib, reason = _nccl.load(), ""
        except RuntimeError as e:
            lib, reason = None, str(e)
        ranks_without = [r for r, why in enumerate(self.world.comm.allgather(reason)) if why]
        if ranks_without:
            if self.requested == "nccl":
                first = ranks_without[0]
                raise RuntimeError(f"backend 'nccl': rank {first}: "
                                   f"{self.world.comm.allgather(reason)[first]}")
            return "mpi"
        self._nccl = _nccl.NcclComm(self.world.comm, lib)
        return "nccl"

    def _reduce(self, dtype: str, buffer, stream: int) -> None:
        if self.backend == "nccl":
            self._nccl.allreduce_mean(buffer, stream)
            return
        host = self._staging.get(dtype)
        if host is not None:
            from . import _cudadrv

            _cudadrv.copy_device(host.ctypes.data, buffer.ptr, host.nbytes, stream)
            _cudadrv.synchronize(stream)
        target = buffer if host is None else host
        if self.world.size > 1:
            from ._world import import_mpi

            MPI = import_mpi()
            self.world.comm.Allreduce(MPI.IN_PLACE, target, op=MPI.SUM)
            np.divide(target, self.world.size, out=target)
        if host is not None:
            _cudadrv.copy_device(buffer.ptr, host.ctypes.data, host.nbytes, stream)
