"""The CUDA emulator's cuBLASLt (csrc/cuda_emu/cublaslt.cpp, cublaslt_run.cpp), checked by a small
C++ program built with g++ against the emulator's sources: every order of A, B and D, both
transposes, batches with a shared A, beta 0 (C not read) and in place, each implemented epilogue
(bias, ReLU, bias gradients) with TF32 on and off, against a product in double; the calls it
refuses; a matmul captured into a graph. Not marked cuda: it needs no fastconv module, only g++
and scipy-openblas32 (the emulated cuBLASLt computes with it)."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EMU = ROOT / "csrc" / "cuda_emu"


def _openblas():
    try:
        import scipy_openblas32 as blas
    except ImportError:
        pytest.skip("scipy-openblas32 is not installed (the emulated cuBLASLt links it)")
    return blas.get_include_dir(), blas.get_lib_dir(), blas.get_library()


def test_cublaslt_selftest(tmp_path):
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("g++ is not on PATH")
    include, libdir, lib = _openblas()
    exe = tmp_path / "lt_selftest"
    # As cmake/cuda_emulator.cmake builds the emulator's sources (a host program: no __CUDACC__).
    command = [cxx, "-std=c++17", "-O1", "-pthread", "-ffp-contract=off", "-Wall", "-Wextra",
               "-Wno-unknown-pragmas", f"-I{EMU / 'include'}", f"-I{EMU}", f"-I{include}",
               str(EMU / "tests" / "lt_selftest.cpp"), *sorted(str(p) for p in EMU.glob("*.cpp")),
               f"-L{libdir}", f"-l{lib}", f"-Wl,-rpath,{libdir}", "-o", str(exe)]
    built = subprocess.run(command, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert built.stderr == "", built.stderr  # no warnings either
    ran = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert (ran.returncode, ran.stdout) == (0, "OK\n"), ran.stderr
    assert ran.stderr == ""
