"""Build backend: scikit-build-core, plus cuBLAS as a build requirement where _cuda will be built.

pip builds in an isolated environment, so a cuBLAS installed beside the user's Python is invisible
to CMake; its headers and library have to be a build requirement. They are ~480 MB, so they are
asked for only where nvcc exists and FASTCONV_CUDA is not OFF -- the same test CMakeLists.txt
makes. They are never a runtime dependency: `pip install "fastconv[cuda]"` (pyproject.toml's
extra) brings the library _cuda loads, and without it fastconv says so (fastconv/_native.py).
"""
from __future__ import annotations

import os
import shutil
import sys

from scikit_build_core import build as _skbuild
from scikit_build_core.build import *  # noqa: F401,F403  (re-export every PEP 517 hook)

# Exact versions because these only compile and link _cuda, in a throwaway environment: the
# releases on our machines' local disk, so a build needs no network. nvrtc is cuBLAS's own
# dependency (unused by the build), pinned so that pip does not fetch its newest from PyPI.
# Built against 13.1, _cuda runs with any cuBLAS 13.x (the [cuda] extra's range).
CUBLAS_BUILD_REQUIRES = ["nvidia-cublas==13.1.1.3", "nvidia-cuda-nvrtc==13.0.88"]


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
    return [*requires, *CUBLAS_BUILD_REQUIRES] if wants_cuda() else list(requires)


def get_requires_for_build_wheel(config_settings=None):
    return _with_cuda(_skbuild.get_requires_for_build_wheel(config_settings))


def get_requires_for_build_editable(config_settings=None):
    return _with_cuda(_skbuild.get_requires_for_build_editable(config_settings))
