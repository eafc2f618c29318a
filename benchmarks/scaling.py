#!/usr/bin/env python
"""Data-parallel scaling: images/s of the tutorial CNN's training step for 1 rank x 2 threads
against 2 ranks x 1 thread on this machine (`mpiexec -n 2`, fastconv.distributed over MPI), the
all-reduce's time per step, and a model of the step on N GPUs from the measured step time, the
gradient bytes and the link bandwidths of NVLink and 100/400 Gb/s InfiniBand.

    python benchmarks/scaling.py                  # both configurations, then the model
    python benchmarks/scaling.py --quick          # a few steps: a smoke run
    python benchmarks/scaling.py --json out.json

The global batch is the same in both configurations (--batch, split between the ranks); the data
are random MNIST-sized images (speed does not depend on the values). Needs fastconv[distributed].
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# Link bandwidths per direction, in bytes/s, and a per-message latency: nominal figures, not
# measurements (H100/H200 NVLink 4: 900 GB/s both directions together; InfiniBand NDR/EDR).
LINKS = {"NVLink 4 (450 GB/s)": (450e9, 5e-6), "IB 400 Gb/s": (50e9, 5e-6),
         "IB 100 Gb/s": (12.5e9, 5e-6)}
NODE_GPUS = 8  # NVLink joins the GPUs of one machine only


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=64, help="global batch (default: 64)")
    p.add_argument("--steps", type=int, default=40, help="timed steps (default: 40)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (default: 5)")
    p.add_argument("--repeat", type=int, default=3,
                   help="runs of each configuration, alternating; the best is kept (default: 3)")
    p.add_argument("--quick", action="store_true", help="4 steps, 1 warm-up, 1 run")
    p.add_argument("--gpu-step-ms", type=float, default=5.0,
                   help="an assumed GPU step time for the model's second table (default: 5)")
    p.add_argument("--json", metavar="PATH", help="write every number here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.repeat = 4, 1, 1
    return args


def worker(args) -> None:
    """One rank's share: time the steps; rank 0 prints one JSON line."""
    import numpy as np

    import fastconv as fc
    import fastconv.distributed as dist
    from fastconv.train import tutorial_cnn

    world = dist.init("mpi")
    per_rank = args.batch // world.size
    rng = np.random.default_rng(0)
    x = rng.standard_normal((per_rank, 1, 28, 28)).astype(np.float32)
    t = rng.integers(0, 10, per_rank)
    np.random.seed(0)
    model, opt = tutorial_cnn(), fc.Adam()
    model.eval()(x[:1])
    dist.broadcast_parameters(model)
    reducer = dist.reducer()

    def step():
        with model.train():
            loss = fc.softmax_cross_entropy(model(x), t)
        dist.allreduce_gradients(loss.grad()).update(opt)

    for _ in range(args.warmup):
        step()
    world.comm.Barrier()
    reduce_before, start = reducer.seconds, time.perf_counter()
    for _ in range(args.steps):
        step()
    world.comm.Barrier()
    seconds = time.perf_counter() - start
    # In the steps, the all-reduce also waits for the slower rank; alone, after a barrier each
    # time, it is the collective's own cost.
    reduce_s = dist.reduce_sum([reducer.seconds - reduce_before])[0] / world.size
    grads = list(reducer.flat.views)
    alone = 0.0
    for _ in range(args.steps):
        world.comm.Barrier()
        begin = time.perf_counter()
        reducer(grads)
        alone += time.perf_counter() - begin
    alone = dist.reduce_sum([alone])[0] / world.size
    if world.rank == 0:
        print(json.dumps({"ranks": world.size, "threads": fc.get_num_threads(),
                          "step_s": seconds / args.steps,
                          "images_per_s": args.batch * args.steps / seconds,
                          "allreduce_s": reduce_s / args.steps,
                          "allreduce_alone_s": alone / args.steps,
                          "gradient_bytes": reducer.flat.nbytes}), flush=True)


