"""The CUDA emulator's cuBLASLt (csrc/cuda_emu/cublaslt.cpp, cublaslt_run.cpp), checked by a small
C++ program built with g++ against the emulator's sources: every order of A, B and D, both
transposes, batches with a shared A, beta 0 (C not read) and in place, each implemented epilogue
(bias, ReLU, bias gradients) with TF32 on and off, against a product in double; the calls it
refuses; a matmul captured into a graph. Not marked cuda: it needs no fastconv module, only g++
and scipy-openblas32 (the emulated cuBLASLt computes with it)."""
import subprocess

from emulator_selftest import EMU, build


def test_cublaslt_selftest(tmp_path):
    # A host program: no __CUDACC__.
    exe = build(EMU / "tests" / "lt_selftest.cpp", tmp_path / "lt_selftest")
    ran = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert (ran.returncode, ran.stdout) == (0, "OK\n"), ran.stderr
    assert ran.stderr == ""
