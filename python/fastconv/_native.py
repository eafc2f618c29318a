"""Loads the compiled modules: `_C` always, `_cuda` where it was built and its libraries load.

Installed from a wheel, each module finds its shared libraries (OpenBLAS, cuBLAS) through an RPATH
into the sibling packages in site-packages (cuBLAS is there only with the [cuda] extra). In a
developer build the modules sit in the source tree, so on a failed import the library is loaded by
absolute path first and the import retried.
"""
from __future__ import annotations

import ctypes
import importlib
import os
from types import ModuleType

from . import _cuda_facts as facts


def _preload(path: str) -> None:
    ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)


def _load_cpu() -> ModuleType:
    try:
        return importlib.import_module("fastconv._C")
    except ImportError as err:
        if "scipy_openblas" not in str(err):
            raise
        import scipy_openblas32

        _preload(os.path.join(scipy_openblas32.get_lib_dir(), "libscipy_openblas.so"))
        return importlib.import_module("fastconv._C")


def _preload_cublas() -> None:
    import nvidia  # namespace package of the nvidia-* wheels

    for root in nvidia.__path__:
        lib = os.path.join(root, facts.cublas_dir(), "lib")
        if os.path.exists(os.path.join(lib, facts.cublas_soname())):
            _preload(os.path.join(lib, facts.cublas_soname("cublasLt")))
            _preload(os.path.join(lib, facts.cublas_soname()))
            return
    raise ImportError(f"{facts.cublas_soname()} not found in any nvidia package directory")


CUDA_EXTRA_HINT = 'install fastconv[cuda] (pip install "fastconv[cuda]")'


def cublas_missing_reason(detail: str) -> str:
    """Why a built _cuda cannot be used: cuBLAS comes only with the [cuda] extra."""
    return (f"the CUDA module is built but cuBLAS {facts.CUBLAS_MAJOR} cannot be loaded "
            f"({detail}); {CUDA_EXTRA_HINT}")


def nvidia_driver_error() -> str:
    """'' where the NVIDIA driver's library loads, else the loader's reason.

    With no driver at all, the CUDA runtime still answers cudaErrorInsufficientDriver ("CUDA
    driver version is insufficient"), which sends people to upgrade a driver they do not have.
    """
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError as err:
        return str(err)
    return ""


def no_device_reason(cuda_error: str) -> str:
    """Why the CUDA runtime sees no device: no driver at all, or the runtime's own error text."""
    missing = nvidia_driver_error()
    if missing:
        return f"no NVIDIA driver found: libcuda.so.1 cannot be loaded ({missing})"
    return "no usable CUDA device: " + cuda_error


def _load_cuda() -> tuple[ModuleType | None, str]:
    """The _cuda module, or None and why it is not there."""
    if not C.build_info()["cuda_built"]:
        return None, "the CUDA module was not built: " + C.build_info()["cuda_reason"]
    try:
        return importlib.import_module("fastconv._cuda"), ""
    except ImportError as first:
        try:
            _preload_cublas()
            return importlib.import_module("fastconv._cuda"), ""
        except (ImportError, OSError) as err:
            if "cublas" in str(first).lower():
                return None, cublas_missing_reason(str(first))
            return None, f"the CUDA module is built but failed to load ({first}; {err})"


# OpenMP threads that spin after a parallel loop for libgomp's default ~3 ms steal the cores
# that other threads need (OpenBLAS's own, when it still ran threaded, made a training step 5x
# slower on 2 cores). So passive waiting unless the user chose a policy, but after a short spin
# (libgomp honours GOMP_SPINCOUNT under PASSIVE too): waking a sleeping thread costs tens of
# microseconds, and a step's parallel loops follow each other within that. 30,000 spins lasted
# 0.4-0.8 ms here; a step at batch 64 measured 23.5 -> 22.3 ms (2 threads, 5 runs each).
# libgomp reads both once, when _C first loads it.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ.setdefault("GOMP_SPINCOUNT", "30000")

C = _load_cpu()
CUDA, CUDA_LOAD_ERROR = _load_cuda()
