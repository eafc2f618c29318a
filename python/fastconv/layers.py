"""The layers, with ReNom's constructors and defaults (Sequential is fastconv.sequential's). Parameters are created lazily on
the first call, when the input's size is known (or at construction for Dense(..., input_size=n)),
so parameters() is empty until then; they take part in the graph only under
`with model.train():`. train(mode)/eval() switch dropout and return the model, as in PyTorch;
repr(model) lists the layers with their configuration and parameter shapes. Checkpoints
(save/load) are fastconv.checkpoint's.

Constructor arguments are checked when the layer is made, not at its first call, with messages
that name the argument: sizes are ints (bools and floats such as 2.7 are refused; channel,
output_size, input_size, filter, stride and dilation >= 1, padding >= 0), ratios and weight decay
are finite numbers in range, flags are bools. Inputs follow fastconv.functional: real data of any
dtype (uint8 images, bools) is cast to float; None, complex, object and string data raise
TypeError."""
from __future__ import annotations

import math

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
    """Base of every layer: parameters in `params` (made lazily, see the module docstring), the
    train/eval modes, and `with layer:` to record the graph through them."""

    def __init__(self):
        self.params = Params()
        self._training = False
        self._inference = False
        self._recording = []  # one entry per open `with`: the layers' previous recording flags

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        """The layer's output for x (called by layer(x)); every layer defines it."""
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

    def _config(self) -> list:
        """(argument, value) pairs for repr: the configuration the constructor was given."""
        return []

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self._config())
        return f"{type(self).__name__}({args})"

    def _parameter_shapes(self) -> dict:
        """Each parameter's shape as the configuration fixes it, None where only the input can
        tell (checked by load). A layer with parameters defined elsewhere reports those it has."""
        return {name: tuple(value.shape) for name, value in self.params.items()}

    def _unbuilt_parameters(self) -> bool:
        """True while the parameters still wait for the first call."""
        return False

    def _set_parameter(self, name: str, value: np.ndarray) -> None:
        """Give parameter `name` the (checked) `value`: in place when it exists, else made."""
        if name in self.params:
            self.params[name].copy_from(value)
        else:
            dtype = np.float64 if value.dtype == np.float64 and not is_cuda_active() else np.float32
            self.params[name] = _new_parameter(np.asarray(value, dtype=dtype), getattr(
                self, "_weight_decay", None) if name == "w" else None,
                f"{type(self).__name__}.{name}")

    def train(self, mode: bool = True) -> "Layer":
        """Training mode (dropout on), or with mode=False evaluation mode (dropout off), for this
        layer and every layer inside it; returns the layer itself, as PyTorch's train() does.

        `with model.train():` both switches training mode on and records the graph through the
        parameters inside the block (so `loss.grad()` reaches them; see __enter__). Training mode
        stays on after the block; the recording stops."""
        self.set_models(inference=not flag(mode, "mode"))
        return self

    def eval(self) -> "Layer":
        """Evaluation mode (dropout off): the same as train(False) and
        set_models(inference=True). Returns the layer itself."""
        return self.train(False)

    def __enter__(self) -> "Layer":
        """`with model:` (usually spelled `with model.train():`) records the graph through this
        model's parameters until the block ends, so that `loss.grad()` reaches them; outside,
        the parameters enter each op as constants. Blocks nest; each restores what it found."""
        layers = list(self._walk())
        self._recording.append([(layer, layer._training) for layer in layers])
        for layer in layers:
            layer._training = True
        return self

    def __exit__(self, *exc_info) -> bool:
        for layer, was in self._recording.pop():
            layer._training = was
        return False

    def set_models(self, inference: bool = False) -> None:
        """inference=True switches dropout off (evaluation); False switches it back on. ReNom's
        name for what eval() and train() do."""
        for layer in self._walk():
            layer._inference = bool(inference)

    def parameters(self):
        """Every parameter (a Variable) of this layer and the layers inside it.

        Empty for a layer not yet called: parameters are made at the first forward pass, when
        the input's size is known (Dense(..., input_size=n) makes its own at once). Run the model
        on one batch, or load() a checkpoint, before handing parameters() to anything."""
        for _, value in self.named_parameters():
            yield value

    def named_parameters(self):
        """(name, Variable) pairs for every parameter, named as checkpoints name them: "w" and
        "b" for a layer, "l0.w", "l0.b", ... for a Sequential (nested ones "l2.l0.w"). Empty
        before the first forward pass, as parameters() is."""
        yield from self.params.items()


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


