"""DeviceArray's Python surface from issue 8: len(), first-axis slicing as views (no copy),
__repr__, and clean errors for malformed indices, shapes and DLPack capsules. Empty arrays and the
argument checks need no device, so most of this runs everywhere the CUDA module is built; what
reads or writes device memory is marked `cuda`."""
import ctypes
import gc

import numpy as np
import pytest

from fastconv import _native
from helpers import raises_exactly

CUDA = _native.CUDA
pytestmark = pytest.mark.skipif(CUDA is None, reason="the CUDA module is not built/loaded: "
                                + (_native.CUDA_LOAD_ERROR or "?"))

STEP_HINT = "index must be an int or a slice along the first axis (step 1); got "


# ---- without a device: shapes, repr and the checks --------------------------------------------

def test_len_and_repr_of_an_empty_array():
    a = CUDA.empty((3, 0, 2), "float64")
    assert len(a) == 3
    assert repr(a) == "DeviceArray(shape=(3, 0, 2), dtype=float64)"
    assert repr(CUDA.zeros((0,), "int64")) == "DeviceArray(shape=(0,), dtype=int64)"


@pytest.mark.parametrize("index, shape", [
    (slice(1, None), (2, 0, 2)), (slice(None, 1), (1, 0, 2)), (slice(-2, None), (2, 0, 2)),
    (slice(1, 2), (1, 0, 2)), (slice(2, 1), (0, 0, 2)), (slice(-100, 100), (3, 0, 2)),
    (slice(None, None, 1), (3, 0, 2)), (0, (0, 2)), (-1, (0, 2)), (2, (0, 2)),
    (np.int64(1), (0, 2)), ((1,), (0, 2)), ((slice(0, 2),), (2, 0, 2)),
])
def test_first_axis_indexing_shapes(index, shape):
    a = CUDA.empty((3, 0, 2))
    view = a[index]
    assert view.shape == shape and view.dtype == np.float32 and view.ptr == 0


def test_iteration_stops_at_the_end():
    rows = list(CUDA.empty((4, 0)))
    assert len(rows) == 4 and all(r.shape == (0,) for r in rows)


@pytest.mark.parametrize("index, exc, message", [
    (slice(None, None, 2), ValueError,
     "index must be a slice with step 1 (a view of whole rows); got step 2"),
    (slice(None, None, -1), ValueError,
     "index must be a slice with step 1 (a view of whole rows); got step -1"),
    ((0, 1), TypeError, STEP_HINT + "tuple (0, 1)"),
    ((slice(None), 0), TypeError, STEP_HINT + "tuple (slice(None, None, None), 0)"),
    ([0, 1], TypeError, STEP_HINT + "list [0, 1]"),
    (np.array([0]), TypeError, STEP_HINT + "ndarray array([0])"),
    (1.5, TypeError, STEP_HINT + "float 1.5"),
    (True, TypeError, STEP_HINT + "bool True"),
    (np.True_, TypeError, STEP_HINT + "bool np.True_"),
    ("0", TypeError, STEP_HINT + "str '0'"),
    (Ellipsis, TypeError, STEP_HINT + "ellipsis Ellipsis"),
    (None, TypeError, STEP_HINT + "NoneType None"),
    (slice(1.5, None), TypeError, "index must be a slice of ints or None; got slice(1.5, None, None)"),
    (3, IndexError, "index must be in [-3, 3) for axis 0 of shape (3, 0, 2); got 3"),
    (-4, IndexError, "index must be in [-3, 3) for axis 0 of shape (3, 0, 2); got -4"),
    (2**70, IndexError,
     "index must be in [-3, 3) for axis 0 of shape (3, 0, 2); got 1180591620717411303424"),
])
def test_malformed_indices_are_refused(index, exc, message):
    a = CUDA.empty((3, 0, 2))
    with raises_exactly(exc, message):
        a[index]


def test_a_device_array_is_not_an_index():
    a = CUDA.empty((3, 0))
    with raises_exactly(TypeError, STEP_HINT + "DeviceArray DeviceArray(shape=(3, 0), dtype=float32)"):
        a[a]


