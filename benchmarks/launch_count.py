"""Kernel launches and host waits per GPU training step, counted without a GPU.

A batch-64 step of the tutorial CNN is bound by launches and host round trips, not by bandwidth
(issue 11). The CUDA emulator (csrc/cuda_emu) runs the same host code a GPU does and counts what
that code asks of the device: kernel launches, and the calls that make the host wait for it
(synchronisations and synchronous copies). So these counts are the GPU's, exactly; only their
cost is unknown here. Run against the emulator build (.ci/cuda-emulator makes one):

    PYTHONPATH=<a package with the emulator's _C and _cuda> python benchmarks/launch_count.py

It prints, for a training step as fastconv-train runs it (gather the batch, forward, backward,
SGD update; the loss left on the device), for the same step with its loss read back each time,
and for the step replayed as a captured CUDA graph (fastconv.graph_step, fastconv-train's default
on the GPU), the launches and waits per step, averaged over a few steps after a warm-up. A graph's
launch counts as one, whatever it holds.
"""
from __future__ import annotations

import argparse
import ctypes

import numpy as np

import fastconv as fc
from fastconv import _native, train


def counts() -> tuple[int, int]:
    """(launches, waits) so far; the emulator build of _cuda exports fc_emu_counts."""
    lib = ctypes.CDLL(_native.CUDA.__file__)
    launches, waits = ctypes.c_longlong(), ctypes.c_longlong()
    lib.fc_emu_counts(ctypes.byref(launches), ctypes.byref(waits))
    return launches.value, waits.value


def per_step(batch: int, steps: int, read_loss: bool,
             graphed: bool = False) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    images = rng.random((batch * (steps + 2), 1, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, len(images))
    data = train.Dataset(images, labels, "cuda")
    fc.set_cuda_active(True)
    try:
        np.random.seed(0)
        model, opt = train.tutorial_cnn(), fc.Sgd(lr=0.01, momentum=0.9)

        one_step = train.make_step(model, opt, data)
        if graphed:
            one_step = fc.graph_step(one_step)

        def step(j):
            loss = one_step(np.arange(j * batch, (j + 1) * batch, dtype=np.int64))
            if read_loss:
                float(fc.to_host(loss))

        for j in range(2):  # parameters, optimiser state, the allocator's cache (a graph) made
            step(j)
        fc.synchronize()
        before = counts()
        for j in range(2, steps + 2):
            step(j)
        after = counts()
        fc.synchronize()
    finally:
        fc.set_cuda_active(False)
    return (after[0] - before[0]) / steps, (after[1] - before[1]) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    if fc.build_info()["cuda"]["archs"] != ["emulator"]:
        raise SystemExit("launch_count.py needs the CUDA emulator build of fastconv "
                         "(.ci/cuda-emulator builds one)")
    print(f"per training step of the tutorial CNN at batch {args.batch} ({args.steps} steps):")
    for read_loss, graphed, what in (
            (False, False, "op by op, loss left on the device (fastconv-train --no-graph)"),
            (True, False, "op by op, loss read back every step"),
            (False, True, "one captured graph, loss left on the device (fastconv-train)")):
        launches, waits = per_step(args.batch, args.steps, read_loss, graphed)
        print(f"  {what}: {launches:.1f} kernel launches, {waits:.1f} host waits")


if __name__ == "__main__":
    main()
