"""What was built, what is usable, and how the CUDA module behaves without a device."""
import numpy as np
import pytest

import fastconv as fc
from fastconv import _native


def test_build_info_describes_the_build():
    info = fc.build_info()
    assert info["version"] == fc.__version__
    assert "OpenBLAS" in info["blas"] and info["blas_version"]
    assert info["num_threads"] >= 1 and info["openmp_version"] >= 201511
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
        assert "not built" in status or "no usable CUDA device" in status or "failed" in status


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
