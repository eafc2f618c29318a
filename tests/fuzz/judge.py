"""Judging one fuzz case, in the child that runs it: a clean error (the message convention of
helper-common: names an argument, says what it got, whole), or a result the oracle accepts."""
from __future__ import annotations

import ast
import inspect
import re
import warnings
from pathlib import Path

import numpy as np

import fastconv as fc
from fastconv import ops

from .cases import Case, Hang, step
from .oracles import LAYERS, ORACLES, _brief, _layer_oracle, _plain

PACKAGE_DIR = Path(fc.__file__).resolve().parent
# Arguments a message may name besides the callee's own: those of the op it delegates to.
DELEGATES = {fc.Conv2d: fc.conv2d, fc.Dense: fc.dense, fc.MaxPool2d: fc.max_pool2d,
             fc.AveragePool2d: fc.average_pool2d, fc.Dropout: fc.dropout, fc.Relu: fc.relu,
             fc.Flatten: fc.flatten, fc.Sgd: ops.sgd_update, fc.Adam: ops.adam_update,
             step: ops.sgd_update, fc.conv2d: ops.conv2d_forward, fc.dense: ops.dense_forward,
             fc.max_pool2d: ops.max_pool2d_forward, fc.relu: ops.relu_forward,
             fc.average_pool2d: ops.average_pool2d_forward, fc.dropout: ops.dropout_forward,
             fc.softmax_cross_entropy: ops.softmax_cross_entropy_forward,
             fc.conv2d_relu_max_pool2d: ops.conv2d_relu_max_pool2d_forward}


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
    """Parameter names of every fastconv callable the case calls or hands on (in_thread(f, n))."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Name, ast.Attribute)) and isinstance(node.ctx, ast.Load):
            try:
                fn = _evaluate(node, ns)
            except Exception:
                continue
            module = getattr(fn, "__module__", None) or ""
            if callable(fn) and (module.startswith("fastconv") or fn in (step,)):
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


# Arguments above this size are not copied: the deliberately huge ones are lazily zeroed
# gigabytes that a copy would touch page by page (and no oracle runs on them anyway).
_SNAPSHOT_LIMIT = 64 << 20


def _snapshot(args, kwargs):
    def cp(a):
        if isinstance(a, (list, tuple)):  # the multi-tensor updates' lists of arrays
            return type(a)(cp(x) for x in a)
        return a.copy() if isinstance(a, np.ndarray) and a.nbytes <= _SNAPSHOT_LIMIT else a
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
    if case.expect.startswith("state:"):
        # Not a malformed argument but a misuse of state (a graph whose inputs changed after the
        # forward): a RuntimeError, as PyTorch raises, that says what happened.
        wanted = case.expect[len("state:"):].strip()
        text = f"{type(e).__name__}: {e}"
        if not isinstance(e, RuntimeError):
            return "other-exception", text
        return ("clean-error", text) if wanted in str(e) else (
            "incomplete-message", f"lacks {wanted!r}: {text}")
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
    if case.expect in ("raises",) or case.expect.startswith(("says:", "state:")):
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
