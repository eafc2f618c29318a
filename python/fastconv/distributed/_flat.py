"""The gradients of one step packed into one flat, preallocated buffer per dtype.

Packing copies each gradient into its segment; the averaged gradients are then views of those
segments (no copy back). The buffers and the views are made once, for the first step's layout, so
a step allocates nothing: a collective per dtype (one for a float32 model) reads and writes them
in place.
"""
from __future__ import annotations

import numpy as np

from .. import _native
from ..device import is_device_array


def layout_of(arrays) -> tuple:
    """(dtype name, shape, on device) per gradient: what a FlatBuffers must match."""
    return tuple((np.dtype(a.dtype).name, tuple(a.shape), is_device_array(a)) for a in arrays)


class FlatBuffers:
    """One flat buffer per dtype for gradients of a fixed layout (order, shapes, dtypes)."""

    def __init__(self, layout: tuple):
        self.layout = layout
        self.on_device = bool(layout) and layout[0][2]
        if any(device != self.on_device for _, _, device in layout):
            raise ValueError("grads must all be numpy arrays or all DeviceArrays; got a mix")
        totals: dict[str, int] = {}
        places = []  # (dtype, offset, count) per gradient
        for dtype, shape, _ in layout:
            count = int(np.prod(shape, dtype=np.int64))
            places.append((dtype, totals.get(dtype, 0), count))
            totals[dtype] = totals.get(dtype, 0) + count
        self.buffers = {dtype: self._allocate(dtype, total) for dtype, total in totals.items()}
        self.views = [self._view(self.buffers[dtype][offset:offset + count], shape)
                      for (dtype, offset, count), (_, shape, _) in zip(places, layout)]
        self.nbytes = sum(int(b.nbytes) for b in self.buffers.values())

    def _allocate(self, dtype: str, count: int):
        if self.on_device:
            return _native.CUDA.zeros((count,), dtype)
        return np.zeros(count, dtype=dtype)

    def _view(self, segment, shape: tuple):
        # A DeviceArray's reshape takes the sizes as arguments; numpy's keeps a 0-d shape.
        return segment.reshape(*shape) if self.on_device else segment.reshape(shape)

    def pack(self, arrays, stream: int = 0) -> None:
        """Copy each gradient into its segment (on the device: queued on `stream`)."""
        if self.on_device:
            from . import _cudadrv

            for view, array in zip(self.views, arrays):
                _cudadrv.copy_device(view.ptr, array.ptr, int(array.nbytes), stream)
        else:
            for view, array in zip(self.views, arrays):
                np.copyto(view, array, casting="no")
