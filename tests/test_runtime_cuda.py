"""The CUDA runtime: DeviceArray, the caching allocator, DLPack / __cuda_array_interface__, TF32,
and the dispatch of fastconv.ops on where an array lives. Tests marked `cuda` need a GPU; the
rest run everywhere (argument checks and 0-size arrays never touch the device)."""
import ctypes
import gc
import types

import numpy as np
import pytest

import fastconv as fc
from fastconv import _native
from fastconv.ops import _args
from helpers import raises_exactly

CUDA = _native.CUDA
needs_module = pytest.mark.skipif(CUDA is None, reason="the CUDA module is not built/loaded: "
                                  + (_native.CUDA_LOAD_ERROR or "?"))
DTYPES = [np.float32, np.float64, np.int64]
SHAPES = [(), (0,), (1,), (7,), (3, 5), (2, 0, 3), (2, 3, 4, 5), (16, 32, 28, 28)]


def host(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "i":
        return np.asarray(rng.integers(-(2**40), 2**40, size=shape, dtype=np.int64))
    return np.asarray(rng.standard_normal(shape), dtype=dtype)  # an array even for shape ()


def capsule_name(cap):
    get = ctypes.pythonapi.PyCapsule_GetName
    get.restype, get.argtypes = ctypes.c_char_p, [ctypes.py_object]
    return get(cap).decode()


# ---- everywhere -------------------------------------------------------------------------------

def test_build_info_and_module_import():
    info = fc.build_info()
    assert info["cuda"]["built"] == (CUDA is not None) or _native.CUDA_LOAD_ERROR
    if CUDA is not None:
        for name in ["DeviceArray", "from_numpy", "empty", "zeros", "from_dlpack",
                     "allocator_stats", "empty_cache", "set_tf32", "tf32", "synchronize"]:
            assert hasattr(CUDA, name), name


@pytest.mark.skipif(fc.cuda_available(), reason="checks the message where no GPU is usable")
def test_to_device_without_gpu_says_why():
    with pytest.raises(RuntimeError, match="to_device needs a usable CUDA GPU: .+"):
        fc.to_device(np.zeros(3, np.float32))
    assert fc.cuda_status() in str(pytest.raises(RuntimeError, fc.to_device, [1.0]).value)


def test_to_host_and_is_device_array_on_host_arrays():
    a = np.arange(3.0)
    assert fc.to_host(a) is a
    assert not fc.is_device_array(a)
    with raises_exactly(TypeError, "x must be a numpy array or a DeviceArray; got list"):
        fc.to_host([1, 2])


def test_backend_dispatches_on_the_array_type(monkeypatch):
    class FakeDeviceArray:
        pass

    fake_cuda = types.SimpleNamespace(DeviceArray=FakeDeviceArray)
    monkeypatch.setattr(_args, "CUDA", fake_cuda)
    assert _args.backend(np.zeros(2)) is _native.C
    assert _args.backend(FakeDeviceArray(), "dy") is fake_cuda
    with pytest.raises(TypeError, match="dy must be a numpy array or a fastconv DeviceArray; got list"):
        _args.backend([1.0], "dy")
    with pytest.raises(TypeError, match="x must be .* got None"):
        _args.backend(None)
    monkeypatch.setattr(_args, "CUDA", None)  # no CUDA module: nothing is a device array
    with pytest.raises(TypeError, match="w must be a numpy array"):
        _args.backend(FakeDeviceArray(), "w")


def test_ops_route_a_device_array_to_the_cuda_module(monkeypatch):
    class FakeDeviceArray:
        pass

    calls = []
    fake_cuda = types.SimpleNamespace(
        DeviceArray=FakeDeviceArray, relu_forward=lambda x: calls.append(x) or "from-cuda")
    monkeypatch.setattr(_args, "CUDA", fake_cuda)
    x = FakeDeviceArray()
    assert fc.ops.relu_forward(x) == "from-cuda" and calls == [x]


def test_tf32_flag_round_trip_without_a_device():
    before = fc.tf32()
    try:
        assert before is False  # plain float32 is the default
        fc.set_tf32(True)
        assert fc.tf32() is True
        if CUDA is not None:
            assert CUDA.tf32() is True
        fc.set_tf32(False)
        assert fc.tf32() is False
    finally:
        fc.set_tf32(before)
    with raises_exactly(TypeError, "on must be a bool; got int 1"):
        fc.set_tf32(1)


# (name, default, a wrong value, its message): the GPU switches stored even without a device.
GPU_SWITCHES = [
    ("gemm_epilogues", True, "no", "on must be a bool; got str 'no'"),  # fused where offered
    ("conv_autotune", False, 1.0, "on must be a bool; got float 1.0"),  # kernels by shape alone
]


@pytest.mark.parametrize("name, default, wrong, message", GPU_SWITCHES,
                         ids=[s[0] for s in GPU_SWITCHES])
def test_gpu_switch_round_trips_without_a_device(name, default, wrong, message):
    setter, getter = getattr(fc, "set_" + name), getattr(fc, name)
    before = getter()
    try:
        assert before is default
        setter(not default)
        assert getter() is (not default)
        if CUDA is not None:
            assert getattr(CUDA, name)() is (not default)
        setter(np.bool_(default))
        assert getter() is default
    finally:
        setter(before)
    with raises_exactly(TypeError, message):
        setter(wrong)


@needs_module
def test_argument_errors_name_the_argument():
    # The shape, dtype, index and DLPack checks: tests/test_device_array_cuda.py.
    with raises_exactly(TypeError, "array must be float32, float64 or int64; got >f4"):
        CUDA.from_numpy(np.zeros(3, ">f4"))  # non-native byte order
    with raises_exactly(ValueError, "array must be C-contiguous (np.ascontiguousarray makes it "
                        "so); got a strided view of shape (6, 4)"):
        CUDA.from_numpy(np.zeros((4, 6), np.float32).T)
    with pytest.raises(TypeError, match="^on must be a bool"):
        CUDA.set_tf32(None)
    with raises_exactly(TypeError, "obj must support DLPack (__dlpack__), e.g. a torch CUDA "
                        "tensor; got list"):
        CUDA.from_dlpack([1.0])
    with raises_exactly(ValueError, "obj must live on a CUDA device (use from_numpy for host "
                        "arrays); got DLPack device type 1"):
        CUDA.from_dlpack(np.zeros(3))  # numpy's __dlpack__ exports host memory
    assert CUDA.allocator_stats()["bytes_in_use"] >= 0


@needs_module
def test_empty_arrays_need_no_device():
    a = CUDA.empty((2, 0, 3), np.float64)
    assert a.shape == (2, 0, 3) and a.dtype == np.float64 and a.size == 0 and a.nbytes == 0
    assert a.ndim == 3 and len(a) == 2 and a.ptr == 0
    assert repr(a) == "DeviceArray(shape=(2, 0, 3), dtype=float64)"
    assert a.to_numpy().shape == (2, 0, 3) and a.to_numpy().dtype == np.float64
    assert a.reshape(0, 6).shape == (0, 6) and a.reshape((3, 2, 0)).shape == (3, 2, 0)
    assert repr(CUDA.empty(0, "int64")) == "DeviceArray(shape=(0,), dtype=int64)"
    with raises_exactly(ValueError, "shape must have 0 elements (the array's size); got 5"):
        a.reshape(5)


# ---- on a GPU ---------------------------------------------------------------------------------

@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_numpy_round_trip(shape, dtype):
    x = host(shape, dtype)
    d = CUDA.from_numpy(x)
    assert d.shape == shape and d.dtype == np.dtype(dtype) and d.ndim == len(shape)
    assert d.size == x.size and d.nbytes == x.nbytes
    back = d.to_numpy()
    assert back.dtype == x.dtype and back.shape == shape and back.flags.c_contiguous
    np.testing.assert_array_equal(back, x)
    assert fc.is_device_array(d) and fc.to_device(d) is d
    np.testing.assert_array_equal(fc.to_host(fc.to_device(x)), x)


@pytest.mark.cuda
def test_to_device_makes_contiguous_copies():
    x = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2]
    np.testing.assert_array_equal(fc.to_host(fc.to_device(x)), x)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_zeros_and_empty(dtype):
    z = CUDA.zeros((3, 1000), dtype)
    assert z.dtype == np.dtype(dtype) and z.shape == (3, 1000)
    assert not z.to_numpy().any()
    e = CUDA.empty(17, dtype=np.dtype(dtype))
    assert e.shape == (17,) and e.to_numpy().shape == (17,)


