"""The fuzz corpus: its cases, the fixtures they are written over, and the helpers they call.

A case is one line of tests/fuzz/reproducers.txt or generated.txt: `id | expectation | code`. The
code is Python over the names of `namespace()` (fixtures X, W, Z, ... and helpers); its last
statement is the call under test. Expectations: `either` (a clean error or the right result),
`raises` (malformed: only a clean error will do), `check: <expr over R>` (the result R must
satisfy it), `says: <text>` (a clean error whose message contains text) and `state: <text>` (a
RuntimeError whose message contains text: a misuse of state, not a malformed argument).
"""
from __future__ import annotations

import multiprocessing
import resource
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import fastconv as fc
from fastconv import ops
from fastconv import reference as ref

FUZZ_DIR = Path(__file__).resolve().parent
CORPUS_FILES = ("reproducers.txt", "generated.txt")
EXPECTATIONS = ("either", "raises", "check:", "says:", "state:")
POOL_TIMEOUT_S = 2.5  # a fork pool worker's conv2d_forward, well inside the harness's timeout


@dataclass
class Case:
    id: str
    expect: str
    code: str
    where: str = ""


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
    # conv2d_relu_max_pool2d over X, W, B: the pooled output, its indices and a gradient.
    cy, fx["CPI"] = ref.conv2d_relu_max_pool2d_forward(fx["X"], fx["W"], fx["B"])
    fx["CPY"], fx["DYCP"] = cy.astype(np.float32), f4(*cy.shape)
    # The same indices as window codes (window_indices=True).
    fx["PIC"] = ref.max_pool2d_forward(fx["X"], 2, 2, window_indices=True)[1]
    fx["CPIC"] = ref.conv2d_relu_max_pool2d_forward(fx["X"], fx["W"], fx["B"],
                                                    window_indices=True)[1]
    for name in ("X", "W", "B", "DY", "A", "D", "Z", "P", "G"):
        fx[name + "64"] = fx[name].astype(np.float64)
    fx["XRO"] = fx["X"].copy()
    fx["XRO"].flags.writeable = False
    fx["PRO"] = fx["P"].copy()
    fx["PRO"].flags.writeable = False
    # A second parameter of another shape for the multi-tensor updates (drawn last, so that
    # every fixture above keeps its values).
    fx.update(P2=f4(5), G2=f4(5), V2=np.zeros(5, np.float32), M2=np.zeros(5, np.float32),
              VV2=np.zeros(5, np.float32))
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
                return pending.get(timeout=POOL_TIMEOUT_S)
            except multiprocessing.TimeoutError:
                raise Hang("a fork pool worker did not finish its conv2d_forward") from None


def namespace() -> dict:
    ns = dict(np=np, fc=fc, ops=ops, ref=ref, nan=float("nan"), inf=float("inf"),
              in_thread=in_thread, step=step, fork_pool_conv=fork_pool_conv,
              noncontig=noncontig, readonly=readonly, allow_memory=allow_memory)
    ns.update(fixtures())
    return ns