# The ops' limit on any array: numpy cannot even describe a much larger one ("Maximum allowed
# dimension exceeded", which names nothing).
_MAX_WEIGHT_ELEMENTS = 2**60


class _Weighted(Layer):
    _SIZED_BY = ""  # what sets w's shape, for the message when it is too large

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
        if math.prod(w_shape) >= _MAX_WEIGHT_ELEMENTS:
            raise ValueError(f"{self._SIZED_BY} must give {kind}.w fewer than 2**60 elements; "
                             f"got w of shape {tuple(w_shape)}")
        self.params["w"] = _new_parameter(self._initializer(w_shape, dtype), self._weight_decay,
                                          f"{kind}.w")
        if not self._ignore_bias:
            self.params["b"] = _new_parameter(np.zeros(b_shape, dtype), name=f"{kind}.b")

    def _bias(self):
        return self._param("b") if "b" in self.params else None

    def _unbuilt_parameters(self) -> bool:
        return "w" not in self.params

    def _extra_config(self) -> list:
        """The optional arguments, shown by repr only where they differ from the default."""
        extra = [("ignore_bias", True)] if self._ignore_bias else []
        if self._weight_decay is not None:
            extra.append(("weight_decay", self._weight_decay))
        return extra

    def _shapes(self, w_shape: tuple, b_shape: tuple) -> dict:
        return {"w": w_shape} if self._ignore_bias else {"w": w_shape, "b": b_shape}


def _pool_sizes(filter, padding, stride) -> tuple:
    return (size_pair(filter, "filter", 1), size_pair(stride, "stride", 1),
            size_pair(padding, "padding", 0))


class Conv2d(_Weighted):
    """2-D convolution: `channel` output maps of `filter` (kh, kw) windows, moved by `stride`
    over the input padded with `padding` zeros, taps `dilation` apart. x (N, C, H, W) ->
    (N, channel, H', W'). Parameters w (channel, C, kh, kw) and b (1, channel, 1, 1) (none with
    ignore_bias=True), made at the first call, when C is known; `initializer` (default
    GlorotNormal()) fills w, b starts at 0; `weight_decay` adds wd * w to w's gradient."""

    _SIZED_BY = "channel and filter (with x's channels)"

    def __init__(self, channel=32, filter=3, padding=0, stride=1, dilation=1, ignore_bias=False,
                 initializer=None, weight_decay=None):
        super().__init__(ignore_bias, initializer, weight_decay)
        self._channel = positive_int(channel, "channel")
        self._filter, self._stride, self._padding = _pool_sizes(filter, padding, stride)
        self._dilation = size_pair(dilation, "dilation", 1)

    def _config(self) -> list:
        return [("channel", self._channel), ("filter", self._filter),
                ("padding", self._padding), ("stride", self._stride),
                ("dilation", self._dilation), *self._extra_config()]

    def _parameter_shapes(self) -> dict:
        c_in = self.params.w.shape[1] if "w" in self.params else None
        return self._shapes((self._channel, c_in, *self._filter), (1, self._channel, 1, 1))

    def forward(self, x, relu=False, max_pool_2x2=False):
        """relu and max_pool_2x2 (Sequential's fusions): relu(conv), and with max_pool_2x2 that
        pooled by 2x2 windows at stride 2, in one node (F.conv2d_relu_max_pool2d)."""
        if "w" not in self.params:
            x = as_node(x, "x")
            if x.ndim != 4:
                raise ValueError(f"x must be 4-D (N, C, H, W); got shape {tuple(x.shape)}")
            self._create((self._channel, x.shape[1], *self._filter), (1, self._channel, 1, 1),
                         _param_dtype(x))
        if max_pool_2x2:
            return F.conv2d_relu_max_pool2d(x, self._param("w"), self._bias(), self._stride,
                                            self._padding, self._dilation)
        return F.conv2d(x, self._param("w"), self._bias(), self._stride, self._padding,
                        self._dilation, relu=relu)


