"""The CUDA emulator's stream capture and graphs (csrc/cuda_emu/capture.cpp, graph.cpp), checked
by a small C++ program built with g++ against the emulator's sources: capture of a kernel, copies,
a memset and a GEMM; replays that read new host inputs; the calls a capture refuses; the relaxed
mode; EndCapture's errors; a graph counted as one launch. Not marked cuda: it needs no fastconv
module, only g++ and scipy-openblas32 (the emulated cuBLAS computes with it)."""
import subprocess
import sys

from emulator_selftest import EMU, ROOT, build


def test_capture_and_graph_selftest(tmp_path):
    source = tmp_path / "graph_selftest.cpp"
    subprocess.run([sys.executable, str(ROOT / "build_support" / "emulate_cuda.py"),
                    str(EMU / "tests" / "graph_selftest.cu"), str(source)], check=True)
    # As the emulated sources are built: __CUDACC__ and cuda_runtime.h first.
    exe = build(source, tmp_path / "graph_selftest", ("-D__CUDACC__", "-include", "cuda_runtime.h"))
    for order in ("forward", "reverse"):
        ran = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60,
                             env={"FASTCONV_CUDA_EMULATOR_ORDER": order})
        assert (ran.returncode, ran.stdout) == (0, "OK\n"), f"{order} order:\n{ran.stderr}"
        assert ran.stderr == ""