@pytest.mark.parametrize("call, exc, message", [
    (lambda: CUDA.empty((2, -1)), ValueError, "shape must hold non-negative sizes; got (2, -1)"),
    (lambda: CUDA.empty((2**40, 2**40)), ValueError,
     "shape must have at most 2**58 elements; got (1099511627776, 1099511627776)"),
    (lambda: CUDA.zeros((2**70,)), ValueError,
     "shape must hold sizes below 2**58; got (1180591620717411303424,)"),
    (lambda: CUDA.empty([1] * 65), ValueError, "shape must have at most 64 dimensions; got 65"),
    (lambda: CUDA.empty("12"), TypeError, "shape must be an int or a sequence of ints; got str"),
    (lambda: CUDA.empty((2, 1.5)), TypeError,
     "shape must be an int or a sequence of ints; got (2, 1.5)"),
    (lambda: CUDA.empty((2, True)), TypeError,
     "shape must be an int or a sequence of ints; got (2, True)"),
    (lambda: CUDA.empty(None), TypeError, "shape must be an int or a sequence of ints; got NoneType"),
    (lambda: CUDA.zeros((2,), "no-such-type"), TypeError,
     "dtype must be a numpy dtype or its name; got 'no-such-type'"),
    (lambda: CUDA.empty((2,), "int8"), TypeError,
     "dtype must be float32, float64 or int64; got int8"),
    (lambda: CUDA.empty((0, 6)).reshape(5), ValueError,
     "shape must have 0 elements (the array's size); got 5"),
    (lambda: CUDA.empty((0, 6)).reshape(-1, -1), ValueError,
     "shape must have at most one -1 (inferred) size; got (-1, -1)"),
    (lambda: CUDA.empty((0, 6)).reshape("ab"), TypeError,
     "shape must be an int or a sequence of ints (one may be -1); got str"),
    (lambda: CUDA.from_numpy([1.0]), TypeError, "array must be a numpy array; got list"),
    (lambda: CUDA.from_numpy(np.zeros(3, np.int32)), TypeError,
     "array must be float32, float64 or int64; got int32"),
    (lambda: CUDA.from_numpy(np.zeros((4, 6), np.float32)[:, ::2]), ValueError,
     "array must be C-contiguous (np.ascontiguousarray makes it so); got a strided view of "
     "shape (4, 3)"),
])
def test_malformed_array_calls(call, exc, message):
    with raises_exactly(exc, message):
        call()


def test_len_of_an_empty_reshape_to_zero_d_is_impossible_without_a_device():
    # 0-d arrays hold one element, hence device memory: their len() is checked on the GPU below.
    with raises_exactly(ValueError, "shape must have 0 elements (the array's size); got ()"):
        CUDA.empty((0,)).reshape(())


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"stream": 0}, ValueError, "stream must be None, -1 (no sync), 1 (legacy default), 2 "
     "(per-thread) or a stream handle; got 0 (ambiguous for CUDA)"),
    ({"stream": -7}, ValueError, "stream must be None, -1 (no sync), 1 (legacy default), 2 "
     "(per-thread) or a stream handle; got -7"),
    ({"stream": 1.5}, TypeError, "stream must be an int; got float"),
    ({"stream": 2**70}, ValueError, "stream must fit in 64 bits; got 1180591620717411303424"),
    ({"max_version": "ab"}, TypeError, "max_version must be a (major, minor) pair of ints; got 'ab'"),
    ({"max_version": (1,)}, TypeError, "max_version must be a (major, minor) pair of ints; got (1,)"),
    ({"copy": True}, BufferError, "copy must be None or False (DeviceArray.__dlpack__ exports "
     "views, not copies); got True"),
    ({"copy": "yes"}, TypeError, "copy must be a bool; got str"),
])
def test_dlpack_export_arguments(kwargs, exc, message):
    a = CUDA.empty((2, 0))
    with pytest.raises(exc) as info:
        a.__dlpack__(**kwargs)
    if "copy" in kwargs and kwargs["copy"] == "yes":  # the shared bool check's own wording
        assert "copy must be a bool" in str(info.value)
    else:
        assert str(info.value) == message


# ---- malformed DLPack capsules (built with ctypes, as a buggy producer might) ---------------------

class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device_type", ctypes.c_int32),
                ("device_id", ctypes.c_int32), ("ndim", ctypes.c_int32),
                ("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16),
                ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p),
                ("deleter", ctypes.c_void_p)]


