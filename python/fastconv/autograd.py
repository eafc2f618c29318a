"""A small reverse-mode autograd in ReNom's shape: nodes record how they were made, `grad()` walks
the graph backwards and returns a gradient set, and `.update(optimizer)` applies it.

Only values that depend on a Variable are recorded. Layers hand their parameters to the ops as
Variables only inside `with model.train():` (outside, as constants), so inference builds no graph.

In-place changes are caught as PyTorch catches them, with version counters: every write to a
Variable through the API (`v[i] = ...`, `copy_from`, an optimiser step, `Sequential.load`) bumps
its `_version`; each recorded op keeps the versions of its inputs, and `grad()` raises
RuntimeError, naming the Variable and the op, if one changed since the forward pass (its
gradient would mix old and new values). The usual `loss.grad().update(opt)` updates after the
backward, so it never trips the check; a second `grad()` on the same graph after the update does.
Writes that bypass the API are not seen: `np.asarray(v)[...] = 0`, or editing in place a numpy
array that was passed to an op (wrap such data in a Variable to have it checked).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from . import graphs
from ._validate import compute_dtype, real_array
from .device import is_device_array, to_device, to_host

Backward = Callable[[np.ndarray], Sequence["np.ndarray | None"]]


class Node:
    """An array in the computation graph. Index it or `np.asarray` it like the array it holds."""

    __array_priority__ = 1000  # make `ndarray op Node` defer to Node's reflected operators
    _version = 0  # only Variables are written in place; see the module docstring
    _versions: tuple = ()  # the parents' versions when this node was recorded
    _op = "an op"

    def __init__(self, value: np.ndarray, parents: tuple = (), backward: Backward | None = None):
        self._value = value
        self._parents = parents
        self._backward = backward
        self._tracked = False

    # ---- the array it holds -------------------------------------------------------------------
    def as_ndarray(self) -> np.ndarray:
        """The value as a numpy array: the array itself on the CPU, a copy from the GPU."""
        return to_host(self._value)

    def __array__(self, dtype=None, copy=None):
        value = self.as_ndarray()
        if dtype is None or dtype == value.dtype:
            return value.copy() if copy else value
        return value.astype(dtype)

    @property
    def shape(self) -> tuple:
        return self._value.shape

    @property
    def dtype(self) -> np.dtype:
        return self._value.dtype

    @property
    def ndim(self) -> int:
        return self._value.ndim

    @property
    def size(self) -> int:
        return self._value.size

    def __len__(self) -> int:
        return len(self._value)

    def __getitem__(self, index):
        """Plain numpy indexing of the value (not recorded): `params.w[i, 0]`, `maps[0, i]`."""
        return self.as_ndarray()[index]

    def __float__(self) -> float:
        return float(self.as_ndarray())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._value!r})"

    # ---- differentiable arithmetic, for user-written losses ----------------------------------
    def _host_value(self) -> np.ndarray:
        if is_device_array(self._value):
            raise TypeError("node arithmetic runs on the CPU only; for a GPU node use the "
                            "fastconv ops (or node.as_ndarray() for a host copy)")
        return self._value

    def __add__(self, other):
        return _binary(self, other, np.add, lambda g, a, b: (g, g))

    def __radd__(self, other):
        return _binary(other, self, np.add, lambda g, a, b: (g, g))

    def __sub__(self, other):
        return _binary(self, other, np.subtract, lambda g, a, b: (g, -g))

    def __rsub__(self, other):
        return _binary(other, self, np.subtract, lambda g, a, b: (g, -g))

    def __mul__(self, other):
        return _binary(self, other, np.multiply, lambda g, a, b: (g * b, g * a))

    def __rmul__(self, other):
        return _binary(other, self, np.multiply, lambda g, a, b: (g * b, g * a))

    def __truediv__(self, other):
        return _binary(self, other, np.divide, lambda g, a, b: (g / b, -g * a / (b * b)))

    def __rtruediv__(self, other):
        return _binary(other, self, np.divide, lambda g, a, b: (g / b, -g * a / (b * b)))

    def __neg__(self):
        return record(-self._host_value(), (self,), lambda g: (-g,), "negative")

    def sum(self, axis=None, keepdims: bool = False) -> "Node":
        """The sum over `axis` (all axes by default), as numpy's sum, recorded for grad()."""
        shape = self.shape

        def backward(g):
            if axis is not None and not keepdims:
                g = np.expand_dims(g, axis)
            return (np.broadcast_to(g, shape).copy(),)

        return record(np.asarray(self._host_value().sum(axis=axis, keepdims=keepdims)), (self,),
                      backward, "sum")

    def mean(self, axis=None, keepdims: bool = False) -> "Node":
        """The mean over `axis` (all axes by default), as numpy's mean, recorded for grad()."""
        count = self.size if axis is None else np.prod([self.shape[a] for a in np.atleast_1d(axis)])
        return self.sum(axis=axis, keepdims=keepdims) * (1.0 / float(count))

    def reshape(self, *shape) -> "Node":
        """The same values in `shape` (a tuple or separate ints), recorded for grad()."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        old = self.shape
        return record(self._value.reshape(*shape), (self,), lambda g: (g.reshape(*old),),
                      "reshape")

    # ---- gradients ------------------------------------------------------------------------------
    def grad(self, initial=None) -> "Grads":
        """Back-propagate from this node. `initial` defaults to ones (1 for a scalar loss)."""
        # The seed stays on the host even for a GPU node: the loss's backward needs only its
        # value, and ops that need a device gradient upload it (functional._grad).
        shape, dtype = tuple(self.shape), np.dtype(self.dtype)
        if initial is None:
            seed = np.ones(shape, dtype)
        else:
            seed = to_host(initial) if is_device_array(initial) else real_array(initial, "initial")
            seed = np.asarray(seed, dtype)
            if seed.shape != shape:
                raise ValueError(f"initial must have shape {shape}; got shape {seed.shape}")
        grads: dict[int, np.ndarray] = {id(self): seed}
        leaves: dict[int, Variable] = {}
        for node in _reverse_topological(self):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if isinstance(node, Variable):
                leaves[id(node)] = node
                grads[id(node)] = g  # keep: leaves are what the caller asks for
                continue
            for parent, seen in zip(node._parents, node._versions):
                if parent._version != seen:
                    raise RuntimeError(_modified_message(parent, node._op, seen))
            for parent, pg in zip(node._parents, node._backward(g)):
                if pg is None or not parent._tracked:
                    continue
                pg = _unbroadcast(pg, parent.shape)
                prev = grads.get(id(parent))
                grads[id(parent)] = pg if prev is None else _add(prev, pg)
        return Grads({k: (leaves[k], grads[k]) for k in leaves})


class Variable(Node):
    """A leaf whose gradient is tracked. Layers keep their parameters as Variables.

    `value` is copied: an array of real numbers of any shape (0-d stays 0-d), or anything numpy
    reads as one. float32 and float64 are kept; other floats, ints and bools become float32
    (long double becomes float64). None, object, complex and string data raise TypeError.
    `name` (optional) is used in error messages; layers name their parameters "Conv2d.w"."""

    def __init__(self, value, *, weight_decay: float | None = None, name: str | None = None):
        if is_device_array(value):
            array = value  # layers on the GPU hand over a fresh device copy
        else:
            array = real_array(value, "value")
            # np.array(order="C") copies and, unlike np.ascontiguousarray, keeps 0-d arrays 0-d.
            array = np.array(array, dtype=compute_dtype(array.dtype), order="C", copy=True)
        super().__init__(array)
        self._tracked = True
        self._version = 0
        self.weight_decay = weight_decay
        self.name = name

    def _bump_version(self) -> None:
        """Record a write to the value: graphs recorded before it can no longer be trusted."""
        self._version += 1

    def __setitem__(self, index, value):
        value = real_array(value, "value")
        if is_device_array(self._value):
            host = self.as_ndarray().copy()
            host[index] = value
            self.copy_from(host)  # bumps the version
        else:
            self._value[index] = value
            self._bump_version()

    def copy_from(self, value) -> None:
        """Overwrite the value (in place on the CPU; on the GPU with a fresh upload, which is the
        same to the optimiser, whose state is kept by Variable)."""
        value = to_host(value) if is_device_array(value) else real_array(value, "value")
        value = np.asarray(value, dtype=self.dtype)
        if value.shape != tuple(self.shape):
            raise ValueError(f"value must have shape {tuple(self.shape)}; got shape {value.shape}")
        if is_device_array(self._value):
            self._value = to_device(value)
        else:
            self._value[...] = value
        self._bump_version()


class Grads:
    """The gradients of one backward pass, by Variable."""

    def __init__(self, by_id: dict):
        self._by_id = by_id

    def get(self, variable: Variable):
        """The gradient with respect to `variable`, or None if it did not take part."""
        entry = self._by_id.get(id(variable))
        return None if entry is None else entry[1]

    def update(self, optimizer) -> None:
        """Apply `optimizer` to every Variable that took part (the model's parameters when the
        graph was built under model.train()). Each step bumps the Variable's version: the graph
        these gradients came from cannot be back-propagated again (run the forward anew).
        All are handed over at once (optimizer.step_many: one multi-tensor update for Sgd and
        Adam); an optimiser with only step(variable, grad) gets one call per Variable."""
        pairs = list(self._by_id.values())
        step_many = getattr(optimizer, "step_many", None)
        if step_many is None:
            for variable, g in pairs:
                optimizer.step(variable, g)
        else:
            step_many(pairs)


def record(value: np.ndarray, parents: tuple, backward: Backward, op: str = "an op") -> Node:
    """Wrap the result of `op`; keep the graph edge only if some parent is tracked, with the
    parents' versions, so that grad() can tell whether one was written to since."""
    node = Node(value)
    capture = graphs.capture_in_progress()
    if capture is not None:  # a replay reads these Variables' arrays by address
        for p in parents:
            if isinstance(p, Variable):
                capture.watch(p)
    if any(p._tracked for p in parents):
        node._parents, node._backward, node._tracked = parents, backward, True
        node._versions = tuple([p._version for p in parents])
        node._op = op
    return node


