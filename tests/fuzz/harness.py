"""The fuzz harness: every corpus case runs in a forked child, so a crash or a hang is counted
instead of killing the run.

A case is one line of a corpus file: `id | expectation | code`. The code is Python over the
fixtures of `fixtures()` (X, W, Z, ...) and the names of `namespace()`; its last statement is the
call under test. The child runs it and judges it:

- a TypeError/ValueError whose message names an argument of the call, contains "got " and is
  whole (balanced brackets, no dangling end), or a MemoryError that names its byte count: clean;
- a result: checked against an oracle (fastconv.reference, numpy, or a check the case states);
- anything else (another exception, a half message, a wrong result) is a failure, and so is a
  signal (crash) or no answer within the timeout (hang), which the parent observes.

Expectations: `either` (a clean error or the right result), `raises` (malformed: only a clean
error will do), `check: <expr over R>` (the result R must satisfy it) and `says: <text>` (a clean
error whose message contains text).

Fork safety is part of the design: the parent runs a parallel op before it forks the first case,
so every child runs its ops after its parent ran one (the libgomp-after-fork hang). If the probe
case shows that this hangs, the remaining cases run from a fresh interpreter that has run no op,
so one bug does not turn every other case into a hang.

`python tests/fuzz/harness.py [--json] [ID ...]` runs the corpus (or some cases) outside pytest.
"""
from __future__ import annotations

import ast
import inspect
import json
import multiprocessing
import os
import re
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import fastconv as fc
from fastconv import ops
from fastconv import reference as ref

FUZZ_DIR = Path(__file__).resolve().parent
PACKAGE_DIR = Path(fc.__file__).resolve().parent
CORPUS_FILES = ("reproducers.txt", "generated.txt")
TIMEOUT_S = 5.0
PARALLEL_CHILDREN = 2
# Address space a child may add: the deliberately huge calls must fail at argument checking, and
# one that tries to allocate instead gets a quick MemoryError here rather than swapping the host.
MEMORY_HEADROOM = 4 << 30
MEMORY_HEADROOM_ALLOWED = 24 << 30  # allow_memory(): for calloc'd, never touched, arrays
EXPECTATIONS = ("either", "raises", "check:", "says:")


@dataclass
class Case:
    id: str
    expect: str
    code: str
    where: str = ""


@dataclass
class Outcome:
    case: Case
    kind: str  # "clean-error", "correct", or a failure kind (FAILURE_KINDS)
    detail: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.kind in ("clean-error", "correct")


FAILURE_KINDS = ("crash", "hang", "died", "other-exception", "incomplete-message",
                 "wrong-result", "accepted-malformed", "corpus-error")


# ---------------------------------------------------------------------------------------------
# The corpus

def load_corpus(names=CORPUS_FILES) -> list[Case]:
    cases, seen = [], {}
    for name in names:
        path = FUZZ_DIR / name
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = [p.strip() for p in line.split(" | ", 2)]
            where = f"{name}:{lineno}"
            if len(parts) != 3 or not parts[2]:
                raise ValueError(f"{where}: expected 'id | expectation | code', got {line!r}")
            case = Case(*parts, where=where)
            if not case.expect.startswith(EXPECTATIONS):
                raise ValueError(f"{where}: unknown expectation {case.expect!r}")
            if case.id in seen:
                raise ValueError(f"{where}: duplicate id {case.id!r} (first at {seen[case.id]})")
            seen[case.id] = where
            cases.append(case)
    return cases


