"""The CUDA emulator's stream capture and graphs (csrc/cuda_emu/capture.cpp, graph.cpp), checked
by a small C++ program built with g++ against the emulator's sources: capture of a kernel, copies,
a memset and a GEMM; replays that read new host inputs; the calls a capture refuses; the relaxed
mode; EndCapture's errors; a graph counted as one launch. Not marked cuda: it needs no fastconv
module, only g++ and scipy-openblas32 (the emulated cuBLAS computes with it)."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EMU = ROOT / "csrc" / "cuda_emu"


def _openblas():
    try:
        import scipy_openblas32 as blas
    except ImportError:
        pytest.skip("scipy-openblas32 is not installed (the emulated cuBLAS links it)")
    return blas.get_include_dir(), blas.get_lib_dir(), blas.get_library()


def test_capture_and_graph_selftest(tmp_path):
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("g++ is not on PATH")
    include, libdir, lib = _openblas()
    source = tmp_path / "graph_selftest.cpp"
    subprocess.run([sys.executable, str(ROOT / "build_support" / "emulate_cuda.py"),
                    str(EMU / "tests" / "graph_selftest.cu"), str(source)], check=True)
    exe = tmp_path / "graph_selftest"
    # As cmake/cuda_emulator.cmake builds the emulated sources: __CUDACC__, cuda_runtime.h first,
    # no FMA contraction.
    command = [cxx, "-std=c++17", "-O1", "-pthread", "-ffp-contract=off", "-Wall", "-Wextra",
               "-Wno-unknown-pragmas", f"-I{EMU / 'include'}", f"-I{EMU}", f"-I{include}",
               "-D__CUDACC__", "-include", "cuda_runtime.h", str(source),
               *sorted(str(p) for p in EMU.glob("*.cpp")),
               f"-L{libdir}", f"-l{lib}", f"-Wl,-rpath,{libdir}", "-o", str(exe)]
    built = subprocess.run(command, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert built.stderr == "", built.stderr  # no warnings either
    for order in ("forward", "reverse"):
        ran = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60,
                             env={"FASTCONV_CUDA_EMULATOR_ORDER": order})
        assert (ran.returncode, ran.stdout) == (0, "OK\n"), f"{order} order:\n{ran.stderr}"
        assert ran.stderr == ""