class Dense(_Weighted):
    """Fully connected: x (N, features) @ w (features, output_size) + b (1, output_size). With input_size the parameters are made now (float32,
    on the GPU if fc.set_cuda_active(True) came first), and an input with another feature count
    is refused; without it they are made at the first call, float64 for float64 input."""

    _SIZED_BY = "output_size and input_size (x's features)"

    def __init__(self, output_size, input_size=None, ignore_bias=False, initializer=None,
                 weight_decay=None):
        super().__init__(ignore_bias, initializer, weight_decay)
        self._output_size = positive_int(output_size, "output_size")
        self._input_size = None if input_size is None else positive_int(input_size, "input_size")
        if self._input_size is not None:
            self._create((self._input_size, self._output_size), (1, self._output_size),
                         np.dtype(np.float32))

    def _config(self) -> list:
        config = [("output_size", self._output_size)]
        if self._input_size is not None:
            config.append(("input_size", self._input_size))
        return config + self._extra_config()

    def _parameter_shapes(self) -> dict:
        n_in = self._input_size or (self.params.w.shape[0] if "w" in self.params else None)
        return self._shapes((n_in, self._output_size), (1, self._output_size))

    def forward(self, x, relu=False):
        """relu (Sequential's fusion of a Dense then a Relu): relu(dense) in one node."""
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
        return F.dense(x, self._param("w"), self._bias(), relu=relu)


def _pool_config(args) -> list:
    (filter, stride, padding, ceil_mode, *rest) = args
    config = [("filter", filter), ("padding", padding), ("stride", stride)]
    if ceil_mode:
        config.append(("ceil_mode", True))
    if rest and not rest[0]:
        config.append(("count_include_pad", False))
    return config


class MaxPool2d(Layer):
    """The largest value of each `filter` window, moved by `stride` over the input padded with
    `padding` (padding never wins); ceil_mode=True keeps a last partial window. No parameters.
    ReNom's defaults: filter 3, stride 1."""

    def __init__(self, filter=3, padding=0, stride=1, ceil_mode=False):
        super().__init__()
        self._args = (*_pool_sizes(filter, padding, stride), flag(ceil_mode, "ceil_mode"))

    def _config(self) -> list:
        return _pool_config(self._args)

    def forward(self, x):
        return F.max_pool2d(x, *self._args)


class AveragePool2d(Layer):
    """The mean of each `filter` window, moved by `stride` over the input padded with `padding`
    zeros; count_include_pad=False divides by the window's cells inside the input only. No
    parameters."""

    def __init__(self, filter=3, padding=0, stride=1, ceil_mode=False, count_include_pad=True):
        super().__init__()
        self._args = (*_pool_sizes(filter, padding, stride), flag(ceil_mode, "ceil_mode"),
                      flag(count_include_pad, "count_include_pad"))

    def _config(self) -> list:
        return _pool_config(self._args)

    def forward(self, x):
        return F.average_pool2d(x, *self._args)


class Relu(Layer):
    """max(x, 0) elementwise. No parameters; after a Conv2d in a Sequential it runs fused into
    the convolution."""

    def forward(self, x):
        return F.relu(x)


class Flatten(Layer):
    """(N, ...) -> (N, product of the rest): between the convolutions and Dense. No parameters."""

    def forward(self, x):
        return F.flatten(x)


class Dropout(Layer):
    """Zeroes each value with probability dropout_ratio and scales the rest by
    1 / (1 - dropout_ratio) while training; passes x through unchanged in evaluation mode
    (eval(), train(False) or set_models(inference=True)). No parameters."""

    def __init__(self, dropout_ratio=0.5):
        super().__init__()
        self._ratio = in_range(dropout_ratio, "dropout_ratio", 0.0, 1.0)

    def _config(self) -> list:
        return [("dropout_ratio", self._ratio)]

    def forward(self, x):
        if self._inference or self._ratio == 0.0:
            return as_node(x, "x")
        return F.dropout(x, self._ratio)