def fixtures() -> dict:
    """Small, ordinary arrays: the valid calls the generator mutates are built from these."""
    rng = np.random.default_rng(8)

    def f4(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    fx = dict(
        X=f4(2, 3, 6, 6), W=f4(4, 3, 3, 3), B=f4(4), DY=f4(2, 4, 4, 4),  # conv 3x3, no padding
        DYP=f4(2, 3, 3, 3), DYA=f4(2, 3, 4, 4),  # pool 2x2 stride 2; pool 3x3 stride 1
        A=f4(4, 5), D=f4(5, 3), DB=f4(3), DYD=f4(4, 3), CB=f4(3),  # dense; a bias over X
        Z=f4(4, 5), T=np.array([0, 3, 1, 4], np.int64),  # logits and labels
        P=f4(3, 4), G=f4(3, 4), V=np.zeros((3, 4), np.float32),  # optimiser state
        M=np.zeros((3, 4), np.float32), VV=np.zeros((3, 4), np.float32),
    )
    fx["TO"] = np.eye(5, dtype=np.float32)[fx["T"]]
    fx["PI"] = ref.max_pool2d_forward(fx["X"], 2, 2)[1]
    for name in ("X", "W", "B", "DY", "A", "D", "Z", "P", "G"):
        fx[name + "64"] = fx[name].astype(np.float64)
    fx["XRO"] = fx["X"].copy()
    fx["XRO"].flags.writeable = False
    fx["PRO"] = fx["P"].copy()
    fx["PRO"].flags.writeable = False
    return fx


class Hang(Exception):
    """Raised by a helper that waited in vain (a fork pool that never answers)."""


def in_thread(fn, *args):
    """fn(*args) on a new thread: what a thread that did not call set_num_threads sees."""
    box = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # handed back to the caller
            box["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def step(optimizer, param, grad):
    """One optimiser step on a fresh Variable holding param; the updated value."""
    variable = fc.Variable(param)
    optimizer.step(variable, grad)
    return variable.as_ndarray()


def noncontig(a):
    """The same shape and values, not C-contiguous."""
    a = np.asarray(a)
    if a.ndim >= 2:
        return np.swapaxes(np.swapaxes(a, 0, 1).copy(), 0, 1)
    return np.repeat(a, 2)[::2]


def readonly(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


def allow_memory():
    """Lift this child's address-space limit to its hard limit, for a case whose arrays are large
    but untouched (calloc'd zeros, so no real memory)."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


def _pool_conv(_):
    x = np.ones((8, 4, 12, 12), np.float32)
    return ops.conv2d_forward(x, np.ones((8, 4, 3, 3), np.float32))


def fork_pool_conv():
    """A parallel op in each worker of a multiprocessing fork pool, after this process ran one."""
    _pool_conv(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (Python 3.12+)
        with multiprocessing.get_context("fork").Pool(2) as pool:
            pending = pool.map_async(_pool_conv, range(2))
            try:
                return pending.get(timeout=TIMEOUT_S / 2)
            except multiprocessing.TimeoutError:
                raise Hang("a fork pool worker did not finish its conv2d_forward") from None


def namespace() -> dict:
    ns = dict(np=np, fc=fc, ops=ops, ref=ref, nan=float("nan"), inf=float("inf"),
              in_thread=in_thread, step=step, fork_pool_conv=fork_pool_conv,
              noncontig=noncontig, readonly=readonly, allow_memory=allow_memory)
    ns.update(fixtures())
    return ns


# ---------------------------------------------------------------------------------------------
# Oracles: what a successful call should have returned

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
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _conv_out(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _oracle_ops(name, fn):
    def oracle(args, kwargs, snapshot, result):
        a = _bind(fn, *snapshot)
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
        fc.dense: lambda x, w, b=None: ref.dense_forward(
            x, w, None if b is None else np.reshape(b, -1)),
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

    def pool_conv(args, kwargs, snapshot, result):
        want = ref.conv2d_forward(np.ones((8, 4, 12, 12)), np.ones((8, 4, 3, 3)))
        return compare(result, [want, want])

    oracles.update({fc.dropout: dropout, fc.Variable: variable,
                    fc.set_num_threads: set_num_threads, step: optimiser_step,
                    fork_pool_conv: pool_conv})
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
# Arguments a message may name besides the callee's own: those of the op it delegates to.
DELEGATES = {fc.Conv2d: fc.conv2d, fc.Dense: fc.dense, fc.MaxPool2d: fc.max_pool2d,
             fc.AveragePool2d: fc.average_pool2d, fc.Dropout: fc.dropout, fc.Relu: fc.relu,
             fc.Flatten: fc.flatten, fc.Sgd: ops.sgd_update, fc.Adam: ops.adam_update,
             step: ops.sgd_update, fc.conv2d: ops.conv2d_forward, fc.dense: ops.dense_forward,
             fc.max_pool2d: ops.max_pool2d_forward, fc.relu: ops.relu_forward,
             fc.average_pool2d: ops.average_pool2d_forward, fc.dropout: ops.dropout_forward,
             fc.softmax_cross_entropy: ops.softmax_cross_entropy_forward}


# ---------------------------------------------------------------------------------------------
# Judging one case (in the child)

def _param_names(fn) -> set:
    names = set()
    for f in (fn, DELEGATES.get(fn)):
        if f is None:
            continue
        try:
            names |= set(inspect.signature(f).parameters)
        except (TypeError, ValueError):
            pass
    if inspect.isclass(fn) and issubclass(fn, fc.Layer):
        names.add("x")
    if fn in (fc.Sgd, fc.Adam, step):
        names |= set(inspect.signature(ops.adam_update).parameters)
    names.discard("self")
    return names


def _argument_names(tree, ns) -> set:
    """Parameter names of every fastconv callable the case calls."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and not isinstance(node.func, ast.Call):
            try:
                fn = eval(compile(ast.Expression(node.func), "<case>", "eval"), ns)
            except Exception:
                continue
            names |= _param_names(fn)
    return names


def message_problem(exc: BaseException, names: set) -> str | None:
    """None if the error's message meets the convention, else what is missing."""
    msg = str(exc)
    if isinstance(exc, MemoryError):
        return None if re.search(r"\b\d+ bytes\b", msg) else "MemoryError without a byte count"
    if "incompatible function arguments" in msg or "C++ type" in msg:
        return "pybind11 signature dump"
    # One depth for ( and [ alike, so a half-open interval "[0, 1)" balances; a message cut
    # short ("got shape (") does not.
    depth = sum(msg.count(c) for c in "([") - sum(msg.count(c) for c in ")]")
    if depth > 0 or re.search(r"(\bgot|[(\[,:])\s*$", msg):
        return "truncated"
    if "got " not in msg:
        return 'no "got <what was received>"'
    if not any(re.search(r"(?<![\w.])" + re.escape(n) + r"\b", msg) for n in names):
        return "names no argument of the call (" + ", ".join(sorted(names)) + ")"
    return None


def _evaluate(node, ns):
    return eval(compile(ast.Expression(node), "<case>", "eval"), ns)


def _evaluate_args(call: ast.Call, ns):
    args = [_evaluate(a, ns) for a in call.args]
    kwargs = {k.arg: _evaluate(k.value, ns) for k in call.keywords}
    return args, kwargs


def _snapshot(args, kwargs):
    def cp(a):
        return a.copy() if isinstance(a, np.ndarray) else a
    return [cp(a) for a in args], {k: cp(v) for k, v in kwargs.items()}


def judge(case: Case, ns: dict) -> tuple[str, str]:
    """Run the case here (in the child) and return (kind, detail)."""
    try:
        tree = ast.parse(case.code)
    except SyntaxError as e:
        return "corpus-error", f"syntax: {e}"
    *setup, last = tree.body
    checker, result = None, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            exec(compile(ast.Module(setup, type_ignores=[]), "<case>", "exec"), ns)
            if not isinstance(last, ast.Expr):
                return "corpus-error", "the last statement must be the call under test"
            call = last.value
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Call):  # Layer(...)(x)
                cls = _evaluate(call.func.func, ns)
                cargs, ckwargs = _evaluate_args(call.func, ns)
                layer = cls(*cargs, **ckwargs)
                args, kwargs = _evaluate_args(call, ns)
                snapshot = _snapshot(args, kwargs)
                result = layer(*args, **kwargs)
                if isinstance(layer, LAYERS):
                    def checker(r, layer=layer, c=(cargs, ckwargs), x=snapshot[0][0]):
                        return _layer_oracle(layer, c, x, r)
            elif isinstance(call, ast.Call):
                fn = _evaluate(call.func, ns)
                args, kwargs = _evaluate_args(call, ns)
                snapshot = _snapshot(args, kwargs)
                result = fn(*args, **kwargs)
                oracle = ORACLES.get(fn) if _hashable(fn) else None
                if oracle is not None:
                    def checker(r):
                        return oracle(args, kwargs, snapshot, r)
            else:
                result = _evaluate(call, ns)
    except Hang as e:
        return "hang", str(e)
    except Exception as e:
        if not _raised_by_fastconv(e):  # the case's own set-up failed: fix the corpus
            return "corpus-error", f"outside fastconv: {type(e).__name__}: {e}"
        return _judge_error(case, tree, ns, e)
    return _judge_result(case, ns, result, checker)


def _raised_by_fastconv(e: BaseException) -> bool:
    tb = e.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(PACKAGE_DIR):
            return True
        tb = tb.tb_next
    return False


def _judge_error(case, tree, ns, e) -> tuple[str, str]:
    if isinstance(e, (TypeError, ValueError, MemoryError)):
        problem = message_problem(e, _argument_names(tree, ns))  # after the setup ran
        text = f"{type(e).__name__}: {e}"
        if problem:
            return "incomplete-message", f"{problem}: {text}"
        if case.expect.startswith("says:"):
            wanted = case.expect[len("says:"):].strip()
            if wanted not in str(e):
                return "incomplete-message", f"lacks {wanted!r}: {text}"
        return "clean-error", text
    return "other-exception", f"{type(e).__name__}: {e}"


def _hashable(fn) -> bool:
    try:
        hash(fn)
        return True
    except TypeError:
        return False


def _judge_result(case, ns, result, checker) -> tuple[str, str]:
    if case.expect in ("raises",) or case.expect.startswith("says:"):
        return "accepted-malformed", f"returned {_brief(result)}"
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("error")
            warnings.simplefilter("ignore", RuntimeWarning)
            if case.expect.startswith("check:"):
                ok = eval(case.expect[len("check:"):], dict(ns, R=_plain(result)))
                why = None if ok else f"{case.expect[6:].strip()} fails for R = {_brief(result)}"
            elif checker is None:
                return "corpus-error", f"no oracle for this call; returned {_brief(result)}"
            else:
                why = checker(result)
    except Exception as e:  # the oracle refuses what fastconv accepted
        return "wrong-result", (f"returned {_brief(result)} where the reference raises "
                                f"{type(e).__name__}: {e}")
    return ("wrong-result", why) if why else ("correct", "")


# ---------------------------------------------------------------------------------------------
# Running cases in children (in the parent)

def _limit_memory():
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[0])
    base = pages * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (base + MEMORY_HEADROOM,
                                            base + MEMORY_HEADROOM_ALLOWED))


