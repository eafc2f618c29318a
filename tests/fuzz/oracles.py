"""Oracles: what a successful fuzz call should have returned. fastconv.reference for the ops and
the functional API (computed from the same arguments, in float64 where the inputs are not
float32/float64), the shapes the arguments ask for in a layer's parameters, and plain numpy."""
from __future__ import annotations

import inspect
import os

import numpy as np

import fastconv as fc
from fastconv import ops
from fastconv import reference as ref

from .cases import fork_pool_conv, step


DATA_ARGS = {"x", "w", "b", "dy", "y", "z", "param", "grad", "velocity", "m", "v", "relu_y",
             "value"}
INPLACE_ARGS = {"sgd_update": ("param", "velocity"), "adam_update": ("param", "m", "v")}


def _plain(a):
    return a.as_ndarray() if isinstance(a, fc.Node) else a


def _as64(name, a):
    """The oracle computes in the arrays' own float dtype (float32 overflows where the kernels'
    float32 does), and in float64 from ints, bools, float16 and lists."""
    a = _plain(a)
    if isinstance(a, (list, tuple)) and name in DATA_ARGS:
        a = np.asarray(a)
    if isinstance(a, np.ndarray) and (a.dtype.kind in "biu" or a.dtype == np.float16):
        if name in DATA_ARGS or (name == "t" and a.ndim == 2):
            return a.astype(np.float64)
    return a


def _oracle_args(bound: dict) -> dict:
    """The arguments for the reference: as _as64, and all in float64 if any data array is (a
    float32 array beside a float64 one is computed in float64, not accumulated in float32)."""
    a = {k: _as64(k, v) for k, v in bound.items()}
    arrays = [v for k, v in a.items() if k in DATA_ARGS and isinstance(v, np.ndarray)]
    if any(v.dtype == np.float64 for v in arrays):
        a = {k: v.astype(np.float64) if k in DATA_ARGS and isinstance(v, np.ndarray)
             and v.dtype == np.float32 else v for k, v in a.items()}
    return a


def compare(got, want, what="result") -> str | None:
    """None if got matches want (float32 results against a float64 oracle), else why not."""
    got = _plain(got)
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            return f"{what}: expected a sequence of {len(want)}, got {_brief(got)}"
        for i, (g, w) in enumerate(zip(got, want)):
            why = compare(g, w, f"{what}[{i}]")
            if why:
                return why
        return None
    if want is None or got is None:
        return None if got is None and want is None else f"{what}: {_brief(got)} != {_brief(want)}"
    if not isinstance(got, (np.ndarray, np.generic, int, float)):
        return f"{what}: expected an array, got {_brief(got)}"
    g, w = np.asarray(got), np.asarray(want)
    if g.shape != w.shape:
        return f"{what}: shape {g.shape} != expected {w.shape}"
    if g.dtype.kind in "iub" or w.dtype.kind in "iub":
        if not np.array_equal(g, w):
            return f"{what}: values differ from expected (exact)"
        return None
    if g.dtype.kind != "f":
        return f"{what}: dtype {g.dtype}"
    rtol = 1e-4 if g.dtype == np.float32 else 1e-9
    with np.errstate(over="ignore"):  # beyond float32's range is inf in float32, as computed
        g64, w64 = g.astype(np.float64), w.astype(g.dtype).astype(np.float64)
    finite = w64[np.isfinite(w64)]
    atol = rtol * max(1.0, float(np.abs(finite).max()) if finite.size else 1.0)
    ok = np.isclose(g64, w64, rtol=rtol, atol=atol, equal_nan=True)
    if not ok.all():
        i = np.unravel_index(int(np.argmin(ok)), ok.shape)
        return f"{what}: at {tuple(int(v) for v in i)} got {g64[i]!r}, expected {w64[i]!r}"
    return None


def _brief(v) -> str:
    v = _plain(v)
    if isinstance(v, np.ndarray):
        flat = v.reshape(-1)[:3].tolist() if v.size else []
        return f"array{v.shape} {v.dtype} {flat}"
    text = repr(v)
    return text if len(text) < 60 else text[:57] + "..."


