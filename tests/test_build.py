"""What was built, what is usable, and how the CUDA module behaves without a device."""
import runpy
from pathlib import Path

import numpy as np
import pytest

import fastconv as fc
from fastconv import _native


def test_build_info_describes_the_build():
    info = fc.build_info()
    assert info["version"] == fc.__version__
    assert "OpenBLAS" in info["blas"] and info["blas_version"]
    assert info["num_threads"] >= 1 and info["openmp_version"] >= 201511
    assert info["cpu_simd"] in ("x86-64", "x86-64-v3", "x86-64-v4")
    cuda = info["cuda"]
    assert isinstance(cuda["built"], bool) and isinstance(cuda["available"], bool)
    if cuda["built"]:
        assert cuda["archs"] and cuda["cublas_version_built"].startswith("13.")
        assert cuda["reason_not_built"] == ""
    else:
        assert cuda["reason_not_built"], "a CPU-only build must say why"


def test_cuda_availability_has_a_reason():
    status = fc.cuda_status()
    assert isinstance(status, str) and status
    if not fc.cuda_available():
        assert status.startswith((
            "the CUDA module was not built: ", "the CUDA module is built but ",
            "no NVIDIA driver found: ", "no usable CUDA device: ")), status


@pytest.mark.skipif(_native.CUDA is None or fc.cuda_available()
                    or not _native.nvidia_driver_error(),
                    reason="needs the CUDA module loaded, on a machine without an NVIDIA driver")
def test_cuda_status_says_no_driver_where_there_is_none():
    # The CUDA runtime itself answers "CUDA driver version is insufficient" here (issue 9).
    assert fc.cuda_status() == ("no NVIDIA driver found: libcuda.so.1 cannot be loaded ("
                                + _native.nvidia_driver_error() + ")")


class _NoDeviceStandIn:
    """A _cuda that loads but sees no device, answering as the CUDA runtime does."""

    @staticmethod
    def status():
        return False, ("cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA "
                       "runtime version")


@pytest.mark.parametrize("driver_error, expected", [
    ("libcuda.so.1: cannot open shared object file: No such file or directory",
     "no NVIDIA driver found: libcuda.so.1 cannot be loaded (libcuda.so.1: cannot open shared "
     "object file: No such file or directory)"),
    ("", "no usable CUDA device: cudaErrorInsufficientDriver: CUDA driver version is insufficient "
         "for CUDA runtime version"),
])
def test_cuda_status_tells_a_missing_driver_from_an_old_one(monkeypatch, driver_error, expected):
    from fastconv import _runtime

    monkeypatch.setattr(_native, "nvidia_driver_error", lambda: driver_error)
    monkeypatch.setattr(_runtime, "CUDA", _NoDeviceStandIn)
    monkeypatch.setattr(_runtime, "_cuda_status", None)
    assert fc.cuda_status() == expected
    assert not fc.cuda_available()


def test_cuda_module_without_cublas_says_to_install_the_extra():
    assert _native.cublas_missing_reason("libcublas.so.13: cannot open shared object file") == (
        "the CUDA module is built but cuBLAS 13 cannot be loaded (libcublas.so.13: cannot open "
        'shared object file); install fastconv[cuda] (pip install "fastconv[cuda]")')


@pytest.mark.skipif(fc.cuda_available() or _native.CUDA is None,
                    reason="needs the CUDA module built, on a machine without a usable GPU")
def test_cuda_module_without_device_raises_cuda_error_text():
    cuda = _native.CUDA
    ok, reason = cuda.status()
    assert not ok and reason.startswith("cuda")  # e.g. cudaErrorInsufficientDriver: ...
    with pytest.raises(cuda.CudaError, match=r"cudaError\w+: .+ \(in cudaMalloc"):
        cuda.empty((64,))
    assert issubclass(cuda.CudaError, RuntimeError)
    assert cuda.cublas_version() // 10000 == 13  # the library loads and answers without a device


def test_set_num_threads_round_trip_and_validation():
    before = fc.get_num_threads()
    try:
        fc.set_num_threads(1)
        assert fc.get_num_threads() == 1
        fc.set_num_threads(2)
        assert fc.get_num_threads() == 2
        # OpenMP is the one thread pool; OpenBLAS always runs on the calling thread.
        assert fc.build_info()["blas_num_threads"] == 1
    finally:
        fc.set_num_threads(before)
    with pytest.raises(ValueError, match="n must be between 1 and 1024; got 0"):
        fc.set_num_threads(0)
    with pytest.raises(TypeError, match="n must be an int; got float"):
        fc.set_num_threads(1.5)


