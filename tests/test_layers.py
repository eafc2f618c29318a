"""Layers and Sequential: shapes, lazy creation, modes, save/load, and the optimisers."""
import numpy as np
import pytest

import fastconv as fc


@pytest.mark.parametrize("layer,shape,expected", [
    (lambda: fc.Conv2d(channel=8, filter=3, padding=1), (2, 3, 28, 28), (2, 8, 28, 28)),
    (lambda: fc.Conv2d(channel=5, filter=(3, 5), stride=2), (1, 1, 11, 13), (1, 5, 5, 5)),
    (lambda: fc.Conv2d(channel=2, filter=3, dilation=2, padding=2), (3, 4, 9, 7), (3, 2, 9, 7)),
    (lambda: fc.MaxPool2d(filter=2, stride=2), (2, 4, 28, 28), (2, 4, 14, 14)),
    (lambda: fc.MaxPool2d(), (1, 1, 5, 6), (1, 1, 3, 4)),  # ReNom defaults: filter 3, stride 1
    (lambda: fc.MaxPool2d(filter=2, stride=2, ceil_mode=True), (1, 2, 7, 7), (1, 2, 4, 4)),
    (lambda: fc.AveragePool2d(filter=3, stride=2, padding=1), (2, 3, 8, 9), (2, 3, 4, 5)),
    (lambda: fc.Flatten(), (4, 3, 2, 5), (4, 30)),
    (lambda: fc.Dense(7), (4, 30), (4, 7)),
    (lambda: fc.Relu(), (3, 2), (3, 2)),
    (lambda: fc.Dropout(0.5), (3, 2, 4, 4), (3, 2, 4, 4)),
])
def test_layer_output_shapes(layer, shape, expected):
    assert layer()(np.random.default_rng(0).random(shape, dtype=np.float32)).shape == expected


def tutorial_model():
    return fc.Sequential([
        fc.Conv2d(channel=32, filter=3, padding=1), fc.Relu(),
        fc.Conv2d(channel=64, filter=3, padding=1), fc.Relu(),
        fc.MaxPool2d(filter=2, stride=2), fc.Dropout(0.5),
        fc.Flatten(), fc.Dense(128), fc.Relu(), fc.Dense(10),
    ])


def test_lazy_parameters_and_sequential_access():
    model = tutorial_model()
    assert model._layers[0] is model.l0 is model[0] and len(model) == 10
    with pytest.raises(AttributeError, match="first call"):
        model.l0.params.w
    y = model(np.zeros((2, 1, 28, 28), np.uint8))  # pixels as the tutorial has them
    assert y.shape == (2, 10) and y.dtype == np.float32
    assert model.l0.params.w.shape == (32, 1, 3, 3) and model.l0.params.b.shape == (1, 32, 1, 1)
    assert model.l7.params.w.shape == (14 * 14 * 64, 128)
    w = model._layers[0].params.w
    assert w[3, 0].shape == (3, 3)  # the tutorial's plotting cell
    # Glorot normal: std sqrt(2 / (fan_in + fan_out)) = sqrt(2 / (9 + 288))
    assert abs(model.l2.params.w.as_ndarray().std() / np.sqrt(2 / (288 + 576)) - 1) < 0.05
    model.append(fc.Relu())
    assert model.l10 is model[10]


def test_float64_input_gives_float64_parameters():
    model = fc.Sequential([fc.Conv2d(channel=2), fc.Flatten(), fc.Dense(3)])
    assert model(np.zeros((1, 1, 5, 5))).dtype == np.float64
    assert all(p.dtype == np.float64 for p in model.parameters())


def test_dropout_follows_inference_mode():
    model = fc.Sequential([fc.Dropout(0.5)])
    x = np.ones((4, 1000), np.float32)
    y = model(x).as_ndarray()
    assert set(np.unique(y)) == {0.0, 2.0}
    model.set_models(inference=True)
    np.testing.assert_array_equal(model(x).as_ndarray(), x)
    model.set_models(inference=False)
    assert (model(x).as_ndarray() == 0).any()
    model.eval()
    np.testing.assert_array_equal(model(x).as_ndarray(), x)


