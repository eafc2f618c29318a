"""Layers and Sequential, with ReNom's constructors and defaults. Parameters are created lazily on
the first call, when the input's size is known (or at construction for Dense(..., input_size=n));
they take part in the graph only under `with model.train():`.

Constructor arguments are checked when the layer is made, not at its first call, with messages
that name the argument: sizes are ints (bools and floats such as 2.7 are refused; channel,
output_size, input_size, filter, stride and dilation >= 1, padding >= 0), ratios and weight decay
are finite numbers in range, flags are bools. Inputs follow fastconv.functional: real data of any
dtype (uint8 images, bools) is cast to float; None, complex, object and string data raise
TypeError."""
from __future__ import annotations

import contextlib
import os

import numpy as np

from . import functional as F
from ._runtime import is_cuda_active
from ._validate import describe, flag, in_range, positive_int, size_pair
from .autograd import Node, Variable, as_node
from .device import to_device
from .initializers import GlorotNormal

__all__ = [
    "Layer",
    "Conv2d",
    "MaxPool2d",
    "AveragePool2d",
    "Dense",
    "Relu",
    "Flatten",
    "Dropout",
    "Sequential",
]


class Params(dict):
    """A layer's parameters by name, also reachable as attributes: `layer.params.w`."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no parameter {name!r} (the layer creates its parameters on "
                                 "its first call)") from None


class Layer:
    def __init__(self):
        self.params = Params()
        self._training = False
        self._inference = False

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise TypeError(f"{type(self).__name__} must define forward(x)")

    def _param(self, name: str) -> Node:
        """The Variable while training (so gradients reach it), a constant view of it otherwise."""
        v = self.params[name]
        return v if self._training else Node(v._value)

    def _children(self) -> list:
        return []

    def _walk(self):
        yield self
        for child in self._children():
            yield from child._walk()

    @contextlib.contextmanager
    def train(self):
        """Record the graph through this model's parameters, so that `loss.grad()` reaches them."""
        layers = list(self._walk())
        before = [layer._training for layer in layers]
        for layer in layers:
            layer._training = True
        try:
            yield self
        finally:
            for layer, was in zip(layers, before):
                layer._training = was

    def set_models(self, inference: bool = False) -> None:
        """inference=True switches dropout off (evaluation); False switches it back on."""
        for layer in self._walk():
            layer._inference = bool(inference)

    def eval(self) -> None:
        self.set_models(inference=True)

    def parameters(self):
        for layer in self._walk():
            yield from layer.params.values()


def _param_dtype(x) -> np.dtype:
    """float64 inputs get float64 parameters (gradient checks) on the CPU; everything else, and
    everything on the GPU, float32."""
    value = x._value if isinstance(x, Node) else x
    dtype = np.dtype(value.dtype) if hasattr(value, "dtype") else np.asarray(value).dtype
    if is_cuda_active() or dtype != np.float64:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _new_parameter(value: np.ndarray, weight_decay=None, name=None) -> Variable:
    """A parameter where the layers live now: the GPU after fc.set_cuda_active(True)."""
    return Variable(to_device(value) if is_cuda_active() else value, weight_decay=weight_decay,
                    name=name)


class _Weighted(Layer):
    def __init__(self, ignore_bias, initializer, weight_decay):
        super().__init__()
        self._ignore_bias = flag(ignore_bias, "ignore_bias")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be None or callable as initializer(shape, dtype) "
                            f"(e.g. fc.HeNormal()); got {describe(initializer)}")
        self._initializer = initializer or GlorotNormal()
        self._weight_decay = (None if weight_decay is None
                              else in_range(weight_decay, "weight_decay", 0.0, None))

    def _create(self, w_shape, b_shape, dtype):
        kind = type(self).__name__
        self.params["w"] = _new_parameter(self._initializer(w_shape, dtype), self._weight_decay,
                                          f"{kind}.w")
        if not self._ignore_bias:
            self.params["b"] = _new_parameter(np.zeros(b_shape, dtype), name=f"{kind}.b")

    def _bias(self):
        return self._param("b") if "b" in self.params else None


def _pool_sizes(filter, padding, stride) -> tuple:
    return (size_pair(filter, "filter", 1), size_pair(stride, "stride", 1),
            size_pair(padding, "padding", 0))


class Conv2d(_Weighted):
    """channel output maps of filter (kh, kw) windows. The input's channel count is read at the
    first call (x must be 4-D (N, C, H, W))."""

    def __init__(self, channel=32, filter=3, padding=0, stride=1, dilation=1, ignore_bias=False,
                 initializer=None, weight_decay=None):
        super().__init__(ignore_bias, initializer, weight_decay)
        self._channel = positive_int(channel, "channel")
        self._filter, self._stride, self._padding = _pool_sizes(filter, padding, stride)
        self._dilation = size_pair(dilation, "dilation", 1)

    def forward(self, x, relu=False):
        if "w" not in self.params:
            x = as_node(x, "x")
            if x.ndim != 4:
                raise ValueError(f"x must be 4-D (N, C, H, W); got shape {tuple(x.shape)}")
            self._create((self._channel, x.shape[1], *self._filter), (1, self._channel, 1, 1),
                         _param_dtype(x))
        return F.conv2d(x, self._param("w"), self._bias(), self._stride, self._padding,
                        self._dilation, relu=relu)


