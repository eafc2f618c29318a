"""A training step captured once as a CUDA graph and replayed: `fastconv.graph_step`.

On the GPU a step of the tutorial CNN is some thirty short kernels, and at small batches the time
goes to launching them and to the Python that decides them, not to the kernels. graph_step runs
the step function once as usual (warm-up: optimiser state and the cuBLAS handle get made), then
records the second call's work as a CUDA graph (cudaStreamBeginCapture on fastconv's one stream)
and from then on replays it with one launch, without running the function again.

What a replay does that the function would have done:
- the arguments are copied into the graph's own input buffers (device arrays: on the device;
  numpy arrays: uploaded, a small one without waiting);
- dropout's seeds are drawn from np.random, in the same order and number as the function draws
  them, and handed to the captured kernels through device memory; Adam's step counts advance and
  its bias corrections reach the kernels the same way. So a replayed step equals the eager step
  bit for bit, dropout masks included;
- the outputs (the loss) are copied out of the graph's buffers, so each call returns new arrays.

Each argument shape gets its own graph (a smaller last batch is warmed up and captured once more).
If an optimiser's settings change (a new lr, other parameters or state arrays), a Variable the step
reads is given a new array, or fastconv.set_tf32, set_gemm_epilogues or set_conv_autotune is
switched, the step is warmed up and captured again. A data error that a captured kernel finds (a
label outside [0, C)) is raised at the next read from the device, as for eager ops. The function
must not read from the device or copy host data to it while it is captured; that raises a
RuntimeError saying so. Where CUDA itself refuses to capture the step (a CudaError), a
RuntimeWarning says so and that shape's steps run op by op. With fastconv.set_conv_autotune on, the
warm-ups time the step's convs (a capture never times), so the graph runs the kernels they chose.
"""
from __future__ import annotations

import warnings

import numpy as np

from . import _native
from ._runtime import conv_autotune, cuda_available, gemm_epilogues, is_cuda_active, tf32
from .device import is_device_array, to_device

__all__ = ["graph_step", "GraphStep"]

# Capacity of the device buffers that carry per-replay values to the captured kernels.
MAX_DROPOUT_SEEDS = 256
MAX_ADAM_TENSORS = 1024

_capture = None  # the _Capture under way, if any


def capture_in_progress():
    """The capture under way (for dropout and the optimisers), or None."""
    return _capture


class _Capture:
    """What one capture learns besides the graph: the per-replay host actions (in the order the
    function ran them), the checks that tell whether the graph still fits, and the device
    buffers for the values a replay draws."""

    def __init__(self):
        self.before_replay = []
        self.guards = []
        self.seeds_host = np.zeros(MAX_DROPOUT_SEEDS, np.int64)
        self.seeds = _native.CUDA.zeros(MAX_DROPOUT_SEEDS, "int64")
        self.corrections_host = np.zeros((MAX_ADAM_TENSORS, 2), np.float32)
        self.corrections = _native.CUDA.zeros((MAX_ADAM_TENSORS, 2), "float32")
        self.seed_count = 0
        self.correction_rows = 0
        self._watched = set()
        self.guard(tf32)  # the captured GEMMs keep the math mode they were recorded with
        self.guard(gemm_epilogues)  # and the path (fused epilogue or own kernels) chosen then
        self.guard(conv_autotune)  # and the conv kernels chosen then

    def dropout_seed(self):
        """A one-element device array that holds, at each replay, a seed drawn as
        functional.dropout draws one."""
        i = self.seed_count
        if i == MAX_DROPOUT_SEEDS:
            raise RuntimeError(f"a captured step may draw at most {MAX_DROPOUT_SEEDS} dropout "
                               "seeds")
        self.seed_count += 1

        def draw():
            self.seeds_host[i] = np.random.randint(0, 2**62, dtype=np.int64)

        self.before_replay.append(draw)
        return self.seeds[i]

    def adam_corrections(self, count: int):
        """(device rows, host rows) for `count` tensors' bias corrections: the caller fills the
        host rows before each replay (every_replay) and the kernels read the device rows."""
        first = self.correction_rows
        if first + count > MAX_ADAM_TENSORS:
            raise RuntimeError(f"a captured step may update at most {MAX_ADAM_TENSORS} "
                               "parameters with Adam")
        self.correction_rows += count
        return self.corrections[first:first + count], self.corrections_host[first:first + count]

    def every_replay(self, action) -> None:
        """Run `action` on the host before each replay, in capture order."""
        self.before_replay.append(action)

    def guard(self, read) -> None:
        """`read()` must return the same before each replay (arrays: the same objects, which
        the graph keeps alive), or the step is captured again."""
        self.guards.append((read, read()))

    def watch(self, variable) -> None:
        """A Variable the captured step reads: if its array is replaced, capture again."""
        if id(variable) not in self._watched:
            self._watched.add(id(variable))
            self.guard(lambda: variable._value)


class _Captured:
    """One argument shape's graph, its input buffers and where its outputs are."""

    def __init__(self, graph, inputs, outputs, shape_of_result, capture: _Capture):
        self.graph = graph
        self.inputs = inputs
        self.outputs = outputs
        self.shape_of_result = shape_of_result
        self.before_replay = capture.before_replay
        self.guards = capture.guards
        n, rows = capture.seed_count, capture.correction_rows
        self.seed_upload = (capture.seeds[0:n], capture.seeds_host[0:n]) if n else None
        self.correction_upload = ((capture.corrections[0:rows], capture.corrections_host[0:rows])
                                  if rows else None)

    def fits(self) -> bool:
        return all(_same(read(), seen) for read, seen in self.guards)

    def replay(self, args):
        for buffer, arg in zip(self.inputs, args):
            buffer.copy_from(arg)
        for action in self.before_replay:
            action()
        for upload in (self.seed_upload, self.correction_upload):
            if upload is not None:
                upload[0].copy_from(upload[1])
        self.graph.launch()
        copies = []
        for out in self.outputs:
            copy = _native.CUDA.empty(tuple(out.shape), np.dtype(out.dtype).name)
            copy.copy_from(out)
            copies.append(copy)
        return _rebuild(self.shape_of_result, copies)


