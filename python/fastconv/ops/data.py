"""The training loop's data helpers: a batch's rows out of a dataset, and how many rows a model
got right. Both run where the data lives, so a GPU-resident dataset sends nothing back but the
count."""
from __future__ import annotations

from ._args import backend, contiguous_ints

__all__ = ["gather_batch", "accuracy_count"]


def gather_batch(data, indices):
    """The rows data[indices] as a new array where data lives.

    data: (rows, ...) images (float32; float64 on the CPU) or labels (int64 or float). indices:
    1-D integers in [0, rows) (on the GPU, also an int64 DeviceArray); one outside is a
    ValueError that gives it and its position: at the call for numpy indices, and for device
    indices at the next point where the host waits for the device (fastconv.synchronize(), a
    copy to the host), as the GPU finds it without stopping the host."""
    return backend(data, "data").gather_batch(data, contiguous_ints(indices))


def accuracy_count(z, t):
    """0-d int64 array (where z lives): the rows of z (N, C) whose argmax (the first maximum; a
    NaN counts as the maximum) equals the label in t (N,), or the argmax of t's row for (N, C)
    one-hot targets. A label outside [0, C) matches no row."""
    return backend(z, "z").accuracy_count(z, contiguous_ints(t))
