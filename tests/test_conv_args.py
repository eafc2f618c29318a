"""conv2d's malformed calls and extreme geometry: each refused with a message naming the argument,
or answered exactly (the kernels' tests: test_conv.py)."""
import numpy as np
import pytest

import fastconv as fc
import fastconv.ops as ops
import fastconv.reference as ref
from helpers import assert_close, rand, raises_exactly
from test_conv import _data


I64 = 2**63 - 1  # the largest size int64 holds
RANGE = "[-9223372036854775808, 9223372036854775807]"


def _bad_calls():
    f32 = np.float32
    x = np.zeros((2, 3, 8, 8), f32)
    w = np.zeros((4, 3, 3, 3), f32)
    dy = np.zeros((2, 4, 6, 6), f32)
    fwd, bwd, scratch = ops.conv2d_forward, ops.conv2d_backward, ops.conv2d_scratch_bytes
    reach9 = "+ 2 * padding must be at least the kernel's reach 9"
    return [
        ("x-ndim", lambda: fwd(x[0], w), ValueError,
         "x must be 4-D (N, C, H, W); got shape (3, 8, 8)"),
        ("w-ndim", lambda: fwd(x, w[0]), ValueError,
         "w must be 4-D (K, C, kh, kw); got shape (3, 3, 3)"),
        ("dy-ndim", lambda: bwd(x, w, dy[0]), ValueError,
         "dy must be 4-D (N, K, OH, OW); got shape (4, 6, 6)"),
        ("w-int", lambda: fwd(x, w.astype(np.int32)), TypeError,
         "w must have dtype float32 or float64; got int32"),
        ("x-int", lambda: fwd(x.astype(np.int64), w), TypeError,
         "x must have dtype float32 or float64; got int64"),
        ("w-f64", lambda: fwd(x, w.astype(np.float64)), TypeError,
         "w must have the dtype of x (float32); got float64"),
        ("dy-f64", lambda: bwd(x, w, dy.astype(np.float64)), TypeError,
         "dy must have the dtype of x (float32); got float64"),
        ("channels", lambda: fwd(x, np.zeros((4, 2, 3, 3), f32)), ValueError,
         "w.shape[1] must be 3 (x's channels); got shape (4, 2, 3, 3)"),
        ("output<1", lambda: fwd(x, np.zeros((4, 3, 9, 3), f32)), ValueError,
         f"x.shape[2] (height) {reach9} (kernel height 9, dilation 1); "
         "got height 8 with padding 0"),
        ("output<1-dil", lambda: fwd(x, w, dilation=4), ValueError,
         f"x.shape[2] (height) {reach9} (kernel height 3, dilation 4); "
         "got height 8 with padding 0"),
        ("output<1-width",
         lambda: fwd(x, np.zeros((4, 3, 3, 5), f32), padding=(0, 1), dilation=(1, 3)), ValueError,
         "x.shape[3] (width) + 2 * padding must be at least the kernel's reach 13 "
         "(kernel width 5, dilation 3); got width 8 with padding 1"),
        ("stride0", lambda: fwd(x, w, stride=0), ValueError,
         "stride must be >= 1 in both dimensions; got (0, 0)"),
        ("stride-neg", lambda: fwd(x, w, stride=(1, -2)), ValueError,
         "stride must be >= 1 in both dimensions; got (1, -2)"),
        ("padding-neg", lambda: fwd(x, w, padding=-1), ValueError,
         "padding must be >= 0 in both dimensions; got (-1, -1)"),
        ("dilation0", lambda: fwd(x, w, dilation=0), ValueError,
         "dilation must be >= 1 in both dimensions; got (0, 0)"),
        ("x-noncontig", lambda: fwd(x[:, :, :, ::2], np.zeros((4, 3, 2, 2), f32)), ValueError,
         "x must be C-contiguous (pass numpy.ascontiguousarray(x)); got shape (2, 3, 8, 4) with "
         "strides (768, 256, 32, 8)"),
        ("w-noncontig", lambda: fwd(x, np.zeros((3, 4, 3, 3), f32).transpose(1, 0, 2, 3)),
         ValueError, "w must be C-contiguous (pass numpy.ascontiguousarray(w)); got shape "
         "(4, 3, 3, 3) with strides (36, 144, 12, 4)"),
        ("b-size", lambda: fwd(x, w, np.zeros(5, f32)), ValueError,
         "b must have shape (4,) or (1, 4, 1, 1) (w's output channels); got (5,)"),
        ("b-shape", lambda: fwd(x, w, np.zeros((4, 1), f32)), ValueError,
         "b must have shape (4,) or (1, 4, 1, 1) (w's output channels); got (4, 1)"),
        ("b-dtype", lambda: fwd(x, w, np.zeros(4, np.float64)), TypeError,
         "b must have the dtype of x (float32); got float64"),
        ("dy-shape", lambda: bwd(x, w, np.zeros((2, 4, 6, 5), f32)), ValueError,
         "dy must have the output's shape (2, 4, 6, 6); got (2, 4, 6, 5)"),
        ("dy-shape-stride", lambda: bwd(x, w, dy, stride=2), ValueError,
         "dy must have the output's shape (2, 4, 3, 3); got (2, 4, 6, 6)"),
        ("x-None", lambda: fwd(None, w), TypeError,
         "x must be a numpy array or a fastconv DeviceArray; got None"),
        ("x-None-bwd", lambda: bwd(None, w, dy), TypeError,
         "x must be a numpy array or a fastconv DeviceArray; got None"),
        ("w-list", lambda: fwd(x, w.tolist()), TypeError,
         "w must be a numpy array (K, C, kh, kw); got list"),
        ("dy-list", lambda: bwd(x, w, dy.tolist()), TypeError,
         "dy must be a numpy array (N, K, OH, OW); got list"),
        ("stride-3", lambda: fwd(x, w, stride=(1, 1, 1)), ValueError,
         "stride must be an int or a pair of ints (h, w); got (1, 1, 1)"),
        ("stride-bool", lambda: fwd(x, w, stride=True), TypeError,
         "stride must be an int or a pair of ints; got bool True"),
        ("stride-bool-pair", lambda: fwd(x, w, stride=(1, False)), TypeError,
         "stride must hold ints, not bools; got (1, False)"),
        ("padding-float", lambda: fwd(x, w, padding=1.5), TypeError,
         "padding must be an int or a pair of ints; got float 1.5"),
        ("padding-None", lambda: fwd(x, w, padding=None), TypeError,
         "padding must be an int or a pair of ints; got NoneType None"),
        ("dilation-floats", lambda: fwd(x, w, dilation=(1.0, 2.0)), TypeError,
         "dilation must hold ints; got (1.0, 2.0)"),
        ("scratch-dilation", lambda: scratch(x, w, dilation=(1, 0)), ValueError,
         "dilation must be >= 1 in both dimensions; got (1, 0)"),
        ("relu-None", lambda: fwd(x, w, relu=None), TypeError,
         "relu must be a bool; got NoneType None"),
        ("relu_y-shape", lambda: bwd(x, w, dy, relu_y=dy[:1]), ValueError,
         "relu_y must have the shape of dy (2, 4, 6, 6); got (1, 4, 6, 6)"),
        ("relu_y-dtype", lambda: bwd(x, w, dy, relu_y=dy.astype(np.float64)), TypeError,
         "relu_y must have the dtype of dy (float32); got float64"),
        # need_dx='no' used to be truthy, and returned dx
        ("need_dx-str", lambda: bwd(x, w, dy, need_dx="no"), TypeError,
         "need_dx must be a bool; got str 'no'"),
        ("need_db-int", lambda: bwd(x, w, dy, need_db=0), TypeError,
         "need_db must be a bool; got int 0"),
        # empty axes: batch and channels were refused before, height and width now too
        ("x-batch0", lambda: fwd(np.zeros((0, 3, 8, 8), f32), w), ValueError,
         "x.shape[0] (batch) must be positive; got shape (0, 3, 8, 8)"),
        ("x-channels0", lambda: fwd(np.zeros((2, 0, 8, 8), f32), np.zeros((4, 0, 3, 3), f32)),
         ValueError, "x.shape[1] (channels) must be positive; got shape (2, 0, 8, 8)"),
        ("x-height0", lambda: fwd(np.zeros((2, 3, 0, 8), f32), w, padding=2), ValueError,
         "x.shape[2] (height) must be positive; got shape (2, 3, 0, 8)"),
        ("x-width0", lambda: fwd(np.zeros((2, 3, 8, 0), f32), w, padding=2), ValueError,
         "x.shape[3] (width) must be positive; got shape (2, 3, 8, 0)"),
        ("x-height0-bwd", lambda: bwd(np.zeros((2, 3, 0, 8), f32), w, dy, padding=2),
         ValueError, "x.shape[2] (height) must be positive; got shape (2, 3, 0, 8)"),
        ("w-out0", lambda: fwd(x, np.zeros((0, 3, 3, 3), f32)), ValueError,
         "w.shape[0] (output channels) must be positive; got shape (0, 3, 3, 3)"),
        ("w-kh0", lambda: fwd(x, np.zeros((4, 3, 0, 3), f32)), ValueError,
         "w.shape[2] (kernel height) must be positive; got shape (4, 3, 0, 3)"),
        ("w-kw0", lambda: fwd(x, np.zeros((4, 3, 3, 0), f32)), ValueError,
         "w.shape[3] (kernel width) must be positive; got shape (4, 3, 3, 0)"),
        # sizes past int64 never reach C++ (pybind11 answered with its signature)
        ("stride-2**63", lambda: fwd(x, w, stride=2**63), ValueError,
         f"stride must hold int64 values, in {RANGE}; got {2**63}"),
        ("padding-pair-2**63", lambda: fwd(x, w, padding=(0, 2**63)), ValueError,
         f"padding must hold int64 values, in {RANGE}; got (0, {2**63})"),
        ("dilation--2**63-1", lambda: fwd(x, w, dilation=-(2**63) - 1), ValueError,
         f"dilation must hold int64 values, in {RANGE}; got {-(2**63) - 1}"),
        ("stride-uint64", lambda: fwd(x, w, stride=np.uint64(2**64 - 1)), ValueError,
         f"stride must hold int64 values, in {RANGE}; got {2**64 - 1}"),
        # geometry whose arithmetic overflows int64 (dilation 2**62 crashed, 2**63-1 gave 10x10)
        ("dilation-2**62", lambda: fwd(x, w, dilation=2**62), ValueError,
         "dilation must be at most 4611686018427387903 for a kernel height of 3, so that "
         f"dilation * (kernel height - 1) + 1 fits in int64; got ({2**62}, {2**62})"),
        ("dilation-max", lambda: fwd(x, w, dilation=(1, I64)), ValueError,
         "dilation must be at most 4611686018427387903 for a kernel width of 3, so that "
         f"dilation * (kernel width - 1) + 1 fits in int64; got (1, {I64})"),
        ("dilation-edge", lambda: fwd(x, w, dilation=(4611686018427387903, 1)), ValueError,
         "x.shape[2] (height) + 2 * padding must be at least the kernel's reach "
         f"{I64} (kernel height 3, dilation 4611686018427387903); got height 8 with padding 0"),
        ("padding-2**62", lambda: fwd(x, w, padding=2**62), ValueError,
         "padding must be at most 4611686018427387899 for an input height of 8, so that "
         f"height + 2 * padding fits in int64; got ({2**62}, {2**62})"),
        ("padding-max-bwd", lambda: bwd(x, w, dy, padding=(0, I64)), ValueError,
         "padding must be at most 4611686018427387899 for an input width of 8, so that "
         f"width + 2 * padding fits in int64; got (0, {I64})"),
        ("padding-edge", lambda: fwd(x, w, padding=(0, 4611686018427387899)), ValueError,
         "x and w with this stride, padding and dilation must give an output of fewer than "
         "2**60 elements; got output shape (2, 4, 6, 9223372036854775804)"),
        # the scratch size wrapped around
        ("scratch-padding-2**30", lambda: scratch(x, w, padding=2**30), ValueError,
         "x and w with this stride, padding and dilation must give an output of fewer than "
         "2**60 elements; got output shape (2, 4, 2147483654, 2147483654)"),
        ("im2col-per-sample", lambda: fwd(np.zeros((1, 1024, 1, 1), f32),
                                          np.zeros((1, 1024, 1, 1), f32), padding=2**26),
         ValueError, "x and w with this stride, padding and dilation must give an im2col "
         "matrix of fewer than 2**60 elements per sample; got 1024 rows (C * kh * kw) by "
         "18014398777917441 columns (OH * OW)"),
    ]


