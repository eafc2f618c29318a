"""Sequential: layers applied in order, with PyTorch-style repr and named_parameters, and the
checkpoint entry points (save/load, implemented in fastconv.checkpoint)."""
from __future__ import annotations

from . import checkpoint as _checkpoint
from .layers import Conv2d, Dense, Layer, MaxPool2d, Relu

__all__ = ["Sequential"]


class Sequential(Layer):
    """Layers applied in order; reachable as `model._layers[i]`, `model[i]` and `model.l{i}`.
    A Sequential may hold Sequentials; its parameters are then named "l2.l0.w"."""

    def __init__(self, layers=()):
        super().__init__()
        self._layers = []
        for layer in layers:
            self.append(layer)

    def append(self, layer: Layer) -> None:
        """Add `layer` at the end; it becomes model[i] and model.l{i}."""
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
            if _conv_relu_pool(layers, i):
                # Conv2d, Relu, then a 2x2 stride-2 MaxPool2d: one node whose kernels keep the
                # convolution's output in scratch, not in the graph, and skip the backward's
                # ReLU pass over it (same values and gradients; the Relu's and the pool's own
                # forwards are skipped).
                x = layers[i].forward(x, max_pool_2x2=True)
                i += 3
            elif (isinstance(layers[i], (Conv2d, Dense)) and i + 1 < len(layers)
                    and type(layers[i + 1]) is Relu):
                # Conv2d or Dense then Relu: one node whose kernels apply the ReLU each way
                # instead of an extra pass over the activation (same values and gradients; the
                # Relu layer's own forward is skipped).
                x = layers[i].forward(x, relu=True)
                i += 2
            else:
                x = layers[i](x)
                i += 1
        return x

    def _named_leaves(self, prefix: str = ""):
        """("l0", layer) for every layer that is not itself a Sequential, nested ones as "l2.l0"."""
        for i, layer in enumerate(self._layers):
            if isinstance(layer, Sequential):
                yield from layer._named_leaves(f"{prefix}l{i}.")
            else:
                yield f"{prefix}l{i}", layer

    def named_parameters(self):
        for prefix, layer in self._named_leaves():
            for name, value in layer.params.items():
                yield f"{prefix}.{name}", value

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for i, layer in enumerate(self._layers):
            text = repr(layer).replace("\n", "\n  ")
            shapes = _shapes_text(layer) if not isinstance(layer, Sequential) else ""
            lines.append(f"  (l{i}): {text}{shapes}")
        lines.append(")")
        return "\n".join(lines)

    def save(self, path, optimizer=None, meta=None) -> str:
        """Write a checkpoint: every parameter (keyed as named_parameters() names them), the
        state of `optimizer` (Sgd's velocity, Adam's moments and step counts) when given, and
        `meta`, a dict of JSON-serialisable values (numpy scalars and arrays become numbers and
        lists), returned by load. Returns the path written: `path` with ".npz" appended when it
        does not end so, the rule load applies too.

        The file is written to a temporary file in the same folder and renamed over `path`, so
        a failing save leaves the previous checkpoint whole. A model with layers not yet called
        (no parameters) is refused with ValueError."""
        return _checkpoint.save(self, path, optimizer=optimizer, meta=meta)

    def load(self, path, optimizer=None) -> dict:
        """Read a checkpoint written by save() and return its meta dict ({} when none).

        `path` gets ".npz" appended when it does not end so, as in save(). Every array is checked
        against this model's configuration before anything changes: each layer with parameters
        must find its own, of the shape its arguments fix (Conv2d(channel=4, filter=3) takes
        w (4, C, 3, 3) for any C >= 1 until it has been called, then only its own C), and no
        entry may name a layer without parameters. Layers not yet called get their parameters
        from the file; existing ones are overwritten in place (their versions bump, so graphs
        recorded before refuse grad()). With `optimizer`, its state is restored as saved, so a
        resumed run continues exactly; the file must then hold state of the same optimiser class
        (its hyperparameters, e.g. lr, are the ones you constructed, not the file's).

        A mismatch raises ValueError naming the file and the first mismatching entry; so does a
        file that is not a readable checkpoint (nothing is unpickled). A missing file raises
        FileNotFoundError."""
        return _checkpoint.load(self, path, optimizer=optimizer)


# MaxPool2d's arguments (filter, stride, padding, ceil_mode) that the fused kernel pools with.
_POOL_2X2 = ((2, 2), (2, 2), (0, 0), False)


def _conv_relu_pool(layers: list, i: int) -> bool:
    """Whether layers[i:i + 3] are Conv2d, Relu, MaxPool2d(filter=2, stride=2) (no padding,
    floor): what F.conv2d_relu_max_pool2d computes."""
    return (isinstance(layers[i], Conv2d) and i + 2 < len(layers)
            and type(layers[i + 1]) is Relu and type(layers[i + 2]) is MaxPool2d
            and layers[i + 2]._args == _POOL_2X2)


def _shapes_text(layer: Layer) -> str:
    shapes = layer._parameter_shapes()
    if not shapes:
        return ""
    parts = []
    for name, shape in shapes.items():
        dims = ", ".join("?" if n is None else str(n) for n in shape)
        dtype = f" {layer.params[name].dtype}" if name in layer.params else ""
        parts.append(f"{name}: ({dims}){dtype}")
    made = "  (made at the first call)" if layer._unbuilt_parameters() else ""
    return "  # " + ", ".join(parts) + made