def as_node(x, name: str = "x") -> Node:
    """x as a Node: a Node as it is, a DeviceArray wrapped, anything else checked to hold real
    numbers (TypeError naming `name` otherwise) and wrapped without a copy or a cast."""
    if isinstance(x, Node):
        return x
    return Node(x if is_device_array(x) else real_array(x, name))


def _modified_message(variable: Node, op: str, seen: int) -> str:
    name = getattr(variable, "name", None)
    which = f"the Variable {name}" if name else "a Variable"
    return (f"{which} of shape {tuple(variable.shape)} used by {op} was modified in place "
            f"(version {seen} -> {variable._version}) after the forward pass; run the forward "
            "again before grad()")


def _binary(a, b, fn, backward) -> Node:
    a, b = as_node(a, "other"), as_node(b, "other")
    av, bv = a._value, b._value
    if is_device_array(av) or is_device_array(bv):
        raise TypeError("node arithmetic runs on the CPU only; for a GPU node use the fastconv "
                        "ops (or node.as_ndarray() for a host copy)")
    return record(np.asarray(fn(av, bv)), (a, b), lambda g: backward(g, av, bv), fn.__name__)


def _add(a, b):
    """Two gradients of one node. Layers never fan out, so on the GPU this is rare enough to go
    through the host."""
    if is_device_array(a) or is_device_array(b):
        return to_device(to_host(a) + to_host(b))
    return a + b


def _unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a broadcast gradient back down to the operand's shape."""
    if tuple(g.shape) == tuple(shape):
        return g
    g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _reverse_topological(root: Node) -> list:
    """Tracked nodes reachable from root, each after every node that consumes it (no recursion,
    so deep graphs cannot overflow the interpreter stack)."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen or not node._tracked:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in node._parents if id(p) not in seen)
    return order[::-1]