class Dense(_Weighted):
    """x (N, features) -> (N, output_size). With input_size the parameters are made now (float32,
    on the GPU if fc.set_cuda_active(True) came first), and an input with another feature count
    is refused; without it they are made at the first call, float64 for float64 input."""

    def __init__(self, output_size, input_size=None, ignore_bias=False, initializer=None,
                 weight_decay=None):
        super().__init__(ignore_bias, initializer, weight_decay)
        self._output_size = positive_int(output_size, "output_size")
        self._input_size = None if input_size is None else positive_int(input_size, "input_size")
        if self._input_size is not None:
            self._create((self._input_size, self._output_size), (1, self._output_size),
                         np.dtype(np.float32))

    def forward(self, x):
        x = as_node(x, "x")
        shape = tuple(x.shape)
        if len(shape) != 2:
            raise ValueError(f"x must be 2-D (N, features); got shape {shape} (put a Flatten() "
                             "before Dense)")
        if self._input_size is not None and shape[1] != self._input_size:
            raise ValueError(f"x.shape[1] must equal input_size ({self._input_size}); got "
                             f"{shape[1]} (x has shape {shape})")
        if "w" not in self.params:
            self._create((shape[1], self._output_size), (1, self._output_size), _param_dtype(x))
        return F.dense(x, self._param("w"), self._bias())


class MaxPool2d(Layer):
    def __init__(self, filter=3, padding=0, stride=1, ceil_mode=False):
        super().__init__()
        self._args = (*_pool_sizes(filter, padding, stride), flag(ceil_mode, "ceil_mode"))

    def forward(self, x):
        return F.max_pool2d(x, *self._args)


class AveragePool2d(Layer):
    def __init__(self, filter=3, padding=0, stride=1, ceil_mode=False, count_include_pad=True):
        super().__init__()
        self._args = (*_pool_sizes(filter, padding, stride), flag(ceil_mode, "ceil_mode"),
                      flag(count_include_pad, "count_include_pad"))

    def forward(self, x):
        return F.average_pool2d(x, *self._args)


class Relu(Layer):
    def forward(self, x):
        return F.relu(x)


class Flatten(Layer):
    def forward(self, x):
        return F.flatten(x)


class Dropout(Layer):
    """Active unless the model is in inference mode (set_models(inference=True) or eval())."""

    def __init__(self, dropout_ratio=0.5):
        super().__init__()
        self._ratio = in_range(dropout_ratio, "dropout_ratio", 0.0, 1.0)

    def forward(self, x):
        if self._inference or self._ratio == 0.0:
            return as_node(x, "x")
        return F.dropout(x, self._ratio)


class Sequential(Layer):
    """Layers applied in order; reachable as `model._layers[i]`, `model[i]` and `model.l{i}`."""

    def __init__(self, layers=()):
        super().__init__()
        self._layers = []
        for layer in layers:
            self.append(layer)

    def append(self, layer: Layer) -> None:
        if not isinstance(layer, Layer):
            raise TypeError(f"layer must be a fastconv Layer; got {type(layer).__name__}")
        setattr(self, f"l{len(self._layers)}", layer)
        self._layers.append(layer)

    def __getitem__(self, index):
        return self._layers[index]

    def __len__(self) -> int:
        return len(self._layers)

    def _children(self) -> list:
        return self._layers

    def forward(self, x):
        i, layers = 0, self._layers
        while i < len(layers):
            if (isinstance(layers[i], Conv2d) and i + 1 < len(layers)
                    and type(layers[i + 1]) is Relu):
                # Conv2d then Relu: one fused kernel each way instead of an extra pass over the
                # activation (same values; the Relu layer's own forward is skipped).
                x = layers[i].forward(x, relu=True)
                i += 2
            else:
                x = layers[i](x)
                i += 1
        return x

    def _named_parameters(self):
        for i, layer in enumerate(self._layers):
            for name, value in (layer._named_parameters() if isinstance(layer, Sequential)
                                else layer.params.items()):
                yield f"l{i}.{name}", value

    def save(self, path) -> None:
        """Write every parameter to an .npz file, keyed 'l{i}.{name}'."""
        np.savez(path, **{k: v.as_ndarray() for k, v in self._named_parameters()})

    def load(self, path) -> None:
        """Read parameters written by save(). Layers not yet called get their parameters from the
        file; existing ones are overwritten in place (same shapes required)."""
        with np.load(os.fspath(path)) as data:
            stored = dict(data)
        self._load(stored, "")
        if stored:
            raise ValueError(f"{path}: entries {sorted(stored)} match no layer of this model")

    def _load(self, stored: dict, prefix: str) -> None:
        for i, layer in enumerate(self._layers):
            if isinstance(layer, Sequential):
                layer._load(stored, f"{prefix}l{i}.")
                continue
            for key in [k for k in stored if k.startswith(f"{prefix}l{i}.")]:
                name, value = key[len(f"{prefix}l{i}."):], stored.pop(key)
                if name in layer.params:
                    layer.params[name].copy_from(value)
                else:
                    layer.params[name] = _new_parameter(value, getattr(
                        layer, "_weight_decay", None) if name == "w" else None,
                        f"{type(layer).__name__}.{name}")
