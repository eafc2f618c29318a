"""Differentiable ops: each takes numpy arrays or Nodes, runs the kernel from `fastconv.ops`, and
records how to run its backward kernel. Layers are thin wrappers around these.

Inputs. Every array argument (x, w, b, z, t) may be a Node or Variable, a DeviceArray, a numpy
array, or anything numpy reads as an array of numbers (a list or tuple of numbers, a scalar).
- float32 and float64 data are used as they are (non-contiguous data is copied).
- Other real data is cast as numpy would cast it: ints, uints (uint8 pixels, as MNIST has them)
  and bools (True -> 1.0) become float32, or the weights' dtype for x and b of conv2d and
  dense; float16 becomes float32 and long double float64. Integer labels t stay integers.
- None, and object, complex, string, bytes, void or datetime data, raise TypeError naming the
  argument: "x must be an array of real numbers (float, int or bool); got None". Nothing is
  turned into NaN and no imaginary part is dropped.
Shapes and sizes are checked by the kernels, which name the argument too.
"""
from __future__ import annotations

import numpy as np

from . import graphs, ops
from .ops._args import pair
from ._validate import compute_dtype, real_array
from .autograd import Node, as_node, record
from .device import is_device_array, to_device, to_host

__all__ = [
    "conv2d",
    "conv2d_relu_max_pool2d",
    "max_pool2d",
    "average_pool2d",
    "dense",
    "relu",
    "flatten",
    "dropout",
    "softmax_cross_entropy",
]


def _value(node: Node, name: str, dtype=None, device: bool = False):
    """The node's array as the kernels need it: float, C-contiguous, of `dtype` when given, and on
    the GPU when `device` (the op's parameters live there). Data that arrives as uint8 pixels or
    float64 is converted here, once, not in every kernel."""
    v = node._value
    if is_device_array(v):
        return v  # the CUDA bindings check dtype and shape, naming the argument
    if not isinstance(v, np.ndarray) or v.dtype.kind not in "fiub":
        v = real_array(v, name)  # a Node built by hand around something else
    # np.asarray(order="C"), unlike np.ascontiguousarray, keeps 0-d arrays 0-d.
    if device:
        return to_device(np.asarray(v, dtype=np.float32, order="C"))
    if dtype is None:
        dtype = v.dtype if v.dtype.char in "fd" else compute_dtype(v.dtype)
    if v.dtype != dtype or not v.flags.c_contiguous:
        v = np.asarray(v, dtype=dtype, order="C")
    return v


def _weighted_inputs(x, w, b):
    """The nodes (x, w, b) of an op with weights, and their values: w's value sets the dtype and
    the device, and x and b are cast and moved to them (b may be None)."""
    xn, wn = as_node(x, "x"), as_node(w, "w")
    bn = None if b is None else as_node(b, "b")
    wv = _value(wn, "w")
    on_gpu = is_device_array(wv)
    xv = _value(xn, "x", wv.dtype, on_gpu)
    bv = None if bn is None else _value(bn, "b", wv.dtype, on_gpu)
    return (xn, wn, bn), (xv, wv, bv)


def _grad(g, like):
    """A gradient from user arithmetic may be a broadcast view, another dtype, or on the host."""
    if is_device_array(like):
        return g if is_device_array(g) else to_device(np.ascontiguousarray(g, np.float32))
    return np.ascontiguousarray(g, dtype=like.dtype)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, relu=False) -> Node:
    """Cross-correlation of x (N, C, H, W) with w (K, C, kh, kw), plus bias b (1, K, 1, 1).
    relu=True gives relu(conv2d(...)) in one fused kernel, forward and backward.

    w sets the dtype (int/bool w becomes float32); x and b are cast to it, so uint8 images work
    as they are. None, complex, object or string data raise TypeError naming x, w or b."""
    (xn, wn, bn), (xv, wv, bv) = _weighted_inputs(x, w, b)
    y = ops.conv2d_forward(xv, wv, bv, stride, padding, dilation, relu=relu)

    def backward(g):
        dx, dw, db = ops.conv2d_backward(xv, wv, _grad(g, y), stride, padding, dilation,
                                         need_dx=xn._tracked, need_db=bn is not None,
                                         relu_y=y if relu else None)
        return (dx, dw) if bn is None else (dx, dw, db.reshape(bn.shape))

    return record(y, (xn, wn) if bn is None else (xn, wn, bn), backward, "conv2d")


