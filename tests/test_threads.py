"""The CPU thread count: process-wide, capped, validated, and actually used by the kernels."""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastconv as fc
from fastconv import train
from fastconv._native import C
from fastconv._runtime import MAX_THREADS
from helpers import raises_exactly

CSRC_CPU = pathlib.Path(__file__).resolve().parent.parent / "csrc" / "cpu"


@pytest.fixture
def restore_threads():
    before = fc.get_num_threads()
    yield
    fc.set_num_threads(before)


def _conv_inputs():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((64, 8, 16, 16)).astype(np.float32),
            rng.standard_normal((16, 8, 3, 3)).astype(np.float32))


def test_cap_is_documented_value():
    assert MAX_THREADS == 1024


@pytest.mark.parametrize("n", [0, -1, MAX_THREADS + 1, 100000, 2**31, 2**63, 2**70])
def test_out_of_range_counts_are_refused_by_name(n, restore_threads):
    before = fc.get_num_threads()
    with raises_exactly(ValueError, f"n must be between 1 and 1024; got {n}"):
        fc.set_num_threads(n)
    assert fc.get_num_threads() == before


@pytest.mark.parametrize("n, kind", [(1.5, "float"), (True, "bool"), (np.bool_(True), "bool"),
                                     ("2", "str"), (None, "NoneType")])
def test_non_integer_counts_are_refused_by_name(n, kind):
    with raises_exactly(TypeError, f"n must be an int; got {kind}"):
        fc.set_num_threads(n)


def test_native_setter_refuses_out_of_range_too():
    with raises_exactly(ValueError, "n must be between 1 and 1024; got 5000"):
        C.set_num_threads(5000)


def test_issue_reproducer_huge_count_then_conv(restore_threads):
    # Once SIGSEGV: set_num_threads(100000) was accepted and the next conv crashed.
    x, w = _conv_inputs()
    fc.set_num_threads(2)
    with raises_exactly(ValueError, "n must be between 1 and 1024; got 100000"):
        fc.set_num_threads(100000)
    np.testing.assert_array_equal(fc.conv2d(x, w), fc.conv2d(x, w))


def test_the_cap_itself_works_and_gives_the_same_bits(restore_threads):
    x, w = _conv_inputs()
    fc.set_num_threads(1)
    one = fc.conv2d(x, w)
    fc.set_num_threads(MAX_THREADS)
    assert C._measured_team() == MAX_THREADS
    np.testing.assert_array_equal(fc.conv2d(x, w), one)


def _in_new_thread(fn):
    out = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join(timeout=60)
    assert out, "the thread did not finish"
    return out[0]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_a_new_thread_sees_the_setting(n, restore_threads):
    fc.set_num_threads(n)
    # Both the stored count and the team a parallel region really gets in that thread.
    assert _in_new_thread(lambda: (fc.get_num_threads(), C._measured_team())) == (n, n)


def test_a_running_thread_sees_a_later_setting(restore_threads):
    fc.set_num_threads(1)
    ready, go = threading.Event(), threading.Event()
    seen = []

    def worker():
        C._measured_team()  # this thread's OpenMP state exists before the change
        ready.set()
        go.wait(timeout=60)
        seen.append(C._measured_team())

    t = threading.Thread(target=worker)
    t.start()
    ready.wait(timeout=60)
    fc.set_num_threads(3)
    go.set()
    t.join(timeout=60)
    assert seen == [3]


def test_a_thread_setting_reaches_the_main_thread(restore_threads):
    _in_new_thread(lambda: fc.set_num_threads(3))
    assert (fc.get_num_threads(), C._measured_team()) == (3, 3)


def test_results_match_across_threads_and_counts(restore_threads):
    x, w = _conv_inputs()
    fc.set_num_threads(1)
    ref = fc.conv2d(x, w)
    fc.set_num_threads(3)
    np.testing.assert_array_equal(_in_new_thread(lambda: fc.conv2d(x, w)), ref)


def test_every_parallel_region_names_its_team():
    # omp_set_num_threads is per thread; a region without num_threads(...) would ignore the
    # process-wide count in any thread but the one that last set it.
    missing = []
    for path in sorted(CSRC_CPU.glob("*.cpp")):
        # Pragmas continued with a backslash become one line.
        source = path.read_text().replace("\\\n", " ")
        for pragma in re.findall(r"^\s*#\s*pragma\s+omp\s+parallel\b.*$", source, re.M):
            if "num_threads(" not in pragma:
                missing.append(f"{path.name}: {pragma.strip()}")
    assert not missing, missing


@pytest.mark.parametrize("value, message", [
    ("0", "argument --threads: must be between 1 and 1024; got 0"),
    ("100000", "argument --threads: must be between 1 and 1024; got 100000"),
    ("-3", "argument --threads: must be between 1 and 1024; got -3"),
    ("two", "argument --threads: must be an integer; got 'two'"),
])
def test_train_command_rejects_bad_thread_counts(value, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(["--threads", value])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().endswith("error: " + message)


def test_train_command_accepts_the_cap():
    assert train.parse_args(["--threads", "1024"]).threads == 1024
    assert train.parse_args([]).threads is None


def _wait_env_after_import(env_overrides):
    # A fresh interpreter: libgomp reads these once, when _C loads, so only the import sets them.
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(env_overrides)
    probe = ("import os, json, fastconv; print(json.dumps([os.environ.get('OMP_WAIT_POLICY'), "
             "os.environ.get('GOMP_SPINCOUNT')]))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("user, expected", [
    ({}, ["PASSIVE", "30000"]),                                  # fastconv's default
    ({"GOMP_SPINCOUNT": "7"}, ["PASSIVE", "7"]),                 # the user's spin kept
    ({"OMP_WAIT_POLICY": "ACTIVE"}, ["ACTIVE", None]),           # the user's policy, no spin set
    ({"OMP_WAIT_POLICY": "passive"}, ["passive", None]),
])
def test_wait_policy_defaults_respect_the_user(user, expected):
    assert _wait_env_after_import(user) == expected