@pytest.mark.cuda
def test_device_array_round_trip_and_fill_kernel():
    cuda = _native.CUDA
    host = np.arange(1000, dtype=np.float32)
    arr = cuda.from_numpy(host)
    np.testing.assert_array_equal(arr.to_numpy(), host)
    arr.fill(2.5)  # a launch on fastconv's stream: the device code path end to end
    assert (arr.to_numpy() == 2.5).all()
    with pytest.raises(TypeError, match="array"):
        cuda.from_numpy(host.astype(np.int32))


@pytest.mark.cuda
def test_cublas_handle_and_device_properties():
    cuda = _native.CUDA
    cuda.cublas_init()
    props = cuda.device_properties(0)
    assert props["compute_capability"] >= (7, 5) and props["total_memory"] > 0


def test_no_iostreams_in_the_compiled_modules():
    """Error text is built with fastconv/text.h, never with iostreams: with libstdc++ linked
    statically (-static-libstdc++), stream insertion crashed or cut messages short (issue 8)."""
    import re
    from pathlib import Path

    csrc = Path(__file__).resolve().parent.parent / "csrc"
    banned = re.compile(r"<sstream>|<iostream>|std::(?:i|o)?stringstream")
    files = [p for p in csrc.rglob("*") if p.is_file()]
    assert len(files) > 20, f"no sources found under {csrc}"
    hits = [f"{p.relative_to(csrc)}:{n}: {line.strip()}"
            for p in files
            for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
            if banned.search(line)]
    assert not hits, "iostreams in csrc/ (use fastconv/text.h):\n" + "\n".join(hits)


# ---- the package's metadata: nothing CUDA unless asked for with the [cuda] extra ---------------
REPO = Path(__file__).resolve().parent.parent


def check_requirements(requires_dist: list[str], requires_python: str) -> None:
    from packaging.requirements import Requirement
    from packaging.version import Version

    reqs = [Requirement(r) for r in requires_dist]
    base = [r.name for r in reqs if r.marker is None]
    assert "numpy" in base and "scipy-openblas32" in base, base
    assert not [n for n in base if n.startswith("nvidia")], f"CUDA wheels in the base: {base}"
    cuda = [r for r in reqs if r.marker is not None and r.marker.evaluate({"extra": "cuda"})
            and not r.marker.evaluate({"extra": ""})]
    assert [r.name for r in cuda] == ["nvidia-cublas"], [str(r) for r in cuda]
    spec = cuda[0].specifier  # a range over cuBLAS 13, not a pin
    assert [spec.contains(v) for v in ("12.9.1", "13.0.0", "13.1.1.3", "13.4.1.1", "14.0.0")] == [
        False, True, True, True, False], str(spec)  # 13.4.1.1: issue 9's conflict
    assert Version("3.10") in Requirement("python" + requires_python).specifier
    assert Version("3.9") not in Requirement("python" + requires_python).specifier


def test_built_metadata_keeps_cuda_in_the_extra(tmp_path, monkeypatch):
    """The backend's own metadata hook, offline: what a wheel built from this tree declares."""
    pytest.importorskip("scikit_build_core", reason="the build backend is not installed here")
    import email

    monkeypatch.chdir(REPO)
    monkeypatch.syspath_prepend(str(REPO / "build_support"))
    import fastconv_build

    monkeypatch.setattr(fastconv_build, "find_nvcc", lambda: "/usr/local/cuda/bin/nvcc")
    name = fastconv_build.prepare_metadata_for_build_wheel(str(tmp_path))
    meta = email.message_from_string((tmp_path / name / "METADATA").read_text())
    check_requirements(meta.get_all("Requires-Dist"), meta["Requires-Python"])
    assert (tmp_path / name / "licenses" / "LICENSE").read_text().startswith("MIT License")


def test_build_asks_for_cublas_only_where_cuda_is_built(monkeypatch):
    pytest.importorskip("scikit_build_core", reason="the build backend is not installed here")
    monkeypatch.chdir(REPO)
    monkeypatch.syspath_prepend(str(REPO / "build_support"))
    import fastconv_build

    def cuda_requires():
        return [r for r in fastconv_build.get_requires_for_build_wheel() if r.startswith("nvidia")]

    monkeypatch.setattr(fastconv_build, "find_nvcc", lambda: "/usr/local/cuda/bin/nvcc")
    monkeypatch.setenv("FASTCONV_CUDA", "AUTO")
    assert cuda_requires() == ["nvidia-cublas==13.1.1.3", "nvidia-cuda-nvrtc==13.0.88"]
    monkeypatch.setenv("FASTCONV_CUDA", "OFF")
    assert cuda_requires() == []
    monkeypatch.setenv("FASTCONV_CUDA", "AUTO")
    monkeypatch.setattr(fastconv_build, "find_nvcc", lambda: None)
    assert cuda_requires() == []


