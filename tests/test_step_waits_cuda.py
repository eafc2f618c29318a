"""A GPU training step does not stop the host (issue 11): counted by the CUDA emulator, which runs
the GPU's host code and counts kernel launches and host waits (benchmarks/launch_count.py). Marked
cuda; skipped on a real GPU, where nothing counts them."""
import sys
from pathlib import Path

import pytest

from helpers import cuda_emulated

pytestmark = pytest.mark.cuda

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_a_step_never_waits_for_the_device():
    if not cuda_emulated():
        pytest.skip("launches and waits are counted by the CUDA emulator build only")
    import launch_count

    launches, waits = launch_count.per_step(batch=16, steps=2, read_loss=False)
    # The indices go up through a pinned staging slot, the loss and the label checks stay on the
    # device: nothing in the step waits.
    assert waits == 0
    assert 0 < launches <= 33
    launches_read, waits_read = launch_count.per_step(batch=16, steps=2, read_loss=True)
    # Reading the loss waits once: the ledger's copy (into pinned memory) and the loss's go in
    # the same wait; + the ledger's reset.
    assert waits_read == 1 and launches_read == launches + 1
