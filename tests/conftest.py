import pytest

import fastconv as fc
from fastconv._native import C


@pytest.fixture(autouse=True, scope="session")
def poison_outputs():
    """Every output the kernels allocate starts as NaN, so an element left unwritten fails."""
    C._set_poison_outputs(True)
    yield
    C._set_poison_outputs(False)


@pytest.fixture
def poison_gpu_outputs():
    """The same for the CUDA kernels' outputs; the tests/test_X_cuda.py files of the ops use it
    (`pytestmark`), and only they: it needs a GPU."""
    from fastconv._native import CUDA

    CUDA._set_poison_outputs(True)
    yield
    CUDA._set_poison_outputs(False)


@pytest.fixture
def tf32_off():
    """Plain float32 GEMMs on the GPU for the test (compared at float32's tolerance), the setting
    before restored after."""
    before = fc.tf32()
    fc.set_tf32(False)
    yield
    fc.set_tf32(before)


@pytest.fixture(params=[True, False], ids=["fused", "own"])
def epilogues(request):
    """The test twice on the GPU: with the bias and ReLU (and dense's bias gradient) in cuBLASLt
    GEMM epilogues where cuBLASLt offers them, and with fastconv's own passes."""
    before = fc.gemm_epilogues()
    fc.set_gemm_epilogues(request.param)
    yield request.param
    fc.set_gemm_epilogues(before)


@pytest.fixture
def own_passes():
    """fastconv's own passes around the GEMMs (no cuBLASLt epilogues) for the test: their
    results are fixed bit for bit, which a test of bitwise equality needs."""
    before = fc.gemm_epilogues()
    fc.set_gemm_epilogues(False)
    yield
    fc.set_gemm_epilogues(before)


def pytest_collection_modifyitems(config, items):
    if fc.cuda_available():
        return
    skip = pytest.mark.skip(reason="no usable GPU: " + fc.cuda_status())
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
