"""What was built and what is usable here: build_info, CUDA availability, threads."""
from __future__ import annotations

import operator
import os

import numpy as np

from ._native import C, CUDA, CUDA_LOAD_ERROR, no_device_reason

_cuda_status: tuple[bool, str] | None = None


def _query_cuda() -> tuple[bool, str]:
    global _cuda_status
    if _cuda_status is None:
        if CUDA is None:
            _cuda_status = (False, CUDA_LOAD_ERROR)
        else:
            ok, reason = CUDA.status()
            if ok:
                names = [CUDA.device_properties(i)["name"] for i in range(CUDA.device_count())]
                reason = f"{len(names)} device(s): " + ", ".join(names)
            else:
                reason = no_device_reason(reason)
            _cuda_status = (ok, reason)
    return _cuda_status


def cuda_available() -> bool:
    """True when the CUDA module is built, loads, and sees at least one device."""
    return _query_cuda()[0]


def cuda_status() -> str:
    """One readable sentence: the devices found, or why CUDA cannot be used here."""
    return _query_cuda()[1]


def build_info() -> dict:
    """What this installation was built with and what it can use now."""
    raw = C.build_info()
    ok, status = _query_cuda()
    cuda = {
        "built": raw["cuda_built"],
        "reason_not_built": "" if raw["cuda_built"] else raw["cuda_reason"],
        "archs": raw["cuda_archs"].split(",") if raw["cuda_archs"] else [],
        "nvcc_version": raw["nvcc_version"],
        "cublas_version_built": raw["cublas_version"],
        "cublas_version_loaded": _cublas_loaded_version(),
        "available": ok,
        "status": status,
    }
    return {
        "version": raw["version"],
        "compiler": raw["compiler"],
        "blas": raw["blas"],
        "blas_version": raw["blas_version"],
        "blas_config": raw["blas_config"],
        "openmp_version": raw["openmp"],
        "cpu_simd": raw["cpu_simd"],
        "num_threads": C.get_num_threads(),
        "blas_num_threads": C.get_blas_num_threads(),
        "conv_algorithm": C.conv_algorithm(),
        "cuda": cuda,
    }


def _cublas_loaded_version() -> str:
    if CUDA is None:
        return ""
    v = CUDA.cublas_version()
    return f"{v // 10000}.{v // 100 % 100}.{v % 100}"


MAX_THREADS = C.MAX_THREADS


def set_num_threads(n: int) -> None:
    """Threads for every CPU kernel, from 1 to MAX_THREADS (1024).

    The setting is process-wide: it applies to calls from every Python thread, including threads
    started earlier. The default is OpenMP's (OMP_NUM_THREADS, else the number of cores). OpenBLAS
    always runs single-threaded inside fastconv's threads, so this is the only thread count.
    """
    if isinstance(n, (bool, np.bool_)):
        raise TypeError(f"n must be an int; got {type(n).__name__}")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"n must be an int; got {type(n).__name__}") from None
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"n must be between 1 and {MAX_THREADS}; got {n}")
    C.set_num_threads(n)


def get_num_threads() -> int:
    """The CPU kernels' thread count (see set_num_threads)."""
    return C.get_num_threads()


CONV_ALGORITHMS = ("auto", "im2col", "winograd", "winograd_f2", "winograd_f4")


def set_conv_algorithm(algorithm: str) -> None:
    """How CPU convolutions compute, process-wide (like the thread count).

    "auto" (the default): Winograd F(4x4, 3x3) for float32 3x3 convolutions with stride 1 and
    dilation 1 whose input and output channels are both at least 16, im2col + GEMM for all else.
    "im2col": always im2col + GEMM. "winograd": Winograd wherever it applies (3x3, stride 1,
    dilation 1, float32, any padding), else im2col; "winograd_f2" / "winograd_f4" pick the tile:
    F(2x2, 3x3) is as accurate as im2col, F(4x4, 3x3) does 4x fewer multiplications than im2col
    with an error a few times larger (see BENCHMARKS.md, "CPU Winograd"); under Winograd an inf
    or NaN input makes its whole output tile non-finite, not only the outputs that read it.
    float64 always runs im2col. Results stay deterministic and independent of the thread count
    in every mode.
    """
    if not isinstance(algorithm, str):
        raise TypeError(f"algorithm must be a str; got {type(algorithm).__name__}")
    if algorithm not in CONV_ALGORITHMS:
        allowed = ", ".join(repr(a) for a in CONV_ALGORITHMS)
        raise ValueError(f"algorithm must be one of {allowed}; got {algorithm!r}")
    C.set_conv_algorithm(algorithm)


