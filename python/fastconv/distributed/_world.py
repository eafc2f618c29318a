"""Who this process is in the job: rank, world size and the ranks on its own machine.

A process counts as launched by mpiexec when the launcher's environment says so (Open MPI, MPICH's
Hydra, PMIx or Slurm's PMI). Only then is mpi4py imported, which initialises MPI; a plain
`python train.py` never touches MPI and is a world of one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

# Set by the launchers, before the program starts, to the number of processes in the job.
_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")
# ... and to the number of them on this machine (Open MPI's, then MPICH Hydra's).
_LOCAL_SIZE_VARS = ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS")
_LOCAL_RANK_VARS = ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID")

INSTALL_HINT = 'pip install "fastconv[distributed]" (mpi4py and Open MPI, which brings mpiexec)'


def launched_by_mpi() -> bool:
    """True when a process manager (mpiexec, srun) started this process."""
    return any(os.environ.get(name) for name in _SIZE_VARS + ("PMIX_RANK",))


def import_mpi():
    """mpi4py's MPI module (initialising MPI), or ImportError saying what to install."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(f"fastconv.distributed needs mpi4py ({e}); {INSTALL_HINT}") from None
    return MPI


class LocalComm:
    """The few communicator calls fastconv makes, for a world of one without MPI: every
    collective is the identity, so the code that calls them needs no second path."""

    def Get_rank(self) -> int:
        return 0

    def Get_size(self) -> int:
        return 1

    def Bcast(self, buf, root: int = 0) -> None:
        pass

    def Allreduce(self, sendbuf, recvbuf, op=None) -> None:
        pass  # only ever called in place

    def allgather(self, obj) -> list:
        return [obj]

    def allreduce(self, obj, op=None):
        return obj

    def Barrier(self) -> None:
        pass

    def Abort(self, errorcode: int = 1) -> None:
        os._exit(errorcode)


@dataclass
class World:
    """The job as this process sees it: an mpi4py communicator, or a LocalComm for one process."""
    comm: object
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def mpi(self) -> bool:
        return not isinstance(self.comm, LocalComm)


def _env_int(names, default: int) -> int:
    for name in names:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return default


def connect() -> World:
    """The World of this process: from MPI when launched by mpiexec, else a world of one."""
    if not launched_by_mpi():
        return World(LocalComm())
    MPI = import_mpi()
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    local_size = _env_int(_LOCAL_SIZE_VARS, 0)
    local_rank = _env_int(_LOCAL_RANK_VARS, -1)
    if local_size < 1 or local_rank < 0:
        # Launchers that do not say: ask MPI which ranks share this machine's memory.
        node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=rank)
        local_size, local_rank = node.Get_size(), node.Get_rank()
        node.Free()
    return World(comm, rank, size, local_rank, local_size)


def threads_per_rank(local_size: int) -> int:
    """OpenMP threads for one of `local_size` ranks on this machine: its share of the cores,
    and no more than the cores the launcher bound it to (Open MPI binds to a core by default)."""
    cores = os.cpu_count() or 1
    try:
        bound = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        bound = cores
    return max(1, min(bound, cores // max(local_size, 1)))
