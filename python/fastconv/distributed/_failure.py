"""A rank that fails must not leave the others waiting forever in a collective: its error is
printed, prefixed with its rank, and MPI_Abort ends every process of the job within seconds
(mpiexec then exits with the error code).
"""
from __future__ import annotations

import contextlib
import sys
import traceback


def report_and_abort(world, message: str, code: int = 1) -> None:
    """Print `message` as this rank's and end the whole job."""
    prefix = f"rank {world.rank} of {world.size}: "
    text = "".join(prefix + line + "\n" for line in message.rstrip("\n").splitlines())
    try:
        sys.stdout.flush()
        sys.stderr.write(text)
        sys.stderr.flush()
    finally:
        world.comm.Abort(code)


def install_excepthook(world) -> None:
    """An uncaught exception on any rank ends the job (a rank leaving normally would leave the
    others waiting): the traceback is printed, then MPI_Abort."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, value, tb)
        report_and_abort(world, "".join(traceback.format_exception(kind, value, tb)))

    sys.excepthook = hook


@contextlib.contextmanager
def abort_on_error(world, code: int = 1):
    """Within the block, an exception on one rank ends the job on all of them."""
    try:
        yield
    except BaseException:  # noqa: B036 - KeyboardInterrupt too: the other ranks would wait
        if world.size > 1:
            report_and_abort(world, traceback.format_exc(), code)
        raise
