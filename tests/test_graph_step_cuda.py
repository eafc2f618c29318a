"""fastconv.graph_step (issue 11): a training step captured as a CUDA graph and replayed equals
the eager step bit for bit over 20 steps, dropout masks, Adam's step counts and a smaller batch
included; a bad label found inside a replay raises where an eager step's does; what a capture
cannot do is refused with a clear error and leaves the GPU usable."""
import gc
import sys
from pathlib import Path

import numpy as np
import pytest

import fastconv as fc
from fastconv import graphs, train
from helpers import cuda_emulated, raises_exactly

pytestmark = pytest.mark.cuda

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

CLASSES = 10
# Batches of 8 with batches of 5 among them: the smaller shape is warmed up, captured and replayed
# too, and the two graphs take turns.
SIZES = [8, 8, 8, 8, 5, 5, 5, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 5]


def small_cnn():
    return fc.Sequential([
        fc.Conv2d(channel=4, filter=3, padding=1), fc.Relu(),
        fc.MaxPool2d(filter=2, stride=2), fc.Dropout(0.5),
        fc.Flatten(), fc.Dense(16), fc.Relu(), fc.Dense(CLASSES),
    ])


def dataset(count=64, bad_label_at=None):
    rng = np.random.default_rng(3)
    images = rng.standard_normal((count, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, CLASSES, count)
    if bad_label_at is not None:
        labels[bad_label_at] = CLASSES + 2
    return train.Dataset(images, labels, "cuda")


@pytest.fixture
def on_gpu():
    fc.set_cuda_active(True)
    yield
    fc.set_cuda_active(False)


def batches():
    start = 0
    for size in SIZES:
        yield np.arange(start, start + size, dtype=np.int64) % 64
        start += size


def run(optimizer, graphed: bool, lr_change_at=None):
    """(losses, parameters after each step) of 20 steps from seed 0."""
    np.random.seed(0)
    data, model, opt = dataset(), small_cnn(), optimizer()
    step = train.make_step(model, opt, data)
    if graphed:
        step = fc.graph_step(step)
    losses, params = [], []
    for j, idx in enumerate(batches()):
        if j == lr_change_at:
            opt.lr = opt.lr / 2
        losses.append(fc.to_host(step(idx)).copy())
        params.append([fc.to_host(p._value).copy() for p in _parameters(model)])
    return losses, params, step


def _parameters(model):
    return list(model.parameters())


OPTIMIZERS = {
    "sgd-nesterov": lambda: fc.Sgd(lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda: fc.Adam(lr=0.01),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_replayed_steps_equal_eager_steps_bit_for_bit(on_gpu, name):
    eager_losses, eager_params, _ = run(OPTIMIZERS[name], graphed=False, lr_change_at=12)
    losses, params, step = run(OPTIMIZERS[name], graphed=True, lr_change_at=12)
    # Batch 8 captured, and again after the lr change (its step 12 a warm-up); batch 5 captured
    # at its second step, and its last (step 19, after the change) a warm-up again.
    by_size = {key[0][0][0]: entry for key, entry in step._by_shape.items()}
    assert isinstance(by_size[8], graphs._Captured) and by_size[5] is graphs._WARMED
    for j in range(len(SIZES)):
        np.testing.assert_array_equal(losses[j], eager_losses[j], err_msg=f"loss of step {j}")
        for k, (got, want) in enumerate(zip(params[j], eager_params[j])):
            np.testing.assert_array_equal(got, want, err_msg=f"parameter {k} after step {j}")
    # Dropout really masked something, differently each step: the runs are not trivially equal.
    assert len({float(v) for v in eager_losses[:4]}) == 4


def captured():
    """(model, graph step, its batch, its graph) after a warm-up, a capture and a replay."""
    np.random.seed(0)
    data, model, opt = dataset(), small_cnn(), fc.Sgd(lr=0.01)
    step = fc.graph_step(train.make_step(model, opt, data))
    idx = np.arange(8, dtype=np.int64)
    for _ in range(3):
        step(idx)
    return model, step, idx, step._by_shape[next(iter(step._by_shape))]


@pytest.mark.parametrize("switch, default", [(fc.set_tf32, False),
                                             (fc.set_gemm_epilogues, True),
                                             (fc.set_conv_autotune, False)])
def test_switching_a_gpu_setting_warms_up_and_captures_again(on_gpu, switch, default):
    _, step, idx, first = captured()
    try:
        switch(not default)
        step(idx)  # warmed up again, eagerly
        assert step.graphs() == 0
        step(idx)
    finally:
        switch(default)
    assert step._by_shape[next(iter(step._by_shape))] is not first and step.graphs() == 1


def test_a_variable_given_a_new_array_captures_again(on_gpu):
    model, step, idx, first = captured()
    weight = next(iter(model.parameters()))
    replaced = fc.to_device(fc.to_host(weight._value))
    weight._value = replaced  # as a load that makes new arrays would
    before = fc.to_host(replaced).copy()
    step(idx)
    assert step._by_shape[next(iter(step._by_shape))] is not first
    # The new graph trains the new array (the old graph would have written the old one).
    assert weight._value is replaced and not np.array_equal(fc.to_host(replaced), before)


def test_a_replayed_step_is_one_launch(on_gpu):
    if not cuda_emulated():
        pytest.skip("launches are counted by the CUDA emulator build only")
    import launch_count

    np.random.seed(0)
    data, model, opt = dataset(), small_cnn(), fc.Adam()
    step = fc.graph_step(train.make_step(model, opt, data))
    idx = np.arange(8, dtype=np.int64)
    for _ in range(3):  # warm-up, capture and a first replay
        step(idx)
    fc.synchronize()
    before = launch_count.counts()
    for _ in range(4):
        step(idx)
    after = launch_count.counts()
    fc.synchronize()
    # Copies in and out and the seed / correction uploads are copies, not launches; nothing waits.
    assert (after[0] - before[0], after[1] - before[1]) == (4, 0)


def test_a_bad_label_in_a_replay_raises_at_the_next_read(on_gpu):
    np.random.seed(0)
    data, model, opt = dataset(bad_label_at=20), small_cnn(), fc.Sgd(lr=0.01)
    step = fc.graph_step(train.make_step(model, opt, data))
    good = np.arange(8, dtype=np.int64)
    for _ in range(3):
        fc.to_host(step(good))
    assert step.graphs() == 1
    loss = step(np.arange(16, 24, dtype=np.int64))  # row 20's label is 12, with 10 classes
    with pytest.raises(ValueError) as replayed:
        fc.to_host(loss)
    # The eager step's own error, word for word.
    eager = train.make_step(model, opt, data)
    with pytest.raises(ValueError) as direct:
        fc.to_host(eager(np.arange(16, 24, dtype=np.int64)))
    assert str(replayed.value) == str(direct.value)
    assert "12" in str(direct.value)
    fc.to_host(step(good))  # the error was reported once; the graph goes on


def test_reading_the_device_inside_a_capture_is_refused_and_leaves_the_gpu_usable(on_gpu):
    np.random.seed(0)
    data, model, opt = dataset(), small_cnn(), fc.Sgd(lr=0.01)
    inner = train.make_step(model, opt, data)

    def step(idx):
        loss = inner(idx)
        print(float(fc.to_host(loss)))  # waits for the device: cannot be captured
        return loss

    graphed = fc.graph_step(step)
    idx = np.arange(8, dtype=np.int64)
    graphed(idx)  # the warm-up runs eagerly
    message = ("a copy to the host cannot run while a step is captured as a CUDA graph: a "
               "captured step may not wait for the device nor copy host data to it (pass host "
               "data as an argument of the step, and read results after it returns)")
    with raises_exactly(RuntimeError, message):
        graphed(idx)
    assert graphed.graphs() == 0
    assert float(fc.to_host(inner(idx))) > 0  # eager work runs again
    waits = fc.graph_step(lambda i: fc.synchronize())
    waits(idx)  # the warm-up
    with raises_exactly(RuntimeError, message.replace("a copy to the host", "synchronize()")):
        waits(idx)


def test_dropping_the_step_returns_its_memory(on_gpu):
    def pooled():
        gc.collect()  # graphs an earlier test left to the collector
        return fc._native.CUDA.allocator_stats()["bytes_in_graph_pools"]

    before = pooled()
    np.random.seed(0)
    data, model, opt = dataset(), small_cnn(), fc.Sgd(lr=0.01)
    step = fc.graph_step(train.make_step(model, opt, data))
    for _ in range(3):
        step(np.arange(8, dtype=np.int64))
    fc.synchronize()
    assert pooled() > before
    del step
    assert pooled() == before


def test_copy_from_checks_its_source(on_gpu):
    dst = fc._native.CUDA.zeros((2, 3), "float32")
    dst.copy_from(np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(fc.to_host(dst), np.arange(6).reshape(2, 3))
    with raises_exactly(ValueError, "src must have shape (2, 3) and dtype float32 (this "
                                    "array's); got shape (3, 2) and dtype float32"):
        dst.copy_from(np.zeros((3, 2), np.float32))
    with raises_exactly(ValueError, "src must have shape (2, 3) and dtype float32 (this "
                                    "array's); got shape (2, 3) and dtype float64"):
        dst.copy_from(np.zeros((2, 3)))
    with raises_exactly(TypeError, "src must be a DeviceArray or a numpy array; got list"):
        dst.copy_from([1, 2])


def test_what_the_step_returns_comes_back_as_fresh_device_arrays(on_gpu):
    x = fc.to_device(np.arange(6, dtype=np.float32).reshape(2, 3))

    step = fc.graph_step(lambda a: (fc.relu(a), fc.ops.relu_forward(a)))  # a Node, an array
    outs = [step(x) for _ in range(4)]  # warm-up, capture + replay, replays
    for got in outs:
        assert isinstance(got, tuple) and len(got) == 2
        for array in got:
            assert fc.is_device_array(array)
            np.testing.assert_array_equal(fc.to_host(array), np.arange(6).reshape(2, 3))
    assert outs[2][0] is not outs[3][0] and outs[2][0].ptr != outs[3][0].ptr  # copies each call
    listed = fc.graph_step(lambda a: [fc.ops.relu_forward(a)])
    assert all(isinstance(listed(x), list) for _ in range(3)) and listed.graphs() == 1
    nothing = fc.graph_step(lambda a: None)
    assert all(nothing(x) is None for _ in range(3)) and nothing.graphs() == 1
    with raises_exactly(TypeError, "a captured step must return DeviceArrays or Nodes holding "
                                   "them (or a tuple or list of them, or None); got float"):
        fc.graph_step(lambda a: 1.5)(x)


def test_a_capture_cuda_refuses_falls_back_to_op_by_op_with_a_warning(on_gpu, monkeypatch):
    np.random.seed(0)
    eager_losses = [float(fc.to_host(l)) for l in _losses(graphed=False, steps=4)]
    real_end = fc._native.CUDA.end_capture

    def refused():
        real_end()  # the capture ends, as CUDA's failed end does
        raise fc._native.CUDA.CudaError("cudaErrorStreamCaptureUnsupported: operation not "
                                        "permitted when stream is capturing")

    monkeypatch.setattr(fc._native.CUDA, "end_capture", refused)
    np.random.seed(0)
    with pytest.warns(RuntimeWarning, match="graph_step: CUDA could not capture the step "
                                            r"\(cudaErrorStreamCaptureUnsupported"):
        losses = [float(fc.to_host(l)) for l in _losses(graphed=True, steps=4)]
    assert losses == eager_losses


def _losses(graphed, steps):
    data, model, opt = dataset(), small_cnn(), fc.Adam()
    step = train.make_step(model, opt, data)
    if graphed:
        step = fc.graph_step(step)
    out = [step(np.arange(8, dtype=np.int64)) for _ in range(steps)]
    if graphed:
        assert step.graphs() == 0
    return out
