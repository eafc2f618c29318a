"""Which samples each rank sees. Every rank draws the same seeded permutation each epoch; step j
takes the next `batch_size * world` samples of it, and rank r the r-th slice of `batch_size`: the
slices are disjoint and equal, and together they are the batch one process would take with the
global batch size. Validation is split into contiguous ranges whose counts are reduced exactly.
"""
from __future__ import annotations

import numpy as np


def steps_per_epoch(count: int, batch_size: int, world: int) -> int:
    """Full global batches in an epoch (the last partial one is dropped, as the tutorial does)."""
    return count // (batch_size * world)


def batch_indices(order: np.ndarray, step: int, batch_size: int, rank: int,
                  world: int) -> np.ndarray:
    """This rank's slice of global batch `step` of the epoch's permutation `order`."""
    start = (step * world + rank) * batch_size
    return order[start:start + batch_size]


def contiguous_range(count: int, rank: int, world: int) -> range:
    """Rank's share of `count` items in order, sizes differing by at most one."""
    base, extra = divmod(count, world)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (rank < extra))
