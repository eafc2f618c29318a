"""What tests/test_distributed.py launches under `mpiexec -n 2`: python distributed_worker.py
MODE OUT. Modes:

  steps      20 training steps, each rank on its half of every batch; writes OUT/rank{r}.npz
  raise      rank 1 raises at step 3 while rank 0 goes on into the all-reduce
  mismatch   rank 1's model has another last layer; prints the refusal on every rank

`train(model, steps, rank, world, reduce)` is also imported by the test, to train the same model
on the whole batches in one process.
"""
from __future__ import annotations

import os
import sys

import numpy as np

import fastconv as fc
import fastconv.distributed as dist

STEPS, BATCH = 20, 16  # BATCH is the global batch; each of 2 ranks takes half


def make_model(classes: int = 10) -> fc.Sequential:
    # No dropout: its mask depends on the position in the batch, which halving changes.
    return fc.Sequential([
        fc.Conv2d(channel=4, filter=3, padding=1), fc.Relu(),
        fc.MaxPool2d(filter=2, stride=2), fc.Flatten(), fc.Dense(classes),
    ])


def data():
    rng = np.random.default_rng(1234)
    return (rng.standard_normal((STEPS * BATCH, 1, 8, 8)).astype(np.float32),
            rng.integers(0, 10, STEPS * BATCH))


def train(model, rank: int, world: int, reduce, fail_at: int | None = None) -> None:
    x, t = data()
    opt = fc.Adam(lr=1e-2)
    order = np.random.default_rng(7).permutation(len(x))
    share = BATCH // world
    for step in range(STEPS):
        if step == fail_at:
            raise ValueError(f"bad data on rank {rank} at step {step}")
        idx = order[(step * world + rank) * share:(step * world + rank + 1) * share]
        with model.train():
            loss = fc.softmax_cross_entropy(model(x[idx]), t[idx])
        reduce(loss.grad()).update(opt)


def built(model) -> fc.Sequential:
    np.random.seed(5)  # the same initial weights in every process (and then broadcast)
    model.eval()(data()[0][:1])
    return model


def main(mode: str, out: str) -> None:
    world = dist.init()
    if mode == "mismatch":
        model = built(make_model(10 if world.rank == 0 else 5))
        try:
            dist.broadcast_parameters(model)
        except dist.ModelMismatchError as e:
            print(f"rank {world.rank}: refused: {e}", flush=True)
            return
        raise SystemExit("the mismatched model was accepted")
    model = built(make_model())
    dist.broadcast_parameters(model)
    train(model, world.rank, world.size, dist.allreduce_gradients,
          fail_at=3 if mode == "raise" and world.rank == 1 else None)
    np.savez(os.path.join(out, f"rank{world.rank}.npz"),
             *[p.as_ndarray() for p in model.parameters()])
    print(f"rank {world.rank}: done, backend {dist.backend()}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