def _child(case: Case, ns: dict, wfd: int, log_fd: int) -> None:
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    try:
        _limit_memory()
        kind, detail = judge(case, ns)
    except BaseException as e:  # the harness itself failed: say so rather than vanish
        kind, detail = "corpus-error", f"harness: {type(e).__name__}: {e}"
    payload = json.dumps({"kind": kind, "detail": detail}).encode()
    while payload:
        payload = payload[os.write(wfd, payload):]


@dataclass
class _Running:
    case: Case
    pid: int
    rfd: int
    log: object
    start: float
    chunks: list = field(default_factory=list)


def _start(case: Case, ns: dict) -> _Running:
    rfd, wfd = os.pipe()
    log = tempfile.TemporaryFile()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (Python 3.12+)
        pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            _child(case, ns, wfd, log.fileno())
        finally:
            os._exit(0)
    os.close(wfd)
    return _Running(case, pid, rfd, log, time.monotonic())


def _last_log_line(log) -> str:
    log.seek(0)
    lines = [ln for ln in log.read().decode(errors="replace").splitlines() if ln.strip()]
    log.close()
    return lines[-1].strip() if lines else ""


def _finish(run: _Running, timed_out: bool, timeout: float) -> Outcome:
    os.close(run.rfd)
    if timed_out:
        os.kill(run.pid, signal.SIGKILL)
    _, status = os.waitpid(run.pid, 0)
    seconds = time.monotonic() - run.start
    tail = _last_log_line(run.log)
    if timed_out:
        return Outcome(run.case, "hang", f"no answer in {timeout:g} s", seconds)
    if os.WIFSIGNALED(status):
        sig = signal.Signals(os.WTERMSIG(status)).name
        return Outcome(run.case, "crash", sig + (f" ({tail})" if tail else ""), seconds)
    data = b"".join(run.chunks)
    if not data:
        code = os.WEXITSTATUS(status)
        return Outcome(run.case, "died", f"exit status {code}, no report" +
                       (f" ({tail})" if tail else ""), seconds)
    report = json.loads(data)
    return Outcome(run.case, report["kind"], report["detail"], seconds)


