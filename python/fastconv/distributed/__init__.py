"""Data-parallel training over MPI processes (CPU) and NCCL (GPU): `pip install
"fastconv[distributed]"`, then launch the script with `mpiexec -n 4 python train.py`.

    import fastconv.distributed as dist
    dist.init()                             # a world of one when not launched by mpiexec
    model(x[:1])                            # parameters exist after the first forward pass
    dist.broadcast_parameters(model)        # refuses models that differ between ranks
    for each step:
        idx = dist.batch_indices(order, step, batch_size)   # this rank's slice of the batch
        with model.train():
            loss = fc.softmax_cross_entropy(model(x[idx]), t[idx])
        dist.allreduce_gradients(loss.grad()).update(opt)

An uncaught exception on any rank prints its traceback and ends every rank (MPI_Abort).
"""
from __future__ import annotations

import os

import numpy as np

from . import _failure, _models, _sharding
from ._models import ModelMismatchError
from ._reduce import BACKENDS, GradientReducer, check_backend
from ._world import INSTALL_HINT, World, connect, launched_by_mpi, threads_per_rank

__all__ = ["init", "rank", "world_size", "local_rank", "local_size", "is_root", "is_distributed",
           "broadcast_parameters", "check_models", "allreduce_gradients", "reduce_sum",
           "batch_indices", "steps_per_epoch", "validation_range", "abort_on_error", "abort",
           "default_threads", "backend", "reducer", "ModelMismatchError", "BACKENDS",
           "INSTALL_HINT", "launched_by_mpi"]

_joined: World | None = None
_joined_reducer: GradientReducer | None = None


def init(backend: str = "auto") -> World:
    """Join the job: rank and world size from MPI under mpiexec, else a world of one (MPI is
    then not touched). backend: "auto", "mpi" or "nccl" (see allreduce_gradients). Calling it
    again keeps the world and changes the backend for reducers made afterwards."""
    global _joined, _joined_reducer
    check_backend(backend)
    if _joined is None:
        _joined = connect()
        if _joined.size > 1:
            _failure.install_excepthook(_joined)
            if _joined.local_size > 1 and "CUDA_VISIBLE_DEVICES" not in os.environ:
                # fastconv uses the first visible GPU: give each rank of a machine its own.
                os.environ["CUDA_VISIBLE_DEVICES"] = str(_joined.local_rank)
    if _joined_reducer is None or _joined_reducer.requested != backend:
        _joined_reducer = GradientReducer(_joined, backend)
    return _joined


def _get() -> World:
    return _joined if _joined is not None else init()


def rank() -> int:
    return _get().rank


def world_size() -> int:
    return _get().size


def local_rank() -> int:
    """This process's index among the ranks on its machine."""
    return _get().local_rank


def local_size() -> int:
    """The number of ranks on this machine."""
    return _get().local_size


def is_root() -> bool:
    """True on rank 0, the one that prints progress and writes files."""
    return _get().rank == 0


def is_distributed() -> bool:
    """True in a job of more than one process."""
    return _get().size > 1


def default_threads() -> int:
    """OpenMP threads per rank: this machine's cores divided by its ranks."""
    return threads_per_rank(_get().local_size)


def check_models(model) -> None:
    """ModelMismatchError on every rank, naming the first difference, unless all ranks' models
    have the same parameters (count, names, shapes, dtypes)."""
    _models.check_models(_get().comm, model)


def broadcast_parameters(model) -> None:
    """check_models, then copy rank 0's parameter values to every rank."""
    _models.broadcast_parameters(_get().comm, model)


def reducer() -> GradientReducer:
    """The reducer allreduce_gradients uses (its .backend, .seconds, .steps, .flat.nbytes)."""
    _get()
    return _joined_reducer


def backend() -> str | None:
    """"mpi" or "nccl" once allreduce_gradients has run, else None."""
    return reducer().backend


def allreduce_gradients(grads):
    """Average gradients over the ranks: one collective per dtype into a flat buffer made on the
    first call (nothing is allocated per step). `grads` is a fastconv Grads (from loss.grad(),
    returned with its gradients replaced by the averages, ready for .update(opt)) or a list of
    arrays (a list of the averages is returned; valid until the next call). Every rank must pass
    gradients of the same shapes and dtypes in the same order; numpy arrays go over MPI, GPU
    arrays over NCCL (backend "auto" or "nccl") or MPI through page-locked host memory."""
    if hasattr(grads, "_by_id"):
        entries = list(grads._by_id.items())
        averaged = reducer()([g for _, (_, g) in entries])
        for (key, (variable, _)), value in zip(entries, averaged):
            grads._by_id[key] = (variable, value)
        return grads
    return reducer()(list(grads))


def reduce_sum(values) -> np.ndarray:
    """The element-wise sum over the ranks of a few numbers (metrics), as float64."""
    array = np.array(values, dtype=np.float64, copy=True).reshape(-1)
    world = _get()
    if world.size > 1:
        from ._world import import_mpi

        MPI = import_mpi()
        world.comm.Allreduce(MPI.IN_PLACE, array, op=MPI.SUM)
    return array


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Steps of an epoch of `count` samples with `batch_size` per rank."""
    return _sharding.steps_per_epoch(count, batch_size, _get().size)


def batch_indices(order, step: int, batch_size: int) -> np.ndarray:
    """This rank's `batch_size` indices of global batch `step` of the permutation `order`
    (the same on every rank: draw it from a generator seeded alike)."""
    world = _get()
    return _sharding.batch_indices(order, step, batch_size, world.rank, world.size)


def validation_range(count: int) -> range:
    """This rank's contiguous share of `count` evaluation samples."""
    world = _get()
    return _sharding.contiguous_range(count, world.rank, world.size)


def abort_on_error(code: int = 1):
    """Context manager: an exception inside it on one rank prints its traceback (with the rank)
    and ends the job on every rank."""
    return _failure.abort_on_error(_get(), code)


def abort(message: str, code: int = 1) -> None:
    """Print message as this rank's and end every rank of the job."""
    _failure.report_and_abort(_get(), message, code)