def _bind(fn, args, kwargs) -> dict:
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def _raw_pair(v):
    return tuple(v) if isinstance(v, (tuple, list, np.ndarray)) else (v, v)


def _conv_out(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _unfused_conv_pool(name, a):
    """What the fused conv + ReLU + 2x2 max pool promises bitwise: the unfused kernels' chain
    (float32 overflow included, which a float32 reference summing in another order does not
    reproduce). The backward masks dy by the given y > 0, as the fused kernel documents."""
    geo = {k: a[k] for k in ("stride", "padding", "dilation")}
    codes = a["window_indices"]
    if name.endswith("_forward"):
        z = ops.conv2d_forward(a["x"], a["w"], a["b"], **geo, relu=True)
        return ops.max_pool2d_forward(z, 2, 2, 0, window_indices=codes)
    z = ops.conv2d_forward(a["x"], a["w"], None, **geo)
    g = np.where(np.asarray(a["y"]) > 0, a["dy"], np.zeros_like(a["dy"]))
    dz = ops.max_pool2d_backward(z, g, a["indices"], 2, 2, 0, window_indices=codes)
    return ops.conv2d_backward(a["x"], a["w"], dz, **geo, need_dx=a["need_dx"],
                               need_db=a["need_db"])


def _same_bits(got, want) -> str | None:
    for i, (g, w) in enumerate(zip(got, want)):
        if (g is None) != (w is None) or (g is not None and (
                g.dtype != w.dtype or g.shape != w.shape or g.tobytes() != w.tobytes())):
            return f"result[{i}] differs from the unfused chain's"
    return None


# The multi-tensor updates: each list's single-update argument.
MULTI_LISTS = {"sgd_update_multi": {"params": "param", "grads": "grad", "velocities": "velocity"},
               "adam_update_multi": {"params": "param", "grads": "grad", "ms": "m", "vs": "v",
                                     "steps": "step"}}


def _multi(name, a, after, result) -> str | None:
    """The reference's single update on each entry in turn; the arrays in place after the call
    must match what it left."""
    if result is not None:
        return f"returned {_brief(result)}, not None"
    single = name[:-len("_multi")]
    lists = MULTI_LISTS[name]
    n = len(a["params"])
    decays = a["weight_decays"] if a["weight_decays"] is not None else [0.0] * n
    # corrections: None on the CPU (the fuzz's backend), where the steps form them.
    scalars = {k: v for k, v in a.items()
               if k not in lists and k not in ("weight_decays", "corrections")}
    for i in range(n):
        entry = {one: (a[many][i] if a[many] is not None else None)
                 for many, one in lists.items()}
        a64 = _oracle_args({**scalars, **entry, "weight_decay": decays[i]})
        getattr(ref, single)(**a64)
        for many, one in lists.items():
            if one in INPLACE_ARGS[single] and a64.get(one) is not None:
                why = compare(after[many][i], a64[one], f"{many}[{i}] after the update")
                if why:
                    return why
    return None


def _oracle_ops(name, fn):
    def oracle(args, kwargs, snapshot, result):
        a = _bind(fn, *snapshot)
        if name in MULTI_LISTS:
            return _multi(name, a, _bind(fn, args, kwargs), result)
        if name.startswith("conv2d_relu_max_pool2d_"):
            return _same_bits(result, _unfused_conv_pool(name, a))
        if name == "conv2d_scratch_bytes":
            x, w = a["x"], a["w"]
            (sh, sw), (ph, pw), (dh, dw) = (_raw_pair(a[k]) for k in ("stride", "padding",
                                                                      "dilation"))
            oh = _conv_out(x.shape[2], w.shape[2], sh, ph, dh)
            ow = _conv_out(x.shape[3], w.shape[3], sw, pw, dw)
            if oh < 1 or ow < 1:
                return f"returned {result!r} for an output size ({oh}, {ow})"
            floor = w.shape[1] * w.shape[2] * w.shape[3] * oh * ow * x.dtype.itemsize
            if type(result) is not int or result < floor:
                return (f"returned {result!r}; one sample's im2col columns alone take "
                        f"{floor} bytes")
            return None
        a64 = _oracle_args(a)
        want = getattr(ref, name)(**a64)
        why = compare(result, want)
        if why or name not in INPLACE_ARGS:
            return why
        after = _bind(fn, args, kwargs)
        for arg in INPLACE_ARGS[name]:
            if a64.get(arg) is not None:
                why = compare(after[arg], a64[arg], f"{arg} after the update")
                if why:
                    return why
        return None
    return oracle


def _dropout_structure(x, ratio, y) -> str | None:
    x, y = np.asarray(_plain(x), np.float64), np.asarray(_plain(y))
    if y.shape != x.shape:
        return f"shape {y.shape} != input shape {x.shape}"
    kept = y != 0
    scaled = x / (1.0 - ratio)
    why = compare(np.where(kept, y, 0), np.where(kept, scaled, 0), "kept elements")
    return why


def _functional_oracles() -> dict:
    def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, relu=False):
        b = None if b is None else np.reshape(b, -1)
        return ref.conv2d_forward(x, w, b, stride, padding, dilation, relu)

    def flatten(x):
        x = np.asarray(x)
        return x.reshape(x.shape[0], -1)

    table = {
        fc.conv2d: conv2d,
        fc.relu: lambda x: ref.relu_forward(x),
        fc.dense: lambda x, w, b=None, relu=False: ref.dense_forward(
            x, w, None if b is None else np.reshape(b, -1), relu),
        fc.max_pool2d: lambda x, filter=3, stride=1, padding=0, ceil_mode=False:
            ref.max_pool2d_forward(x, filter, stride, padding, ceil_mode)[0],
        fc.average_pool2d: ref.average_pool2d_forward,
        fc.flatten: flatten,
        fc.softmax_cross_entropy: ref.softmax_cross_entropy_forward,
    }

    def wrap(fn, reference):
        def oracle(args, kwargs, snapshot, result):
            return compare(result, reference(**_oracle_args(_bind(fn, *snapshot))))
        return oracle

    oracles = {fn: wrap(fn, r) for fn, r in table.items()}

    def dropout(args, kwargs, snapshot, result):
        a = _bind(fc.dropout, *snapshot)
        if a["seed"] is None:
            return _dropout_structure(a["x"], a["dropout_ratio"], result)
        return compare(result, ref.dropout_forward(_as64("x", a["x"]), a["dropout_ratio"],
                                                   a["seed"]))

    def variable(args, kwargs, snapshot, result):
        value = _plain(_bind(fc.Variable, *snapshot)["value"])
        want = np.array(value)
        if want.dtype.kind != "f":
            want = want.astype(np.float32)
        return compare(result, want)

    def set_num_threads(args, kwargs, snapshot, result):
        n, got = _bind(fc.set_num_threads, *snapshot)["n"], fc.get_num_threads()
        if result is not None or type(n) is not int or not 1 <= got <= n:
            return f"set_num_threads({n!r}) returned {result!r}; get_num_threads() is {got}"
        if got != n and n <= (os.cpu_count() or 1):
            return f"set_num_threads({n}) left get_num_threads() at {got}"
        return None

    def optimiser_step(args, kwargs, snapshot, result):
        opt, param, grad = _bind(step, *snapshot).values()
        p, g = _as64("param", param), _as64("grad", grad)
        if isinstance(opt, fc.Sgd):
            v = np.zeros_like(p) if opt.momentum else None
            ref.sgd_update(p, g, v, lr=opt.lr, momentum=opt.momentum, nesterov=opt.nesterov)
        else:
            ref.adam_update(p, g, np.zeros_like(p), np.zeros_like(p), 1, lr=opt.lr,
                            beta1=opt.b, beta2=opt.g, eps=opt.epsilon)
        return compare(result, p)

    def conv_relu_pool(args, kwargs, snapshot, result):
        """Bitwise the unfused chain (its own oracles check it against the reference), forward
        and, over the same arguments as Variables, the gradients of the one node."""
        a = _bind(fc.conv2d_relu_max_pool2d, *snapshot)
        geo = {k: a[k] for k in ("stride", "padding", "dilation")}

        def chain(x, w, b):
            return fc.max_pool2d(fc.conv2d(x, w, b, **geo, relu=True), 2, 2, 0)

        if _same_bits([_plain(result)], [_plain(chain(a["x"], a["w"], a["b"]))]):
            return "the result differs from the unfused chain's"
        names = [k for k in ("x", "w", "b") if a[k] is not None]
        params = {k: fc.Variable(_plain(a[k])) for k in names}
        inputs = (params["x"], params["w"], params.get("b"))
        fused, unfused = fc.conv2d_relu_max_pool2d(*inputs, **geo), chain(*inputs)
        if fused._op != "conv2d_relu_max_pool2d":
            return f"recorded as {fused._op!r}, not as one conv2d_relu_max_pool2d node"
        dy = np.cos(np.arange(fused.size)).reshape(fused.shape).astype(fused.dtype)
        g_fused, g_chain = fused.grad(dy), unfused.grad(dy)
        for k in names:
            if _same_bits([_plain(g_fused.get(params[k]))], [_plain(g_chain.get(params[k]))]):
                return f"the gradient of {k} differs from the unfused chain's"
        return None

    def pool_conv(args, kwargs, snapshot, result):
        want = ref.conv2d_forward(np.ones((8, 4, 12, 12)), np.ones((8, 4, 3, 3)))
        return compare(result, [want, want])

    oracles.update({fc.dropout: dropout, fc.Variable: variable,
                    fc.set_num_threads: set_num_threads, step: optimiser_step,
                    fork_pool_conv: pool_conv, fc.conv2d_relu_max_pool2d: conv_relu_pool})
    return oracles


