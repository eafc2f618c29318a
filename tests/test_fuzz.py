"""The fuzz corpus (tests/fuzz/): the reproducers of issue 8 and a few hundred generated malformed
or extreme calls over every public op, each run in a forked child (tests/fuzz/harness.py), so a
crash or a hang is counted. Every case must end in a clean error or the right result.

Outside pytest: `PYTHONPATH=python:tests python -m fuzz.harness [ID ...]` prints the same table.
"""
import random
import signal

import pytest

import fastconv as fc
from fuzz import cases, generate, harness, judge, oracles

FUNCTIONAL = ("fc.conv2d(", "fc.relu(", "fc.dense(", "fc.max_pool2d(", "fc.average_pool2d(",
              "fc.dropout(", "fc.flatten(", "fc.softmax_cross_entropy(", "fc.Variable(",
              "fc.set_num_threads(", "fc.Sgd(", "fc.Adam(", "fc.Conv2d(", "fc.Dense(",
              "fc.MaxPool2d(", "fc.AveragePool2d(", "fc.Dropout(", "fc.Relu()(",
              "fc.Flatten()(", "fc.conv2d_relu_max_pool2d(")


def test_every_case_ends_clean():
    outcomes = harness.run_corpus(cases.load_corpus())
    assert outcomes[0].case is harness.FORK_PROBE  # the fork-safety case always runs
    if not all(o.ok for o in outcomes):
        pytest.fail(harness.failure_table(outcomes), pytrace=False)


def test_corpus_covers_every_public_op():
    code = "\n".join(c.code for c in cases.load_corpus())
    missing = [f"ops.{n}(" for n in oracles.OPS_PUBLIC if f"ops.{n}(" not in code]
    missing += [f for f in FUNCTIONAL if f not in code]
    assert not missing, f"no fuzz case calls {missing}"
    assert len(oracles.OPS_PUBLIC) >= 20  # the enumeration of fastconv.ops itself works


def test_generated_corpus_is_up_to_date():
    lines = generate.generate(random.Random(generate.SEED))
    stored = [ln for ln in generate.OUT.read_text().splitlines() if not ln.startswith("#")]
    assert stored == lines, "tests/fuzz/generated.txt is stale: run tests/fuzz/generate.py"


def test_harness_counts_crashes_hangs_and_bad_answers():
    """The harness itself: each failure kind is recognised, and a crash costs only its child."""
    case = cases.Case
    selftest = [case("crash", "either", "import os; os.kill(os.getpid(), signal.SIGSEGV)"),
             case("hang", "either", "import time; time.sleep(30)"),
             case("accepted", "raises", "ops.relu_forward(X)"),
             case("correct", "either", "ops.relu_forward(X)"),
             case("wrong", "check: R.sum() < 0", "ops.relu_forward(X)"),
             case("clean", "raises", "fc.set_num_threads(0)")]
    ns = dict(cases.namespace(), signal=signal)
    kinds = {o.case.id: o.kind for o in harness.run_cases(selftest, ns, timeout=2.0)}
    assert kinds == {"crash": "crash", "hang": "hang", "accepted": "accepted-malformed",
                     "correct": "correct", "wrong": "wrong-result", "clean": "clean-error"}
    assert fc.get_num_threads() >= 1  # still alive


@pytest.mark.parametrize("message, problem", [
    ("x must be 4-D (N, C, H, W); got shape (", "truncated"),
    ("x must be 4-D (N, C, H, W); got", "truncated"),
    ("x must be 4-D (N, C, H, W)", 'no "got <what was received>"'),
    ("must be 4-D; got shape (3, 8, 8)", "names no argument of the call (w, x)"),
    ("conv2d_forward(): incompatible function arguments. (x: object)", "pybind11 signature dump"),
    ("x must be 4-D (N, C, H, W); got shape (3, 8, 8)", None),
    ("ratio must be in [0, 1); got 1.5", None),
])
def test_message_convention_check(message, problem):
    assert judge.message_problem(ValueError(message), {"x", "w", "ratio"} - (
        {"ratio"} if problem and problem.startswith("names") else set())) == problem


def test_memory_error_must_name_its_bytes():
    assert judge.message_problem(MemoryError("out of memory"), {"x"}) is not None
    assert judge.message_problem(
        MemoryError("conv2d_forward: out of memory allocating 17179869184 bytes of im2col "
                    "scratch"), {"x"}) is None