_WARMED = object()  # an argument shape seen once: the next call captures
_EAGER = object()   # an argument shape whose capture CUDA refused: fn runs as it is


class GraphStep:
    """fn(*arrays), captured as a CUDA graph per argument shape and replayed (module docstring).
    Calls run fn as it is where graphs do not apply: enabled=False, no usable GPU, or, unless
    fastconv.set_cuda_active(True) is in effect, host arrays only."""

    def __init__(self, fn, enabled: bool = True):
        if not callable(fn):
            raise TypeError(f"fn must be callable; got {type(fn).__name__}")
        self.fn = fn
        self.enabled = bool(enabled)
        self._by_shape = {}

    def __call__(self, *args):
        for i, a in enumerate(args):
            if not (isinstance(a, np.ndarray) or is_device_array(a)):
                raise TypeError(f"args[{i}] must be a numpy array or a DeviceArray; got "
                                f"{type(a).__name__}")
        if not self._use_graphs(args):
            return self.fn(*args)
        key = tuple((tuple(a.shape), np.dtype(a.dtype).str) for a in args)
        entry = self._by_shape.get(key)
        if isinstance(entry, _Captured) and not entry.fits():
            entry = None  # warmed up again, as a new shape is, then captured anew
        if entry is None or entry is _EAGER:
            if entry is None:
                self._by_shape[key] = _WARMED
            outputs, shape_of_result = _flatten(self.fn(*[to_device(a) for a in args]))
            return _rebuild(shape_of_result, outputs)
        if entry is _WARMED:
            self._by_shape[key] = None  # dropped first: a failed capture leaves nothing behind
            try:
                entry = self._capture(args)
            except _native.CUDA.CudaError as e:
                # CUDA itself refused the capture (a driver or library call that cannot be
                # captured): the step stays correct op by op, and says so once.
                self._by_shape[key] = _EAGER
                warnings.warn(f"graph_step: CUDA could not capture the step ({e}); it runs op by "
                              "op for arguments of this shape", RuntimeWarning, stacklevel=2)
                return self(*args)
            self._by_shape[key] = entry
        return entry.replay(args)

    def reset(self) -> None:
        """Forget every captured graph (the next call per shape warms up and captures anew)."""
        self._by_shape.clear()

    def graphs(self) -> int:
        """How many argument shapes have a captured graph."""
        return sum(isinstance(e, _Captured) for e in self._by_shape.values())

    def _use_graphs(self, args) -> bool:
        if not self.enabled or not cuda_available():
            return False
        return is_cuda_active() or any(is_device_array(a) for a in args)

    def _capture(self, args) -> _Captured:
        global _capture
        if _capture is not None:
            raise RuntimeError("graph_step cannot be called inside a step being captured")
        inputs = [_native.CUDA.empty(tuple(a.shape), np.dtype(a.dtype).name) for a in args]
        capture = _Capture()
        _native.CUDA.begin_capture()
        _capture = capture
        try:
            result = self.fn(*inputs)
            outputs, shape_of_result = _flatten(result)
        except BaseException:
            _capture = None
            _native.CUDA.abandon_capture()
            raise
        _capture = None
        graph = _native.CUDA.end_capture()
        return _Captured(graph, inputs, outputs, shape_of_result, capture)


def graph_step(fn, enabled: bool = True) -> GraphStep:
    """`fn` (a training step taking arrays and returning device arrays) as a GraphStep: see the
    module docstring. On the GPU a call returns what fn returns with each Node replaced by its
    DeviceArray (copies, so a later call does not change them). enabled=False runs fn as it is on every call (the switch to compare, or
    to debug)."""
    return GraphStep(fn, enabled)


def _flatten(result):
    """(device arrays, how to rebuild the result): fn may return None, a DeviceArray, a Node
    holding one, or a tuple or list of those."""
    if result is None:
        return [], None
    if isinstance(result, (tuple, list)):
        outputs, parts = [], []
        for item in result:
            arrays, part = _flatten_one(item)
            parts.append((len(outputs), part))
            outputs.extend(arrays)
        return outputs, (type(result), parts)
    arrays, part = _flatten_one(result)
    return arrays, ("one", part)


def _flatten_one(item):
    from .autograd import Node  # autograd imports this module

    value = item._value if isinstance(item, Node) else item
    if not is_device_array(value):
        raise TypeError("a captured step must return DeviceArrays or Nodes holding them (or "
                        f"a tuple or list of them, or None); got {type(item).__name__}")
    return [value], None


def _rebuild(shape_of_result, copies):
    if shape_of_result is None:
        return None
    kind, parts = shape_of_result
    if kind == "one":
        return copies[0]
    return kind(copies[i] for i, _ in parts)


def _same(a, b) -> bool:
    """Equal settings, and identical arrays (an equal copy at another address is not the same)."""
    if isinstance(a, (list, tuple)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b)))
    if isinstance(a, dict):
        return (isinstance(b, dict) and a.keys() == b.keys()
                and all(_same(a[k], b[k]) for k in a))
    if isinstance(a, np.ndarray) or is_device_array(a):
        return a is b
    return a == b
