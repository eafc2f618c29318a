"""fastconv.graph_step where no graph applies (the CPU): the function runs as it is, with its own
result; and the checks of its arguments, on every machine."""
import numpy as np

import fastconv as fc
from fastconv import train
from helpers import raises_exactly


def test_on_the_cpu_the_step_runs_as_it_is():
    np.random.seed(0)
    images = np.random.default_rng(1).standard_normal((16, 1, 8, 8)).astype(np.float32)
    labels = np.arange(16) % 10
    data = train.Dataset(images, labels, "cpu")
    model, opt = train.tutorial_cnn(), fc.Sgd(lr=0.01)
    calls = []

    def step(idx):
        calls.append(idx)
        return train.make_step(model, opt, data)(idx)

    graphed = fc.graph_step(step)
    idx = np.arange(8, dtype=np.int64)
    for _ in range(3):
        loss = graphed(idx)
        assert isinstance(loss, np.ndarray) and np.isfinite(loss)
    assert len(calls) == 3 and all(c is idx for c in calls) and graphed.graphs() == 0


def test_disabled_it_calls_fn_every_time():
    seen = []
    step = fc.graph_step(lambda *a: seen.append(a) or "result", enabled=False)
    assert step(np.zeros(2)) == "result" and len(seen) == 1


def test_arguments_are_checked():
    with raises_exactly(TypeError, "fn must be callable; got int"):
        fc.graph_step(3)
    step = fc.graph_step(lambda *a: None)
    with raises_exactly(TypeError, "args[1] must be a numpy array or a DeviceArray; got list"):
        step(np.zeros(2), [1, 2])
