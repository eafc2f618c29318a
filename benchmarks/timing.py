"""Wall-clock timing: warm-up, then repetitions with the implementations interleaved, so that
drift in the machine's load (it is shared) hits every column of a row alike."""
from __future__ import annotations

import statistics
import time


def interleaved(fns: dict, device, warmup: int, repeat: int) -> dict:
    """{impl: [seconds, ...]}: each repetition runs every fn once; the order alternates between
    repetitions (A B, B A, ...) so neither always runs right after the other."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            _once(fns[name], name, device)
    times = {name: [] for name in names}
    for r in range(repeat):
        for name in (names if r % 2 == 0 else names[::-1]):
            times[name].append(_once(fns[name], name, device))
    return times


def capped(fn, name, device, repeat: int, budget_s: float) -> list:
    """For slow implementations (the numpy reference): one timed warm-up call decides how many
    repetitions fit the budget (at least one, at most `repeat`)."""
    first = _once(fn, name, device)
    n = max(1, min(repeat, int(budget_s / max(first, 1e-9))))
    return [first] if n == 1 and first > budget_s / 2 else [_once(fn, name, device)
                                                            for _ in range(n)]


def _once(fn, name, device) -> float:
    device.before(name)
    device.sync()
    start = time.perf_counter()
    fn()
    device.sync()
    return time.perf_counter() - start


def median(xs) -> float:
    return statistics.median(xs)


def paired_ratio(a: list, b: list) -> float:
    """Median over repetitions of a[i] / b[i]: each pair ran back to back."""
    return statistics.median(x / y for x, y in zip(a, b))