def launch(args, ranks: int, threads: int, bind: bool = False) -> dict:
    """One configuration's run. bind: Open MPI's default placement (each rank bound to a core);
    otherwise --oversubscribe, as CI runs, which leaves the ranks unbound."""
    script = [sys.executable, __file__, "--worker", "--batch", str(args.batch),
              "--steps", str(args.steps), "--warmup", str(args.warmup)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    mpiexec = Path(sys.executable).parent / "mpiexec"
    command = ([str(mpiexec if mpiexec.exists() else "mpiexec"), "-n", str(ranks)]
               + ([] if bind else ["--oversubscribe"]) if ranks > 1 else []) + script
    # A session of its own, so that a hung job's ranks end with mpiexec.
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        sys.exit(f"{' '.join(command)} ran past 600 s:\n{err[-3000:]}")
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def ring_allreduce_s(nbytes: int, gpus: int, bandwidth: float, latency: float) -> float:
    """A ring all-reduce: each GPU sends and receives 2 (N-1)/N of the buffer in 2 (N-1) steps,
    each GPU with a link of its own (as on machines with one NIC per GPU). At large N NCCL
    switches to trees, whose latency grows as log N: the latency term here is then pessimistic."""
    if gpus == 1:
        return 0.0
    return 2 * (gpus - 1) / gpus * nbytes / bandwidth + 2 * (gpus - 1) * latency


def model_table(step_s: float, nbytes: int, title: str) -> list[str]:
    """Per-GPU batch fixed: the step is the compute plus the all-reduce (fastconv reduces after
    the backward pass, without overlap). Efficiency = compute / step."""
    lines = [f"{title} (step {step_s * 1e3:.1f} ms, {nbytes / 1e6:.1f} MB of gradients)", "",
             "| GPUs | " + " | ".join(f"{name}: all-reduce, efficiency" for name in LINKS) + " |",
             "| --- |" + " --- |" * len(LINKS)]
    for gpus in (2, 4, 8, 16, 64, 256):
        cells = []
        for name, (bandwidth, latency) in LINKS.items():
            if name.startswith("NVLink") and gpus > NODE_GPUS:
                cells.append("n/a (one machine)")
                continue
            ar = ring_allreduce_s(nbytes, gpus, bandwidth, latency)
            cells.append(f"{ar * 1e3:.2f} ms, {step_s / (step_s + ar):.0%}")
        lines.append(f"| {gpus} | " + " | ".join(cells) + " |")
    return lines


def main(argv=None) -> None:
    args = parse(argv)
    if args.worker:
        worker(args)
        return
    configs = {"1 rank x 2 threads": (1, 2, False),
               "2 ranks x 1 thread (--oversubscribe: unbound)": (2, 1, False),
               "2 ranks x 1 thread (bound to a core each)": (2, 1, True)}
    runs = {name: [] for name in configs}
    load = os.getloadavg()
    for _ in range(args.repeat):  # alternating, so a busy moment hits every configuration
        for name, config in configs.items():
            runs[name].append(launch(args, *config))
    best = {k: max(v, key=lambda r: r["images_per_s"]) for k, v in runs.items()}
    print(f"global batch {args.batch}, {args.steps} timed steps, best of {args.repeat} runs; "
          f"load average at the start {load[0]:.2f}, at the end {os.getloadavg()[0]:.2f}\n")
    print("| configuration | images/s (best) | every run | step | all-reduce in the step "
          "(with waiting; 1 rank: packing only) | all-reduce alone |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r in best.items():
        every = ", ".join(f"{run['images_per_s']:.0f}" for run in runs[name])
        print(f"| {name} | {r['images_per_s']:.0f} | {every} | {r['step_s'] * 1e3:.1f} ms | "
              f"{r['allreduce_s'] * 1e3:.2f} ms | " + (
                  f"{r['allreduce_alone_s'] * 1e3:.2f} ms |" if r["ranks"] > 1 else "- |"))
    one, *two = best.values()
    ratio = max(r["images_per_s"] for r in two) / one["images_per_s"]
    print(f"\n2 ranks x 1 thread (the better placement) / 1 rank x 2 threads: {ratio:.2f} "
          "(target >= 0.9)\n")
    nbytes = two[0]["gradient_bytes"]
    compute = one["step_s"]  # one device's step, all its cores, the whole batch
    for line in (model_table(compute, nbytes, "Model: this machine's measured step per device")
                 + [""] + model_table(args.gpu_step_ms / 1e3, nbytes,
                                      "Model: an assumed GPU step")):
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "best": best, "ratio": ratio}, f, indent=2)


if __name__ == "__main__":
    main()