def conv_algorithm() -> str:
    """The CPU convolution setting (see set_conv_algorithm)."""
    return C.conv_algorithm()


# GCC's libgomp keeps its idle worker threads across fork(), but in the child they no longer
# exist, and the child's first parallel region waits for them forever. Releasing the forking
# thread's pool just before the fork makes the child (and the parent, on its next call) start a
# fresh one; if the runtime cannot release it, the child runs single-threaded instead.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=C._before_fork, after_in_child=C._after_fork_in_child)


_tf32 = False


def set_tf32(on: bool) -> None:
    """TF32 tensor cores for float32 GEMMs on the GPU (sm_80 and newer): faster, ~10-bit mantissa
    products. Off by default. The choice is stored even where no GPU is usable (it then affects
    nothing); CPU kernels never use TF32."""
    from ._validate import flag

    global _tf32
    _tf32 = flag(on, "on")
    if CUDA is not None:
        CUDA.set_tf32(_tf32)


def tf32() -> bool:
    """Whether float32 GEMMs on the GPU use TF32 (see set_tf32)."""
    return CUDA.tf32() if CUDA is not None else _tf32


_gemm_epilogues = True


def set_gemm_epilogues(on: bool) -> None:
    """On the GPU, add the bias and the ReLU (and sum the bias gradient) inside the cuBLASLt GEMMs
    of conv2d and dense, where cuBLASLt offers an algorithm, instead of in passes of their own.
    On by default; off runs fastconv's own kernels (for comparison, or to rule the fusion out).
    The results agree within float32 rounding, not bitwise. Stored even where no GPU is usable."""
    from ._validate import flag

    global _gemm_epilogues
    _gemm_epilogues = flag(on, "on")
    if CUDA is not None:
        CUDA.set_gemm_epilogues(_gemm_epilogues)


def gemm_epilogues() -> bool:
    """Whether GPU GEMMs fuse their bias, ReLU and bias gradient (see set_gemm_epilogues)."""
    return CUDA.gemm_epilogues() if CUDA is not None else _gemm_epilogues


_conv_autotune = False


def set_conv_autotune(on: bool) -> None:
    """On the GPU, choose each conv2d shape's kernels (im2col + cuBLAS, or fastconv's
    implicit-GEMM kernels) by timing them on the first call of that shape, and keep the fastest
    for the rest of the process, as cuDNN's benchmark mode does. Off by default: the kernels then
    depend on the shape alone, so reruns give the same bits; with it on, a near tie may go the
    other way in another process, and results then differ in their last bits. A shape first met
    inside a graph capture is not timed (im2col runs). Stored even where no GPU is usable."""
    from ._validate import flag

    global _conv_autotune
    _conv_autotune = flag(on, "on")
    if CUDA is not None:
        CUDA.set_conv_autotune(_conv_autotune)


def conv_autotune() -> bool:
    """Whether conv2d's GPU kernels are chosen by timing (see set_conv_autotune)."""
    return CUDA.conv_autotune() if CUDA is not None else _conv_autotune


_cuda_active = False


def set_cuda_active(active: bool = True) -> None:
    """Put parameters that layers create from now on, and the inputs they receive, on the GPU.
    Where no GPU is usable, warn and stay on the CPU (as ReNom does)."""
    global _cuda_active
    import warnings

    if active and not cuda_available():
        warnings.warn(f"CUDA is not available ({cuda_status()}); staying on the CPU",
                      RuntimeWarning, stacklevel=2)
        return
    _cuda_active = bool(active)


def is_cuda_active() -> bool:
    """Whether set_cuda_active(True) took effect: layers then make their parameters, and move
    their inputs, on the GPU."""
    return _cuda_active