@pytest.mark.cuda
def test_zero_d_array():
    d = CUDA.from_numpy(np.array(3.5, np.float32))
    assert d.shape == () and d.size == 1 and d.ndim == 0 and float(d.to_numpy()) == 3.5
    with raises_exactly(TypeError, "len() of unsized object"):
        len(d)
    assert d.reshape(1, 1).shape == (1, 1)


@pytest.mark.cuda
def test_reshape_shares_memory():
    a = CUDA.from_numpy(np.arange(24, dtype=np.float32))
    b = a.reshape(2, 3, 4)
    c = a.reshape((4, -1))
    assert b.shape == (2, 3, 4) and c.shape == (4, 6) and b.ptr == a.ptr == c.ptr
    np.testing.assert_array_equal(b.to_numpy(), np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    b.fill(7.0)
    assert (a.to_numpy() == 7.0).all()
    del a, b
    assert (c.to_numpy() == 7.0).all()  # the view keeps the block alive
    with raises_exactly(ValueError, "shape must have 24 elements (the array's size); got (5, 5)"):
        c.reshape(5, 5)
    with raises_exactly(ValueError, "shape must have at most one -1 (inferred) size; got (-1, -1)"):
        c.reshape(-1, -1)


@pytest.mark.cuda
def test_cuda_array_interface():
    d = CUDA.from_numpy(np.arange(6, dtype=np.float64).reshape(2, 3))
    cai = d.__cuda_array_interface__
    assert cai["version"] == 3 and cai["shape"] == (2, 3) and cai["typestr"] == "<f8"
    assert cai["data"] == (d.ptr, False) and cai["strides"] is None
    assert cai["stream"] == CUDA.stream_handle() and cai["stream"] not in (0, 1, 2)
    assert CUDA.from_numpy(np.zeros(1, np.int64)).__cuda_array_interface__["typestr"] == "<i8"
    assert CUDA.empty((0,)).__cuda_array_interface__["data"] == (0, False)


@pytest.mark.cuda
def test_dlpack_capsules_and_lifetime():
    gc.collect()  # earlier tests' garbage freed now, not between the two counts
    before = CUDA.allocator_stats()["bytes_in_use"]
    d = CUDA.from_numpy(np.arange(10, dtype=np.float32))
    assert d.__dlpack_device__() == (2, 0)
    cap = d.__dlpack__()
    assert capsule_name(cap) == "dltensor"
    e = CUDA.from_dlpack(cap)  # our own capsule back: the same memory
    assert capsule_name(cap) == "used_dltensor" and e.ptr == d.ptr and e.shape == (10,)
    with raises_exactly(ValueError, "obj must be an unconsumed 'dltensor' or 'dltensor_versioned' "
                        "capsule; got one named 'used_dltensor' (already used?)"):
        CUDA.from_dlpack(cap)
    v = d.__dlpack__(stream=-1, max_version=(1, 0))
    assert capsule_name(v) == "dltensor_versioned"
    f = CUDA.from_dlpack(v)
    assert capsule_name(v) == "used_dltensor_versioned" and f.ptr == d.ptr
    d.__dlpack__()  # an unconsumed capsule frees its reference when it dies
    with raises_exactly(BufferError, "copy must be None or False (DeviceArray.__dlpack__ exports "
                        "views, not copies); got True"):
        d.__dlpack__(copy=True)
    with raises_exactly(BufferError, "dl_device must be (2, 0) (this DeviceArray's CUDA device); "
                        "got (1, 0)"):
        d.__dlpack__(dl_device=(1, 0))
    with raises_exactly(TypeError, "dl_device must be a (device_type, device_id) pair of ints; "
                        "got 'cuda'"):
        d.__dlpack__(dl_device="cuda")
    del d, cap, e, v, f
    gc.collect()
    assert CUDA.allocator_stats()["bytes_in_use"] == before


@pytest.mark.cuda
def test_allocator_stats_flat_over_1000_cycles():
    # Activation-, weight- and gradient-sized blocks of a small CNN step at batch 64.
    shapes = [(64, 32, 28, 28), (64, 64, 28, 28), (64, 64, 14, 14), (64, 12544), (12544, 128),
              (64, 128), (64, 10), (32, 1, 3, 3), (1, 32, 1, 1), (64,)]

    def cycle():
        arrays = [CUDA.empty(s) for s in shapes]
        arrays.append(CUDA.zeros((64, 10), "int64"))
        del arrays

    cycle()
    first = CUDA.allocator_stats()
    for _ in range(1000):
        cycle()
    after = CUDA.allocator_stats()
    n = len(shapes) + 1
    assert after["malloc_calls"] == first["malloc_calls"], "cudaMalloc after the first cycle"
    assert after["bytes_in_use"] == first["bytes_in_use"]
    assert after["bytes_cached"] == first["bytes_cached"]
    assert after["allocations"] - first["allocations"] == 1000 * n
    assert after["cache_hits"] - first["cache_hits"] == 1000 * n
    CUDA.empty_cache()
    emptied = CUDA.allocator_stats()
    assert emptied["bytes_cached"] == 0 and emptied["free_calls"] > after["free_calls"]
    assert emptied["bytes_in_use"] == after["bytes_in_use"]


@pytest.mark.cuda
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("use_tf32", [False, True])
def test_row_major_gemm(trans_a, trans_b, use_tf32):
    rng = np.random.default_rng(1)
    m, n, k = 37, 53, 129
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    c = rng.standard_normal((m, n)).astype(np.float32)
    want = 1.5 * (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b) + 0.5 * c
    before = fc.tf32()
    try:
        fc.set_tf32(use_tf32)
        dc = CUDA.from_numpy(c)
        CUDA._gemm(trans_a, trans_b, 1.5, CUDA.from_numpy(a), CUDA.from_numpy(b), 0.5, dc)
        got = dc.to_numpy()
    finally:
        fc.set_tf32(before)
    tol = 2e-2 if use_tf32 else 1e-4  # TF32 keeps 10 mantissa bits of each product's inputs
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.sqrt(k))