BAD = _bad_calls()


@pytest.mark.parametrize("call,exc,message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_conv2d_rejects_malformed_calls(call, exc, message):
    with raises_exactly(exc, message):
        call()


def test_reproducer_huge_dilation_is_refused_by_the_layer_api():
    x, w = np.ones((1, 1, 8, 8), np.float32), np.ones((1, 1, 5, 5), np.float32)
    for d in (2**62, I64):
        with raises_exactly(ValueError, "dilation must be at most 2305843009213693951 for a "
                            "kernel height of 5, so that dilation * (kernel height - 1) + 1 "
                            f"fits in int64; got ({d}, {d})"):
            fc.conv2d(x, w, dilation=d)


@pytest.mark.parametrize("stride", [9, 2**62, I64])
def test_a_stride_past_the_image_gives_the_first_window(stride):
    # One output per axis whatever the stride: no stride * o is formed past o = 0.
    rng = np.random.default_rng(5)
    x, w = rand(rng, 2, 3, 8, 8), rand(rng, 4, 3, 3, 3)
    y = ops.conv2d_forward(x, w, stride=stride, padding=1)
    assert_close(y, ref.conv2d_forward(x, w, stride=9, padding=1), reduction=27)
    dy = rand(rng, *y.shape)
    got = ops.conv2d_backward(x, w, dy, stride=stride, padding=1)
    for a, e in zip(got, ref.conv2d_backward(x, w, dy, stride=9, padding=1)):
        assert_close(a, e, reduction=27)


def test_huge_padding_along_one_axis_with_a_huge_stride():
    # Width: padding 2**62 - 8 and a stride reaching the far side: two outputs, each reading only
    # padding. The column arithmetic (padding + stride) exceeds int64 if formed naively.
    x, w = np.ones((1, 1, 2, 8), np.float64), np.ones((1, 1, 1, 1), np.float64)
    p = 2**62 - 8
    stride = 8 + 2 * p - 1  # the second window starts at the last padded column
    y = ops.conv2d_forward(x, w, stride=(1, stride), padding=(0, p))
    np.testing.assert_array_equal(y, np.zeros((1, 1, 2, 2)))
    dx, dw, db = ops.conv2d_backward(x, w, np.ones_like(y), stride=(1, stride), padding=(0, p))
    np.testing.assert_array_equal(dx, np.zeros_like(x))
    np.testing.assert_array_equal(dw, np.zeros_like(w))


def test_need_dx_and_need_db_take_numpy_bools():
    x, w, b, geo = _data((2, 3, 6, 7, 4, 3, 3, 1, 1, 1, True), np.float32)
    dy = np.ones_like(ops.conv2d_forward(x, w, b, **geo))
    dx, _, db = ops.conv2d_backward(x, w, dy, need_dx=np.bool_(False), need_db=np.bool_(True),
                                    **geo)
    assert dx is None and db.shape == (4,)


def _kernel_modules():
    from fastconv import _native
    return [m for m in (_native.C, _native.CUDA) if m is not None]


# The compiled kernels called directly (fastconv._C / _cuda): every size pair goes through one
# parser whose errors are worded as fastconv.ops._args.pair words them; once, pybind11 answered a
# malformed pair with its "incompatible function arguments" signature dump.
BAD_PAIRS = [None, True, np.bool_(True), "ab", b"ab", 1.5, [1, 2, 3], (1,), (True, 1), (1.0, 2),
             (2**63, 1), -(2**64), object(), "long " * 10]


def _direct_calls(module, name, value):
    x = np.zeros((1, 1, 8, 8), np.float32)
    w = np.zeros((1, 1, 3, 3), np.float32)
    dy = np.zeros((1, 1, 6, 6), np.float32)
    conv = {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1)}
    pool = {"filter": (2, 2), "stride": (2, 2), "padding": (0, 0)}
    calls = []
    if name in conv:
        a = {**conv, name: value}
        calls += [
            lambda: module.conv2d_forward(x, w, None, a["stride"], a["padding"], a["dilation"],
                                          False),
            lambda: module.conv2d_backward(x, w, dy, a["stride"], a["padding"], a["dilation"],
                                           True, True, None),
            lambda: module.conv2d_scratch_bytes(x, w, a["stride"], a["padding"], a["dilation"]),
        ]
        if hasattr(module, "conv2d_output_shape"):
            calls.append(lambda: module.conv2d_output_shape(x, w, a["stride"], a["padding"],
                                                            a["dilation"]))
    if name in pool:
        p = {**pool, name: value}
        calls += [
            lambda: module.max_pool2d_forward(x, p["filter"], p["stride"], p["padding"], False),
            lambda: module.average_pool2d_forward(x, p["filter"], p["stride"], p["padding"],
                                                  False, True),
        ]
    return calls