def run_cases(cases: list[Case], ns: dict | None = None, parallel: int = PARALLEL_CHILDREN,
              timeout: float = TIMEOUT_S, on_done=None) -> list[Outcome]:
    """Fork a child per case, `parallel` at a time; outcomes in the cases' order."""
    ns = namespace() if ns is None else ns
    pending, running, done = list(reversed(cases)), {}, {}
    while pending or running:
        while pending and len(running) < parallel:
            run = _start(pending.pop(), ns)
            running[run.rfd] = run
        now = time.monotonic()
        wait = max(0.0, min(r.start + timeout for r in running.values()) - now)
        readable, _, _ = select.select(list(running), [], [], wait)
        for fd in readable:
            chunk = os.read(fd, 65536)
            if chunk:
                running[fd].chunks.append(chunk)
            else:
                run = running.pop(fd)
                done[run.case.id] = _finish(run, False, timeout)
                if on_done:
                    on_done(done[run.case.id])
        now = time.monotonic()
        for fd in [fd for fd, r in running.items() if now - r.start > timeout]:
            run = running.pop(fd)
            done[run.case.id] = _finish(run, True, timeout)
            if on_done:
                on_done(done[run.case.id])
    return [done[c.id] for c in cases]


# ---------------------------------------------------------------------------------------------
# Fork safety, and the whole run

