"""Differentiable ops: each takes numpy arrays or Nodes, runs the kernel from `fastconv.ops`, and
records how to run its backward kernel. Layers are thin wrappers around these."""
from __future__ import annotations

import numpy as np

from . import ops
from .autograd import Node, as_node, record
from .device import is_device_array, to_device, to_host

__all__ = [
    "conv2d",
    "max_pool2d",
    "average_pool2d",
    "dense",
    "relu",
    "flatten",
    "dropout",
    "softmax_cross_entropy",
]


def _value(node: Node, dtype=None, device: bool = False):
    """The node's array as the kernels need it: float, C-contiguous, of `dtype` when given, and on
    the GPU when `device` (the op's parameters live there). Data that arrives as uint8 pixels or
    float64 is converted here, once, not in every kernel."""
    v = node._value
    if is_device_array(v):
        return v  # the CUDA bindings check dtype and shape, naming the argument
    if device:
        return to_device(np.ascontiguousarray(v, dtype=np.float32))
    if dtype is None:
        dtype = v.dtype if v.dtype.kind == "f" else np.float32
    if v.dtype != dtype or not v.flags.c_contiguous:
        v = np.ascontiguousarray(v, dtype=dtype)
    return v


def _grad(g, like):
    """A gradient from user arithmetic may be a broadcast view, another dtype, or on the host."""
    if is_device_array(like):
        return g if is_device_array(g) else to_device(np.ascontiguousarray(g, np.float32))
    return np.ascontiguousarray(g, dtype=like.dtype)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, relu=False) -> Node:
    """Cross-correlation of x (N, C, H, W) with w (K, C, kh, kw), plus bias b (1, K, 1, 1).
    relu=True gives relu(conv2d(...)) in one fused kernel, forward and backward."""
    xn, wn = as_node(x), as_node(w)
    bn = None if b is None else as_node(b)
    wv = _value(wn)
    on_gpu = is_device_array(wv)
    xv = _value(xn, wv.dtype, on_gpu)
    bv = None if bn is None else _value(bn, wv.dtype, on_gpu)
    y = ops.conv2d_forward(xv, wv, bv, stride, padding, dilation, relu=relu)

    def backward(g):
        dx, dw, db = ops.conv2d_backward(xv, wv, _grad(g, y), stride, padding, dilation,
                                         need_dx=xn._tracked, need_db=bn is not None,
                                         relu_y=y if relu else None)
        return (dx, dw) if bn is None else (dx, dw, db.reshape(bn.shape))

    return record(y, (xn, wn) if bn is None else (xn, wn, bn), backward)


def max_pool2d(x, filter=3, stride=1, padding=0, ceil_mode=False) -> Node:
    """Max over each window; padding never wins; ties go to the first maximum."""
    xn = as_node(x)
    xv = _value(xn)
    y, indices = ops.max_pool2d_forward(xv, filter, stride, padding, ceil_mode)

    def backward(g):
        return (ops.max_pool2d_backward(xv, _grad(g, y), indices, filter, stride, padding,
                                        ceil_mode),)

    return record(y, (xn,), backward)


def average_pool2d(x, filter=3, stride=1, padding=0, ceil_mode=False,
                   count_include_pad=True) -> Node:
    """Mean over each window; padded zeros count unless count_include_pad=False."""
    xn = as_node(x)
    xv = _value(xn)
    y = ops.average_pool2d_forward(xv, filter, stride, padding, ceil_mode, count_include_pad)

    def backward(g):
        return (ops.average_pool2d_backward(xv, _grad(g, y), filter, stride, padding, ceil_mode,
                                            count_include_pad),)

    return record(y, (xn,), backward)


def dense(x, w, b=None) -> Node:
    """x (N, In) @ w (In, Out) + b (1, Out)."""
    xn, wn = as_node(x), as_node(w)
    bn = None if b is None else as_node(b)
    wv = _value(wn)
    on_gpu = is_device_array(wv)
    xv = _value(xn, wv.dtype, on_gpu)
    bv = None if bn is None else _value(bn, wv.dtype, on_gpu)
    y = ops.dense_forward(xv, wv, bv)

    def backward(g):
        dx, dw, db = ops.dense_backward(xv, wv, _grad(g, y), need_dx=xn._tracked,
                                        need_db=bn is not None)
        return (dx, dw) if bn is None else (dx, dw, db.reshape(bn.shape))

    return record(y, (xn, wn) if bn is None else (xn, wn, bn), backward)


def relu(x) -> Node:
    xn = as_node(x)
    y = ops.relu_forward(_value(xn))
    return record(y, (xn,), lambda g: (ops.relu_backward(_grad(g, y), y),))


def flatten(x) -> Node:
    """(N, ...) -> (N, prod(...)), a view."""
    xn = as_node(x)
    if xn._tracked:
        return xn.reshape(xn.shape[0], -1)
    return Node(_value(xn).reshape(xn.shape[0], -1))  # numpy and DeviceArray alike


def dropout(x, dropout_ratio=0.5, seed=None) -> Node:
    """Zero each element with probability dropout_ratio and scale the rest by 1/(1-ratio). The mask
    is a function of (seed, element index): backward recomputes it instead of storing it."""
    xn = as_node(x)
    if seed is None:
        seed = int(np.random.randint(0, 2**62, dtype=np.int64))
    y = ops.dropout_forward(_value(xn), dropout_ratio, seed)
    return record(y, (xn,), lambda g: (ops.dropout_backward(_grad(g, y), dropout_ratio, seed),))


def softmax_cross_entropy(z, t) -> Node:
    """Mean over the batch of logsumexp(z) - z[t]; t is one-hot (N, C) or integer labels (N,)."""
    zn = as_node(z)
    zv = _value(zn)
    tv = t._value if isinstance(t, Node) else t
    if not is_device_array(tv):
        tv = np.asarray(tv)
        if tv.dtype.kind == "f" or tv.ndim == 2:
            tv = np.ascontiguousarray(tv, dtype=np.dtype(zv.dtype))
        if is_device_array(zv):  # labels follow the logits to the GPU
            tv = to_device(tv if tv.dtype.kind == "f" else np.asarray(tv, np.int64))
    loss = ops.softmax_cross_entropy_forward(zv, tv)
    return record(loss, (zn,),
                  lambda g: (ops.softmax_cross_entropy_backward(zv, tv, float(to_host(g))),))