@needs_module
@pytest.mark.parametrize("index", [-1, 10**6, 2**70, True, "0", None])
def test_device_properties_checks_its_index(index):
    # Out of memory is a MemoryError (tests/test_device_array_cuda.py); other device failures
    # are CudaError; a bad device number is the caller's ValueError, with or without a device.
    with raises_exactly(ValueError, f"index must be a device number in [0, {CUDA.device_count()}); "
                        f"got {index!r}"):
        CUDA.device_properties(index)


def _torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    return torch


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_dlpack_round_trip_with_torch(dtype):
    torch = _torch_cuda()
    x = host((4, 5, 6), dtype)
    d = CUDA.from_numpy(x)
    t = torch.from_dlpack(d)
    assert t.is_cuda and t.data_ptr() == d.ptr and tuple(t.shape) == x.shape
    np.testing.assert_array_equal(t.cpu().numpy(), x)
    back = CUDA.from_dlpack(t)
    assert back.ptr == d.ptr and back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back.to_numpy(), x)
    # torch's writes show through fastconv's view of the same memory (once torch's stream is done).
    t.add_(1)
    torch.cuda.synchronize()
    np.testing.assert_array_equal(d.to_numpy(), x + 1)
    # __cuda_array_interface__ too
    u = torch.as_tensor(d, device="cuda")
    assert u.data_ptr() == d.ptr