def _layer_oracle(layer, ctor_args, x, result) -> str | None:
    """A layer's first call: its parameters have the shapes its arguments ask for (compared with
    the raw arguments, so channel=2.7 building 2 channels is wrong) and the output is the op's."""
    a = _bind(type(layer), *ctor_args)
    xv = _as64("x", x)
    if isinstance(layer, (fc.Conv2d, fc.Dense)):
        w = layer.params["w"].as_ndarray()
        if isinstance(layer, fc.Conv2d):
            want = (a["channel"], np.shape(xv)[1], *_raw_pair(a["filter"]))
        else:
            want = (a["input_size"] if a["input_size"] is not None else np.shape(xv)[1],
                    a["output_size"])
        if tuple(w.shape) != want:
            return f"weights of shape {tuple(w.shape)}; the arguments ask for {want}"
        b = layer.params["b"].as_ndarray().reshape(-1) if "b" in layer.params else None
        w = w.astype(np.float64)
        if isinstance(layer, fc.Conv2d):
            expected = ref.conv2d_forward(xv, w, b, a["stride"], a["padding"], a["dilation"])
        else:
            expected = ref.dense_forward(xv, w, b)
    elif isinstance(layer, fc.MaxPool2d):
        expected = ref.max_pool2d_forward(xv, a["filter"], a["stride"], a["padding"],
                                          a["ceil_mode"])[0]
    elif isinstance(layer, fc.AveragePool2d):
        expected = ref.average_pool2d_forward(xv, a["filter"], a["stride"], a["padding"],
                                              a["ceil_mode"], a["count_include_pad"])
    elif isinstance(layer, fc.Relu):
        expected = ref.relu_forward(xv)
    elif isinstance(layer, fc.Flatten):
        expected = np.asarray(xv).reshape(np.shape(xv)[0], -1)
    elif isinstance(layer, fc.Dropout):
        return _dropout_structure(x, a["dropout_ratio"], result)
    else:
        return f"no oracle for {type(layer).__name__}"
    return compare(result, expected)


OPS_PUBLIC = sorted(n for n in dir(ops) if callable(getattr(ops, n)) and not n.startswith("_")
                    and n != "pair")
ORACLES = {getattr(ops, n): _oracle_ops(n, getattr(ops, n)) for n in OPS_PUBLIC}
ORACLES.update(_functional_oracles())
LAYERS = (fc.Conv2d, fc.Dense, fc.MaxPool2d, fc.AveragePool2d, fc.Relu, fc.Flatten, fc.Dropout)
