"""The CUDA build facts, defined once.

Read by cmake/cuda.cmake (with a regular expression: keep each fact a one-line `NAME = literal`),
by the build backend (build_support/fastconv_build.py, which loads this file by path), by
_native.py (its load paths and install hints) and by tools/check_wheel.py (by path too).
pyproject.toml's [cuda] extra is static metadata and cannot read it; tests/test_build.py checks
that its range is this major version.
"""

# The cuBLAS major version _cuda is built against and loads: its ABI holds within a major version.
# The wheels put it at site-packages/nvidia/cu<MAJOR>/lib/libcublas.so.<MAJOR>.
CUBLAS_MAJOR = 13

# Exact versions for the build environment only (they compile and link _cuda in a throwaway
# environment): the releases on our machines' local disk, so a build needs no network. nvrtc is
# cuBLAS's own dependency (unused by the build), pinned so that pip does not fetch its newest.
CUBLAS_BUILD_PIN = "13.1.1.3"
NVRTC_BUILD_PIN = "13.0.88"

# Where nvcc is looked for: CUDACXX, then nvcc on PATH, then <home>/bin/nvcc for each of these
# environment variables that is set, in this order, then the default home.
NVCC_HOME_VARS = ("CUDA_HOME", "CUDA_PATH")
NVCC_DEFAULT_HOME = "/usr/local/cuda"


def cublas_dir() -> str:
    """The cuBLAS wheel's folder under site-packages/nvidia/."""
    return f"cu{CUBLAS_MAJOR}"


def cublas_lib_dir() -> str:
    """Where the cuBLAS wheel puts its libraries, relative to site-packages: _cuda's RPATH entry
    is $ORIGIN/../ this (CMakeLists.txt), which tools/check_wheel.py checks the wheel keeps."""
    return f"nvidia/{cublas_dir()}/lib"


def cublas_soname(lib: str = "cublas") -> str:
    return f"lib{lib}.so.{CUBLAS_MAJOR}"


def cublas_extra_range() -> str:
    """The [cuda] extra's requirement: any release of the major version."""
    return f"nvidia-cublas>={CUBLAS_MAJOR},<{CUBLAS_MAJOR + 1}"
