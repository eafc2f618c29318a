"""Build backend: scikit-build-core, plus cuBLAS as a build requirement where _cuda will be built.

pip builds in an isolated environment, so a cuBLAS installed beside the user's Python is invisible
to CMake; its headers and library have to be a build requirement. They are ~480 MB, so they are
asked for only where nvcc exists and FASTCONV_CUDA is not OFF -- the same test CMakeLists.txt
makes. They are never a runtime dependency: `pip install "fastconv[cuda]"` (pyproject.toml's
extra) brings the library _cuda loads, and without it fastconv says so (fastconv/_native.py).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys

from scikit_build_core import build as _skbuild
from scikit_build_core.build import *  # noqa: F401,F403  (re-export every PEP 517 hook)


def _load_facts():
    """python/fastconv/_cuda_facts.py, by path: the package itself is not importable here."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "python",
                        "fastconv", "_cuda_facts.py")
    spec = importlib.util.spec_from_file_location("_fastconv_cuda_facts", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FACTS = _load_facts()
# Built against these, _cuda runs with any cuBLAS of the same major version (the [cuda] extra).
CUBLAS_BUILD_REQUIRES = [f"nvidia-cublas=={FACTS.CUBLAS_BUILD_PIN}",
                         f"nvidia-cuda-nvrtc=={FACTS.NVRTC_BUILD_PIN}"]


def find_nvcc() -> str | None:
    """nvcc by the rule cmake/cuda.cmake follows too (_cuda_facts.py): CUDACXX, PATH, homes."""
    candidates = [os.environ.get("CUDACXX"), shutil.which("nvcc")]
    homes = [os.environ.get(var) for var in FACTS.NVCC_HOME_VARS] + [FACTS.NVCC_DEFAULT_HOME]
    candidates += [os.path.join(home, "bin", "nvcc") for home in homes if home]
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
