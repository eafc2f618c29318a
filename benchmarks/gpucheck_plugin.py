"""pytest plugin for the GPU check (gpu_check.sh loads it with -p): one JSON line per test outcome,
appended as it arrives, for gpucheck_summary.py.

Written line by line so that a run cut short (the phase's timeout, or the controller itself dying)
still leaves every outcome so far. Under pytest-xdist only the controller writes; a test whose
worker process died (a segfault, an abort) arrives there as a failed report "worker 'gw1' crashed
while running '<nodeid>'", recorded as outcome "crashed" under that test's name, and the run goes
on in a fresh worker. Outside the GPU check (no GPUCHECK_TESTS_JSONL) it does nothing.
"""
import json
import os

CRASH_MARK = "crashed while running"


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def _write(config, record) -> None:
    if not _path or _is_worker(config):
        return
    with open(_path, "a") as f:
        f.write(json.dumps(record) + "\n")


def outcome_of(report) -> str:
    """passed, failed, error (setup/teardown), skipped, xfailed, xpassed or crashed."""
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.failed:
        if CRASH_MARK in str(report.longrepr):
            return "crashed"
        return "failed" if report.when == "call" else "error"
    if report.skipped:
        return "skipped"
    return "passed"


def skip_reason(report) -> str:
    lr = report.longrepr
    why = lr[2] if isinstance(lr, tuple) and len(lr) == 3 else str(lr or "")
    return why[len("Skipped: "):] if why.startswith("Skipped: ") else why


_config = None
_path = None  # read once: a test that changes the environment does not move the output


def pytest_configure(config):
    global _config, _path
    _config = config
    _path = os.environ.get("GPUCHECK_TESTS_JSONL")


def pytest_runtest_logreport(report):
    outcome = outcome_of(report)
    # A passing setup or teardown says nothing new; the call's report (or a failure) does.
    if outcome == "passed" and report.when != "call":
        return
    _write(_config, {"nodeid": report.nodeid, "when": report.when, "outcome": outcome,
                     # xdist passes markers along as keywords; a crash report carries none.
                     "cuda": "cuda" in getattr(report, "keywords", {}),
                     "reason": skip_reason(report) if outcome == "skipped" else ""})


def pytest_sessionfinish(session, exitstatus):
    _write(session.config, {"exitstatus": int(exitstatus)})