PARENT_OP = "ops.conv2d_forward(np.ones((8, 4, 16, 16), 'f4'), np.ones((8, 4, 3, 3), 'f4'))"
FORK_PROBE = Case("fork-after-parallel-op", "either", PARENT_OP, "harness.py")


def run_parallel_op_here() -> None:
    """Run a parallel op on at least two threads in this process, so that its children are forked
    after an OpenMP region (libgomp's thread pool does not survive fork)."""
    before = fc.get_num_threads()
    fc.set_num_threads(max(2, before))
    try:
        eval(PARENT_OP, {"ops": ops, "np": np})
    finally:
        fc.set_num_threads(before)


def run_corpus(cases: list[Case]) -> list[Outcome]:
    """The probe, then every case: forked from this process when the probe passed, else from a
    fresh interpreter that has run no op (so the fork bug is counted once, not everywhere)."""
    run_parallel_op_here()
    probe = run_cases([FORK_PROBE], parallel=1)[0]
    if probe.ok:
        return [probe] + run_cases(cases)
    return [probe] + run_in_fresh_interpreter(cases)


def run_in_fresh_interpreter(cases: list[Case]) -> list[Outcome]:
    package_root = str(Path(fc.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([package_root] + [p for p in env.get(
        "PYTHONPATH", "").split(os.pathsep) if p])
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--json", "--no-op",
                          *[c.id for c in cases]], env=env, capture_output=True, text=True,
                         timeout=60 + TIMEOUT_S * len(cases))
    if out.returncode not in (0, 1):
        raise RuntimeError(f"fuzz runner failed ({out.returncode}): {out.stderr[-2000:]}")
    by_id = {c.id: c for c in cases}
    return [Outcome(by_id[r["id"]], r["kind"], r["detail"], r["seconds"])
            for r in json.loads(out.stdout)]


def failure_table(outcomes: list[Outcome], width: int = 200) -> str:
    """One screen: counts by kind, then one line per failing case."""
    bad = [o for o in outcomes if not o.ok]
    counts = {}
    for o in bad:
        counts[o.kind] = counts.get(o.kind, 0) + 1
    lines = [f"{len(bad)} of {len(outcomes)} fuzz cases failed: " +
             ", ".join(f"{k} {counts[k]}" for k in FAILURE_KINDS if k in counts)]
    if bad:
        idw = max(len(o.case.id) for o in bad)
        lines.append(f"{'case':<{idw}}  {'outcome':<18}  call  =>  detail")
        for kind in FAILURE_KINDS:
            for o in (o for o in bad if o.kind == kind):
                code = o.case.code if len(o.case.code) <= 70 else o.case.code[:67] + "..."
                detail = " ".join(o.detail.split())  # pybind11 dumps span many lines
                line = f"{o.case.id:<{idw}}  {o.kind:<18}  {code}  =>  {detail}"
                lines.append(line if len(line) <= width else line[:width - 3] + "...")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    as_json, no_op = "--json" in argv, "--no-op" in argv
    wanted = [a for a in argv if not a.startswith("--")]
    fc._native.C._set_poison_outputs(True)
    cases = load_corpus()
    if wanted:
        cases = [c for c in cases if c.id in set(wanted)]
    if no_op:
        outcomes = run_cases(cases)
    else:
        outcomes = run_corpus(cases)
    if as_json:
        json.dump([{"id": o.case.id, "kind": o.kind, "detail": o.detail, "seconds": o.seconds}
                   for o in outcomes], sys.stdout)
    else:
        print(failure_table(outcomes, width=400))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
