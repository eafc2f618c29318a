"""fastconv-train --distributed: joining the job, the start-up agreements between ranks, and how a
failure on one rank ends them all.

Errors that every rank finds alike (models or data that differ) are AgreedErrors: rank 0 prints
one line and every rank exits 1. An error on some ranks only is printed by each with its rank,
and MPI_Abort ends the job, so no rank waits forever in a collective.
"""
from __future__ import annotations

import contextlib
import sys
import zlib

import numpy as np

from . import distributed
from ._cli import CommandError, note
from .distributed import _failure


class AgreedError(CommandError):
    """A problem every rank has found alike."""


class NoStop:
    """StopOnInterrupt's stand-in where Ctrl-C must end the job at once."""
    requested = False

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


def join(args):
    """The World under mpiexec (or srun); None, with a note, for a plain launch."""
    if not distributed.launched_by_mpi():
        note("--distributed: not launched by mpiexec; training in one process")
        return None
    try:
        return distributed.init(args.backend)
    except ImportError as e:
        raise CommandError(str(e)) from None


def fail(world, line: str, code: int) -> int:
    """Print `line` (an error) and return `code`; with other ranks waiting, end the job."""
    if world is not None and world.size > 1:
        _failure.report_and_abort(world, line, code)
    print(line, file=sys.stderr, flush=True)
    return code


@contextlib.contextmanager
def root_first(world):
    """Rank 0 runs the block first, the others after it (e.g. a download into a shared cache)."""
    if world is not None and world.rank != 0:
        world.comm.Barrier()
    yield
    if world is not None and world.rank == 0:
        world.comm.Barrier()


def _data_summary(data) -> tuple:
    labels = np.concatenate([np.asarray(data.train_labels).ravel(),
                             np.asarray(data.test_labels).ravel()]).astype(np.int64)
    return (data.source, len(data.train_images), len(data.test_images),
            f"{zlib.crc32(labels.tobytes()):08x}")


def agree(world, device: str, data) -> None:
    """Every rank trains on the same device kind and the same data, else an AgreedError."""
    for what, mine in (("device", device), ("data", _data_summary(data))):
        everyone = world.comm.allgather(mine)
        for rank, theirs in enumerate(everyone):
            if theirs != everyone[0]:
                raise AgreedError(f"the ranks must agree on the {what}; got {_say(theirs)} on "
                                  f"rank {rank} and {_say(everyone[0])} on rank 0")


def _say(value) -> str:
    if isinstance(value, tuple):
        source, train, test, crc = value
        return f"{source} ({train} train, {test} validation images, labels crc32 {crc})"
    return str(value)


def share_model(world, model, train_set) -> None:
    """Make the parameters (one image, dropout off), check that the ranks' models agree, and
    give every rank rank 0's values."""
    if not list(model.parameters()):
        model.set_models(inference=True)
        try:
            model(train_set.batch(np.arange(1))[0])
        finally:
            model.set_models(inference=False)
    try:
        distributed.broadcast_parameters(model)
    except distributed.ModelMismatchError as e:
        raise AgreedError(str(e)) from None


def mean_loss(loss: float, count: int) -> tuple[float, int]:
    """(the mean train loss over the ranks, the images all ranks saw)."""
    total, seen = distributed.reduce_sum([loss * count, count])
    return float(total / max(seen, 1)), int(seen)