def conv2d_relu_max_pool2d(x, w, b=None, stride=1, padding=0, dilation=1) -> Node:
    """max_pool2d(conv2d(x, w, b, stride, padding, dilation, relu=True), filter=2, stride=2) as
    one node: one kernel each way on the CPU, which keeps the convolution's full-size output in
    scratch instead of in the graph (same values and gradients, bitwise). With the parameters
    on the GPU it is that composition, two nodes. Inputs as for conv2d."""
    (xn, wn, bn), (xv, wv, bv) = _weighted_inputs(x, w, b)
    if is_device_array(wv):
        return max_pool2d(conv2d(xn, wn, bn, stride, padding, dilation, relu=True), 2, 2, 0)
    # The indices stay in the graph, so the compact window codes (what the backward reads).
    y, indices = ops.conv2d_relu_max_pool2d_forward(xv, wv, bv, stride, padding, dilation,
                                                    window_indices=True)

    def backward(g):
        dx, dw, db = ops.conv2d_relu_max_pool2d_backward(
            xv, wv, _grad(g, y), y, indices, stride, padding, dilation, need_dx=xn._tracked,
            need_db=bn is not None, window_indices=True)
        return (dx, dw) if bn is None else (dx, dw, db.reshape(bn.shape))

    return record(y, (xn, wn) if bn is None else (xn, wn, bn), backward,
                  "conv2d_relu_max_pool2d")


def max_pool2d(x, filter=3, stride=1, padding=0, ceil_mode=False) -> Node:
    """Max over each window; padding never wins; ties go to the first maximum. x (N, C, H, W):
    float32/float64 as it is, int/bool data cast to float32."""
    xn = as_node(x, "x")
    xv = _value(xn, "x")
    # Users never see the indices: on the CPU the uint8 window codes, an eighth of the memory the
    # backward reads (the GPU has int64 flat indices only). Filters over 256 taps keep flat ones.
    kh, kw = pair(filter, "filter")  # the op's own parsing: a bad filter fails as it would there
    codes = not is_device_array(xv) and kh * kw <= 256
    y, indices = ops.max_pool2d_forward(xv, filter, stride, padding, ceil_mode,
                                        window_indices=codes)

    def backward(g):
        return (ops.max_pool2d_backward(xv, _grad(g, y), indices, filter, stride, padding,
                                        ceil_mode, window_indices=codes),)

    return record(y, (xn,), backward, "max_pool2d")


def average_pool2d(x, filter=3, stride=1, padding=0, ceil_mode=False,
                   count_include_pad=True) -> Node:
    """Mean over each window; padded zeros count unless count_include_pad=False. x (N, C, H, W):
    float32/float64 as it is, int/bool data cast to float32."""
    xn = as_node(x, "x")
    xv = _value(xn, "x")
    y = ops.average_pool2d_forward(xv, filter, stride, padding, ceil_mode, count_include_pad)

    def backward(g):
        return (ops.average_pool2d_backward(xv, _grad(g, y), filter, stride, padding, ceil_mode,
                                            count_include_pad),)

    return record(y, (xn,), backward, "average_pool2d")