def capsule(ndim=1, shape=(4,), strides=None, device_type=2, code=2, bits=32, lanes=1,
            data=0x1000, name=b"dltensor"):
    """A DLPack capsule over fake memory (never read: every case is refused first), and what must
    stay alive while it is used."""
    keep = []
    shp = None
    if shape is not None:
        shp = (ctypes.c_int64 * max(1, len(shape)))(*shape)
        keep.append(shp)
    st = None
    if strides is not None:
        st = (ctypes.c_int64 * len(strides))(*strides)
        keep.append(st)
    t = DLTensor(data, device_type, 0, ndim, code, bits, lanes,
                 ctypes.cast(shp, ctypes.POINTER(ctypes.c_int64)) if shp is not None else None,
                 ctypes.cast(st, ctypes.POINTER(ctypes.c_int64)) if st is not None else None, 0)
    m = DLManagedTensor(t, None, None)
    keep.append(m)
    new = ctypes.pythonapi.PyCapsule_New
    new.restype, new.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    keep.append(name)
    return new(ctypes.addressof(m), name, None), keep


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"ndim": 2, "shape": None}, ValueError,
     "obj must describe its shape; got ndim 2 and no shape array"),
    ({"ndim": -1}, ValueError, "obj must have 0 to 64 dimensions; got ndim -1"),
    ({"ndim": 1000}, ValueError, "obj must have 0 to 64 dimensions; got ndim 1000"),
    ({"ndim": 2, "shape": (3, -2)}, ValueError, "obj must have non-negative sizes; got shape (3, -2)"),
    ({"ndim": 3, "shape": (2**40, 2**40, 2**40)}, ValueError,
     "obj must have at most 2**58 elements; got shape (1099511627776, 1099511627776, 1099511627776)"),
    ({"data": 0}, ValueError, "obj must point at its data; got a null pointer for shape (4,)"),
    ({"ndim": 2, "shape": (2, 3), "strides": (1, 2)}, ValueError,
     "obj must be C-contiguous (call .contiguous() on a torch tensor); got strides (1, 2) for "
     "shape (2, 3)"),
    ({"code": 2, "bits": 16}, TypeError,
     "obj must have DLPack dtype float32, float64 or int64; got (code 2, bits 16, lanes 1)"),
    ({"device_type": 1}, ValueError,
     "obj must live on a CUDA device (use from_numpy for host arrays); got DLPack device type 1"),
    ({"name": b"something_else"}, ValueError,
     "obj must be an unconsumed 'dltensor' or 'dltensor_versioned' capsule; got one named "
     "'something_else' (already used?)"),
])
def test_malformed_dlpack_capsules_are_refused(kwargs, exc, message):
    cap, keep = capsule(**kwargs)
    with raises_exactly(exc, message):
        CUDA.from_dlpack(cap)
    del cap, keep


class Producer:
    def __dlpack__(self, stream=None):
        return "not a capsule"

    def __dlpack_device__(self):
        return (2, 0)


def test_dlpack_producer_with_a_malformed_device():
    class BadDevice(Producer):
        def __dlpack_device__(self):
            return "cuda"

    with raises_exactly(TypeError, "obj.__dlpack_device__() must be a (device_type, device_id) "
                        "pair of ints; got 'cuda'"):
        CUDA.from_dlpack(BadDevice())


@pytest.mark.cuda  # the producer is called with fastconv's stream, which needs a device
def test_dlpack_producer_returning_a_non_capsule():
    with raises_exactly(TypeError, "obj.__dlpack__() must return a DLPack capsule; got str"):
        CUDA.from_dlpack(Producer())


# ---- on a GPU: views share memory and every consumer sees them ----------------------------------

def _arange(shape, dtype=np.float32):
    return np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)


@pytest.mark.cuda
def test_slices_are_views_of_the_same_memory():
    host = _arange((5, 3))
    a = CUDA.from_numpy(host)
    item = a.dtype.itemsize
    for index in [slice(1, 4), slice(None, 1), slice(-2, None), slice(3, 100), 2, -1]:
        v = a[index]
        np.testing.assert_array_equal(v.to_numpy(), host[index])
        start = range(5)[index] if isinstance(index, int) else range(5)[index].start
        assert v.ptr == a.ptr + start * 3 * item
    assert a[2:2].size == 0 and a[2:2].ptr == 0
    a[1:3].fill(-1.0)  # writes through the view land in the parent
    expect = host.copy()
    expect[1:3] = -1
    np.testing.assert_array_equal(a.to_numpy(), expect)
    assert len(a) == 5 and len(a[1:4]) == 3
    assert repr(a[1:4]) == "DeviceArray(shape=(3, 3), dtype=float32)"
    np.testing.assert_array_equal(a[1:4][1].to_numpy(), expect[2])  # a view of a view