def test_train_context_restores_on_error():
    model = fc.Sequential([fc.Dense(2)])
    with pytest.raises(RuntimeError):
        with model.train():
            raise RuntimeError("boom")
    assert not model._training and not model[0]._training


def test_save_load_round_trip(tmp_path):
    np.random.seed(0)
    x = np.random.default_rng(1).random((3, 1, 28, 28), dtype=np.float32)
    model = tutorial_model()
    model.eval()
    y = model(x).as_ndarray()
    model.save(tmp_path / "m.npz")
    fresh = tutorial_model()
    fresh.eval()
    fresh.load(tmp_path / "m.npz")  # parameters come from the file: no call needed first
    np.testing.assert_array_equal(fresh(x).as_ndarray(), y)
    other = tutorial_model()
    other.eval()
    other(x)  # existing parameters are overwritten in place
    w = other.l0.params.w.as_ndarray()
    other.load(tmp_path / "m.npz")
    assert other.l0.params.w.as_ndarray() is w
    np.testing.assert_array_equal(other(x).as_ndarray(), y)


def test_weight_decay_reaches_the_optimizer():
    model = fc.Sequential([fc.Dense(1, ignore_bias=True, weight_decay=0.5)])
    x = np.zeros((1, 2), np.float32)  # zero input: the loss gradient is zero, only decay acts
    model(x)
    model[0].params.w.copy_from([[1.0], [2.0]])
    with model.train():
        loss = (model(x) * 1.0).sum()
    loss.grad().update(fc.Sgd(lr=0.1, momentum=0.0))
    np.testing.assert_allclose(model[0].params.w.as_ndarray(), [[0.95], [1.9]], rtol=1e-6)


def test_sgd_matches_hand_computed_nesterov_momentum():
    w = fc.Variable(np.array([1.0, -2.0]))
    opt = fc.Sgd(lr=0.1, momentum=0.9, nesterov=True)
    g = np.array([0.5, 1.0])
    opt.step(w, g)  # v = g; p -= lr * (g + m v)
    np.testing.assert_allclose(w.as_ndarray(), [1.0 - 0.1 * 0.95, -2.0 - 0.1 * 1.9])
    opt.step(w, g)  # v = 0.9 g + g = 1.9 g; p -= lr * (g + 0.9 * 1.9 g)
    np.testing.assert_allclose(w.as_ndarray(),
                               [1.0 - 0.1 * 0.95 - 0.1 * 0.5 * 2.71, -2.0 - 0.19 - 0.1 * 2.71])
    plain = fc.Variable(np.array([1.0]))
    fc.Sgd(lr=0.5, momentum=0.0).step(plain, np.array([0.25]))
    np.testing.assert_allclose(plain.as_ndarray(), [0.875])


def test_adam_matches_hand_computed_first_steps():
    w = fc.Variable(np.array([1.0, 2.0]))
    opt = fc.Adam(lr=0.01)
    g = np.array([0.3, -4.0])
    opt.step(w, g)  # bias-corrected m/sqrt(v) = sign(g) on the first step
    np.testing.assert_allclose(w.as_ndarray(), [0.99, 2.01], rtol=1e-7)
    opt.step(w, g)
    np.testing.assert_allclose(w.as_ndarray(), [0.98, 2.02], rtol=1e-6)


def test_bad_layer_arguments():
    with pytest.raises(TypeError, match="filter"):
        fc.Conv2d(filter="3")
    with pytest.raises(ValueError, match="dropout_ratio"):
        fc.Dropout(1.0)
    with pytest.raises(TypeError, match="layer"):
        fc.Sequential([fc.Relu(), "relu"])
    with pytest.raises(ValueError, match="Flatten"):
        fc.Dense(3)(np.zeros((2, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="lr"):
        fc.Sgd(lr=-1)