def dense(x, w, b=None, relu=False) -> Node:
    """x (N, In) @ w (In, Out) + b (1, Out). w sets the dtype (int/bool w becomes float32); x and
    b are cast to it. None, complex, object or string data raise TypeError naming x, w or b.
    relu=True gives relu(dense(...)) as one node, its ReLU fused into the kernels both ways."""
    (xn, wn, bn), (xv, wv, bv) = _weighted_inputs(x, w, b)
    y = ops.dense_forward(xv, wv, bv, relu=relu)

    def backward(g):
        dx, dw, db = ops.dense_backward(xv, wv, _grad(g, y), need_dx=xn._tracked,
                                        need_db=bn is not None, relu_y=y if relu else None)
        return (dx, dw) if bn is None else (dx, dw, db.reshape(bn.shape))

    return record(y, (xn, wn) if bn is None else (xn, wn, bn), backward, "dense")


def relu(x) -> Node:
    """max(x, 0), any shape. float32/float64 as it is, int/bool data cast to float32."""
    xn = as_node(x, "x")
    y = ops.relu_forward(_value(xn, "x"))
    return record(y, (xn,), lambda g: (ops.relu_backward(_grad(g, y), y),), "relu")


def flatten(x) -> Node:
    """(N, ...) -> (N, prod(...)), a view; x needs at least one axis (N). int/bool data is cast
    to float32 like every op's input."""
    xn = as_node(x, "x")
    v = xn._value if xn._tracked else _value(xn, "x")
    if v.ndim < 1:
        raise ValueError(f"x must have at least 1 dimension (N, ...); got shape {tuple(v.shape)}")
    if xn._tracked:
        return xn.reshape(v.shape[0], -1)
    return Node(v.reshape(v.shape[0], -1))  # numpy and DeviceArray alike


def dropout(x, dropout_ratio=0.5, seed=None) -> Node:
    """Zero each element with probability dropout_ratio and scale the rest by 1/(1-ratio). The mask
    is a function of (seed, element index): backward recomputes it instead of storing it.
    float32/float64 x as it is, int/bool data cast to float32."""
    xn = as_node(x, "x")
    value = _value(xn, "x")
    capture = graphs.capture_in_progress()
    if seed is None and capture is not None and is_device_array(value):
        seed = capture.dropout_seed()  # drawn as below before each replay, read by the kernel
    elif seed is None:
        seed = int(np.random.randint(0, 2**62, dtype=np.int64))
    y = ops.dropout_forward(value, dropout_ratio, seed)
    return record(y, (xn,), lambda g: (ops.dropout_backward(_grad(g, y), dropout_ratio, seed),),
                  "dropout")


def softmax_cross_entropy(z, t) -> Node:
    """Mean over the batch of logsumexp(z) - z[t]; t is one-hot (N, C) or integer labels (N,).
    int/bool z is cast to float32; (N, C) targets to z's dtype; labels must be integers. None,
    complex, object or string data raise TypeError naming z or t."""
    zn = as_node(z, "z")
    zv = _value(zn, "z")
    tv = t._value if isinstance(t, Node) else t
    if not is_device_array(tv):
        tv = real_array(tv, "t")
        if tv.dtype.kind == "f" or tv.ndim == 2:
            tv = np.ascontiguousarray(tv, dtype=np.dtype(zv.dtype))
        if is_device_array(zv):  # labels follow the logits to the GPU
            tv = to_device(tv if tv.dtype.kind == "f" else np.asarray(tv, np.int64))
    if zn._tracked and is_device_array(zv):
        # Training on the GPU: the gradient for the usual seed of 1 comes from the forward's
        # kernel (one read of z, one launch less); any other seed takes the backward kernel.
        loss, dz_seed1 = ops.softmax_cross_entropy_forward_backward(zv, tv, 1.0)

        def backward(g):
            dloss = float(to_host(g))
            return (dz_seed1 if dloss == 1.0
                    else ops.softmax_cross_entropy_backward(zv, tv, dloss),)

        return record(loss, (zn,), backward, "softmax_cross_entropy")
    loss = ops.softmax_cross_entropy_forward(zv, tv)
    return record(loss, (zn,),
                  lambda g: (ops.softmax_cross_entropy_backward(zv, tv, float(to_host(g))),),
                  "softmax_cross_entropy")