def test_installed_metadata_keeps_cuda_in_the_extra():
    """The metadata of the fastconv that is imported here, where it was installed (CI's .venv)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("fastconv")
    except metadata.PackageNotFoundError:
        pytest.skip("fastconv is imported from a source tree, not installed")
    if Path(dist.locate_file("fastconv/__init__.py")).resolve() != Path(fc.__file__).resolve():
        pytest.skip(f"the fastconv imported ({fc.__file__}) is not the installed one")
    check_requirements(dist.requires or [], dist.metadata["Requires-Python"])
    files = {str(f) for f in dist.files or []}
    assert "fastconv/py.typed" in files, sorted(files)
    assert any(f.endswith("LICENSE") and ".dist-info/" in f for f in files), sorted(files)


# ---- build facts: defined once (python/fastconv/_cuda_facts.py), read everywhere ---------------
def test_cuda_facts_are_what_the_extra_and_the_backend_declare():
    from fastconv import _cuda_facts as facts

    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'cuda = ["{facts.cublas_extra_range()}"]' in pyproject
    assert _native.cublas_missing_reason("x").startswith(
        f"the CUDA module is built but cuBLAS {facts.CUBLAS_MAJOR} cannot be loaded (x); ")
    # The pins are spelled in _cuda_facts.py only (this file's own checks aside).
    sources = [REPO / "CMakeLists.txt", REPO / "pyproject.toml", *(REPO / "cmake").iterdir(),
               *(REPO / "build_support").glob("*.py"), *(REPO / "python").glob("**/*.py"),
               *(REPO / "tools").glob("*.py")]
    spelled = [str(p.relative_to(REPO)) for p in sources if facts.CUBLAS_BUILD_PIN in p.read_text()]
    assert spelled == ["python/fastconv/_cuda_facts.py"]
    # The release check expects cuBLAS where the facts put it, and does not spell the version.
    check_wheel = REPO / "tools" / "check_wheel.py"
    wheel_facts = runpy.run_path(str(check_wheel))
    assert wheel_facts["RPATHS"]["_cuda"] == "$ORIGIN/../" + facts.cublas_lib_dir()
    assert facts.cublas_soname() in wheel_facts["EXTERNAL"]
    assert facts.cublas_lib_dir() == f"nvidia/cu{facts.CUBLAS_MAJOR}/lib"
    for literal in (f"cu{facts.CUBLAS_MAJOR}", f".so.{facts.CUBLAS_MAJOR}"):
        assert literal not in check_wheel.read_text(), literal


def test_backend_finds_nvcc_under_cuda_home_and_cuda_path(tmp_path, monkeypatch):
    pytest.importorskip("scikit_build_core", reason="the build backend is not installed here")
    monkeypatch.syspath_prepend(str(REPO / "build_support"))
    import fastconv_build

    homes = {}
    for var in ("CUDA_HOME", "CUDA_PATH"):
        nvcc = tmp_path / var / "bin" / "nvcc"
        nvcc.parent.mkdir(parents=True)
        nvcc.write_text("#!/bin/sh\n")
        nvcc.chmod(0o755)
        homes[var] = nvcc
    monkeypatch.delenv("CUDACXX", raising=False)
    monkeypatch.setattr(fastconv_build.shutil, "which", lambda name: None)
    monkeypatch.setenv("CUDA_HOME", str(homes["CUDA_HOME"].parent.parent))
    monkeypatch.setenv("CUDA_PATH", str(homes["CUDA_PATH"].parent.parent))
    assert fastconv_build.find_nvcc() == str(homes["CUDA_HOME"])
    monkeypatch.delenv("CUDA_HOME")
    assert fastconv_build.find_nvcc() == str(homes["CUDA_PATH"])
    # CMake follows the same order, from the same facts.
    cmake = (REPO / "cmake" / "cuda.cmake").read_text()
    assert "FASTCONV_NVCC_HOME_VARS" in cmake and "FASTCONV_NVCC_DEFAULT_HOME" in cmake


def test_warnings_are_errors_in_ci_only():
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'FASTCONV_WERROR = { env = "FASTCONV_WERROR", default = "OFF" }' in pyproject
    assert "\nexport FASTCONV_WERROR=ON\n" in (REPO / ".ci" / "run").read_text()
    assert "set(_werror_default OFF)" in (REPO / "CMakeLists.txt").read_text()