@pytest.mark.parametrize("name", ["stride", "padding", "dilation", "filter"])
@pytest.mark.parametrize("value", BAD_PAIRS, ids=repr)
def test_kernels_called_directly_word_bad_pairs_as_the_ops_layer(name, value):
    from fastconv.ops._args import pair
    with pytest.raises((TypeError, ValueError)) as python_side:
        pair(value, name)
    for module in _kernel_modules():
        for call in _direct_calls(module, name, value):
            with raises_exactly(python_side.type, str(python_side.value)):
                call()


def test_kernels_called_directly_name_the_bad_pair():
    x = np.zeros((1, 1, 8, 8), np.float32)
    w = np.zeros((1, 1, 3, 3), np.float32)
    for module in _kernel_modules():
        message = "stride must be an int or a pair of ints; got NoneType None"
        with raises_exactly(TypeError, message):
            module.conv2d_forward(x, w, None, None, (0, 0), (1, 1), False)
        with raises_exactly(ValueError, "padding must be an int or a pair of ints (h, w); got [1]"):
            module.conv2d_forward(x, w, None, (1, 1), [1], (1, 1), False)
        with raises_exactly(TypeError, "filter must hold ints; got (2.0, 2)"):
            module.max_pool2d_forward(x, (2.0, 2), (1, 1), (0, 0), False)
    # What the ops layer accepts, the kernels accept too: an int, a list, numpy ints.
    from fastconv import _C
    assert _C.conv2d_forward(x, w, None, 2, [0, 0], (np.int64(1), 1), False).shape == (1, 1, 3, 3)
