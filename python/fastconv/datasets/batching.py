"""Small helpers for a training loop: one-hot targets and index batches."""
from __future__ import annotations

from typing import Iterator, Union

import numpy as np


def one_hot(labels, num_classes: int = 10, dtype=np.float32) -> np.ndarray:
    """Integer labels ``(N,)`` -> one-hot rows ``(N, num_classes)``, as the tutorial's
    LabelBinarizer makes them."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D; got shape {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers; got dtype {labels.dtype}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1; got {num_classes}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in 0..{num_classes - 1}; got {labels.min()}..{labels.max()}"
        )
    out = np.zeros((labels.shape[0], num_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def batches(
    n: int,
    batch_size: int,
    rng: Union[None, int, np.random.Generator] = None,
    *,
    shuffle: bool = True,
    drop_last: bool = False,
) -> Iterator[np.ndarray]:
    """Yield index arrays covering ``range(n)`` in batches of ``batch_size``.

    With ``shuffle`` (default) the order is a fresh permutation from ``rng`` (a Generator, an int
    seed, or None for fresh entropy); without it, in order (for evaluation). ``drop_last`` drops a
    final short batch, as the tutorial's ``N // batch_size`` loop does.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0; got {n}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    if shuffle:
        order = np.random.default_rng(rng).permutation(n)
    else:
        order = np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]
