"""Reference batch gathering and accuracy count: the numpy expressions the training loop used."""
import numpy as np

__all__ = ["gather_batch", "accuracy_count"]


def gather_batch(data, indices):
    """data[indices]: the rows (first axis) of data picked by the integer indices, in order."""
    return np.asarray(data)[np.asarray(indices)]


def accuracy_count(z, t):
    """How many rows of z (N, classes) have their argmax at the label in t: (N,) labels or
    (N, classes) one-hot rows; an int64 scalar array."""
    t = np.asarray(t)
    want = t.argmax(axis=1) if t.ndim == 2 else t
    return np.array((np.asarray(z).argmax(axis=1) == want).sum(), dtype=np.int64)