@pytest.mark.cuda
def test_a_view_keeps_its_parent_alive():
    gc.collect()  # earlier tests' garbage freed now, not between the two counts
    before = CUDA.allocator_stats()["bytes_in_use"]
    a = CUDA.from_numpy(_arange((4, 1000)))
    v = a[3:]
    del a
    gc.collect()
    assert CUDA.allocator_stats()["bytes_in_use"] > before
    CUDA.empty((4, 1000)).fill(7.0)  # would reuse the block if it had been freed
    np.testing.assert_array_equal(v.to_numpy(), _arange((4, 1000))[3:])
    del v
    gc.collect()
    assert CUDA.allocator_stats()["bytes_in_use"] == before


@pytest.mark.cuda
def test_views_reach_kernels_cai_and_dlpack():
    host = _arange((6, 4)) / 10
    a = CUDA.from_numpy(host)
    v = a[2:5]
    np.testing.assert_array_equal(CUDA.relu_forward(v).to_numpy(), np.maximum(host[2:5], 0))
    np.testing.assert_array_equal(CUDA.argmax(v).to_numpy(), host[2:5].argmax(axis=1))
    cai = v.__cuda_array_interface__
    assert cai["shape"] == (3, 4) and cai["data"] == (v.ptr, False)
    back = CUDA.from_dlpack(v.__dlpack__())
    assert back.ptr == v.ptr and back.shape == (3, 4)
    np.testing.assert_array_equal(back.to_numpy(), host[2:5])
    np.testing.assert_array_equal(v.reshape(-1).to_numpy(), host[2:5].reshape(-1))


@pytest.mark.cuda
def test_zero_d_len_and_index():
    d = CUDA.from_numpy(np.array(3.5, np.float32))
    with raises_exactly(TypeError, "len() of unsized object"):
        len(d)
    with raises_exactly(TypeError, "index must not be given: a 0-d DeviceArray has no axis to "
                        "index; got 0"):
        d[0]
    row = CUDA.from_numpy(np.arange(3, dtype=np.int64))[1]
    assert row.shape == () and int(row.to_numpy()) == 1


@pytest.mark.cuda
def test_out_of_device_memory_is_a_memory_error():
    with pytest.raises(MemoryError, match=r"^DeviceArray: out of memory allocating "
                       r"9007199254740992 bytes of GPU memory \(\d+ bytes in use by fastconv\)$"):
        CUDA.empty((1 << 50,), "float64")  # 8 PiB
    assert CUDA.from_numpy(np.ones(3, np.float32)).to_numpy().sum() == 3  # still usable


@pytest.mark.cuda
def test_fill_refuses_values_float32_cannot_hold():
    a = CUDA.from_numpy(np.zeros(2, np.float32))
    with raises_exactly(ValueError, "value must fit in float32 (|value| <= 3.4028234663852886e+38); "
                        "got 1e+300"):
        a.fill(1e300)
    a[1:].fill(-2.5)
    np.testing.assert_array_equal(a.to_numpy(), [0, -2.5])


@pytest.mark.parametrize("call, message", [
    (lambda a: CUDA.dense_backward(a, a, a, "no", True), "need_dx must be a bool"),
    (lambda a: CUDA.dense_backward(a, a, a, True, None), "need_db must be a bool"),
    (lambda a: CUDA.conv2d_backward(a, a, a, (1, 1), (0, 0), (1, 1), None, True, None),
     "need_dx must be a bool"),
    (lambda a: CUDA.softmax_cross_entropy_backward(a, a, None), "dloss must be a real number"),
])
def test_kernel_flags_are_strict(call, message):
    # pybind11's own casters read need_dx=None as False and answered 'no' with a signature dump.
    # (The shared checks' wording after the name: ", got" or "; got".)
    with pytest.raises(TypeError, match="^" + message + r"[,;] got (str|NoneType)$"):
        call(CUDA.empty((0, 3)))


@pytest.mark.cuda
def test_uploads_through_the_staging_ring_keep_their_own_bytes():
    # Small uploads return before the device has copied them (host_staging.h): each must still
    # hold its own bytes after the ring's 8 slots were reused several times, and after the host
    # array changed; a copy larger than a slot (64 KiB) takes the waiting path.
    rng = np.random.default_rng(9)
    sources = [rng.standard_normal(n).astype(np.float32) for n in (1, 7, 128, 16384) * 6]
    kept = [a.copy() for a in sources]
    uploads = [CUDA.from_numpy(a) for a in sources]
    for a in sources:
        a[...] = np.nan  # the host may change its array at once
    for d, want in zip(uploads, kept):
        np.testing.assert_array_equal(d.to_numpy(), want)
    big = rng.standard_normal(16385).astype(np.float32)  # one float over a slot
    np.testing.assert_array_equal(CUDA.from_numpy(big).to_numpy(), big)
