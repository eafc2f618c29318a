"""Builds a C++ self-test program of the CUDA emulator with g++, as cmake/cuda_emulator.cmake
builds the emulator's sources: every csrc/cuda_emu/*.cpp, no FMA contraction, OpenBLAS (which
the emulated cuBLAS and cuBLASLt compute with) from scipy-openblas32. Skips the calling test
where g++ or scipy-openblas32 is missing; fails it on any compiler warning."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EMU = ROOT / "csrc" / "cuda_emu"


def build(source: Path, exe: Path, extra_flags=()) -> Path:
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("g++ is not on PATH")
    try:
        import scipy_openblas32 as blas
    except ImportError:
        pytest.skip("scipy-openblas32 is not installed (the emulated cuBLAS links it)")
    libdir = blas.get_lib_dir()
    command = [cxx, "-std=c++17", "-O1", "-pthread", "-ffp-contract=off", "-Wall", "-Wextra",
               "-Wno-unknown-pragmas", f"-I{EMU / 'include'}", f"-I{EMU}",
               f"-I{blas.get_include_dir()}", *extra_flags, str(source),
               *sorted(str(p) for p in EMU.glob("*.cpp")),
               f"-L{libdir}", f"-l{blas.get_library()}", f"-Wl,-rpath,{libdir}", "-o", str(exe)]
    built = subprocess.run(command, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert built.stderr == "", built.stderr  # no warnings either
    return exe
