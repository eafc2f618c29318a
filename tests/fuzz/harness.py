"""The fuzz harness: every corpus case runs in a forked child, so a crash or a hang is counted
instead of killing the run. The child judges its case (judge.py) and reports through a pipe; the
parent sees a signal (crash), silence past the timeout (hang, killed), or the report.

Fork safety is part of the design: the parent runs a parallel op before it forks the first case,
so every child runs its ops after its parent ran one (libgomp's pool does not survive fork). If
that probe hangs, the cases run from a fresh interpreter that has run no op instead, so the fork
bug is counted once rather than as a hang of every case.

From the repository root: `PYTHONPATH=python:tests python -m fuzz.harness [--json] [ID ...]`.
"""
from __future__ import annotations

import json
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import fastconv as fc
from fastconv import ops

from .cases import FUZZ_DIR, Case, load_corpus, namespace
from .judge import judge

TIMEOUT_S = 5.0
PARALLEL_CHILDREN = 2
# Address space a child may add: the deliberately huge calls must fail at argument checking, and
# one that tries to allocate instead gets a quick MemoryError here rather than swapping the host.
MEMORY_HEADROOM = 4 << 30
MEMORY_HEADROOM_ALLOWED = 24 << 30  # allow_memory(): for calloc'd, never touched, arrays


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


def _log_summary(log) -> str:
    """The child's most telling line of output: a C++ terminate or libgomp message, else the
    first line of a faulthandler report, else the last line."""
    log.seek(0)
    lines = [ln.strip() for ln in log.read().decode(errors="replace").splitlines()
             if ln.strip()]
    log.close()
    for key in ("what():", "terminate called", "libgomp", "Fatal Python error"):
        for line in lines:
            if key in line:
                return line
    return lines[-1] if lines else ""


def _finish(run: _Running, timed_out: bool, timeout: float) -> Outcome:
    os.close(run.rfd)
    if timed_out:
        os.kill(run.pid, signal.SIGKILL)
    _, status = os.waitpid(run.pid, 0)
    seconds = time.monotonic() - run.start
    tail = _log_summary(run.log)
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
    roots = [str(Path(fc.__file__).resolve().parent.parent), str(FUZZ_DIR.parent)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(roots + [p for p in env.get(
        "PYTHONPATH", "").split(os.pathsep) if p])
    out = subprocess.run([sys.executable, "-m", "fuzz.harness", "--json", "--no-op",
                          *[c.id for c in cases]], env=env, capture_output=True, text=True,
                         timeout=60 + TIMEOUT_S * len(cases))
    if out.returncode not in (0, 1):
        raise RuntimeError(f"fuzz runner failed ({out.returncode}): {out.stderr[-2000:]}")
    by_id = {c.id: c for c in cases}
    return [Outcome(by_id[r["id"]], r["kind"], r["detail"], r["seconds"])
            for r in json.loads(out.stdout)]


def _reason(o: Outcome) -> str:
    """What a failure has in common with others of its kind: the signal, the exception type or
    the message's missing part."""
    if o.kind == "crash":
        return o.detail.split(" ")[0]
    if o.kind == "incomplete-message":
        return o.detail.split(": ")[0].split(" (")[0]
    if o.kind in ("other-exception", "corpus-error"):
        return o.detail.split(":")[0]
    return ""


def failure_table(outcomes: list[Outcome], width: int = 200, ids_per_reason: int = 6) -> str:
    """Counts by kind; one line per kind and reason with some of its case ids (one screen); then
    one line per failing case with its call and what happened."""
    bad = [o for o in outcomes if not o.ok]
    groups: dict[tuple, list] = {}
    for kind in FAILURE_KINDS:
        for o in bad:
            if o.kind == kind:
                groups.setdefault((kind, _reason(o)), []).append(o.case.id)
    counts = {k: sum(len(v) for (kind, _), v in groups.items() if kind == k) for k in
              FAILURE_KINDS}
    lines = [f"{len(bad)} of {len(outcomes)} fuzz cases failed: " +
             ", ".join(f"{k} {n}" for k, n in counts.items() if n)]
    if not bad:
        return lines[0]
    for (kind, reason), ids in groups.items():
        shown = ", ".join(ids[:ids_per_reason]) + (
            f", ... {len(ids) - ids_per_reason} more" if len(ids) > ids_per_reason else "")
        line = f"  {kind}{': ' + reason if reason else ''} ({len(ids)}): {shown}"
        lines.append(line if len(line) <= width else line[:width - 3] + "...")
    idw = max(len(o.case.id) for o in bad)
    lines += ["", f"{'case':<{idw}}  {'outcome':<18}  call  =>  detail"]
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