@pytest.mark.cuda
def test_from_dlpack_shares_torch_memory_and_keeps_it_alive():
    torch = _torch_cuda()
    t = torch.arange(12, dtype=torch.float32, device="cuda").reshape(3, 4)
    a = CUDA.from_dlpack(t)
    assert a.shape == (3, 4) and a.dtype == np.float32 and a.ptr == t.data_ptr()
    t.mul_(2)  # on torch's stream; to_numpy runs on ours, hence the synchronize
    torch.cuda.synchronize()
    np.testing.assert_array_equal(a.to_numpy(), np.arange(12, dtype=np.float32).reshape(3, 4) * 2)
    a.fill(-1.0)  # written through fastconv, read through torch
    CUDA.synchronize()
    assert (t == -1).all().item()
    del t
    gc.collect()
    torch.cuda.empty_cache()
    assert (a.to_numpy() == -1).all()  # the DeviceArray holds torch's storage
    sl = torch.arange(10, dtype=torch.float32, device="cuda")[2:8]  # contiguous, byte offset
    np.testing.assert_array_equal(CUDA.from_dlpack(sl).to_numpy(), np.arange(2, 8, dtype=np.float32))


@pytest.mark.cuda
def test_from_dlpack_rejects_what_it_cannot_view():
    torch = _torch_cuda()
    with raises_exactly(ValueError, "obj must be C-contiguous (call .contiguous() on a torch "
                        "tensor); got strides (1, 6) for shape (6, 4)"):
        CUDA.from_dlpack(torch.zeros(4, 6, device="cuda").t())
    with raises_exactly(TypeError, "obj must have DLPack dtype float32, float64 or int64; got "
                        "(code 0, bits 32, lanes 1)"):
        CUDA.from_dlpack(torch.zeros(4, dtype=torch.int32, device="cuda"))
    with raises_exactly(ValueError, "obj must live on a CUDA device (use from_numpy for host "
                        "arrays); got DLPack device type 1"):
        CUDA.from_dlpack(torch.zeros(4))
