"""Layers and Sequential: shapes, lazy creation, modes, save/load, and the optimisers."""
import numpy as np
import pytest

import fastconv as fc
from helpers import raises_exactly


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
        fc.Conv2d(filter="3")  # the type of a size pair is ops.pair's to check
    with raises_exactly(ValueError, "dropout_ratio must be a number in [0, 1); got 1.0"):
        fc.Dropout(1.0)
    with raises_exactly(TypeError, "layer must be a fastconv Layer; got str"):
        fc.Sequential([fc.Relu(), "relu"])
    with raises_exactly(ValueError, "x must be 2-D (N, features); got shape (2, 3, 4, 4) (put a "
                                    "Flatten() before Dense)"):
        fc.Dense(3)(np.zeros((2, 3, 4, 4), np.float32))
    with raises_exactly(ValueError, "lr must be a number >= 0; got -1"):
        fc.Sgd(lr=-1)


# Issue 8: each argument checked when the layer or optimiser is made, named in the message.
BAD_ARGUMENTS = [
    (lambda: fc.Conv2d(channel=2.7), TypeError, "channel must be an int >= 1; got float 2.7"),
    (lambda: fc.Conv2d(channel=True), TypeError, "channel must be an int >= 1; got bool True"),
    (lambda: fc.Conv2d(channel="8"), TypeError, "channel must be an int >= 1; got str '8'"),
    (lambda: fc.Conv2d(channel=0), ValueError, "channel must be an int >= 1; got 0"),
    (lambda: fc.Conv2d(filter=0), ValueError,
     "filter must be >= 1 in both dimensions; got (0, 0)"),
    (lambda: fc.Conv2d(filter=(3, -1)), ValueError,
     "filter must be >= 1 in both dimensions; got (3, -1)"),
    (lambda: fc.Conv2d(stride=0), ValueError, "stride must be >= 1 in both dimensions; got (0, 0)"),
    (lambda: fc.Conv2d(dilation=(1, 0)), ValueError,
     "dilation must be >= 1 in both dimensions; got (1, 0)"),
    (lambda: fc.Conv2d(padding=-1), ValueError,
     "padding must be >= 0 in both dimensions; got (-1, -1)"),
    (lambda: fc.Conv2d(ignore_bias="yes"), TypeError, "ignore_bias must be a bool; got str 'yes'"),
    (lambda: fc.Conv2d(weight_decay=-0.1), ValueError,
     "weight_decay must be a number >= 0; got -0.1"),
    (lambda: fc.Conv2d(weight_decay=float("nan")), ValueError,
     "weight_decay must be a number >= 0; got nan"),
    (lambda: fc.Conv2d(initializer="he"), TypeError,
     "initializer must be None or callable as initializer(shape, dtype) (e.g. fc.HeNormal()); "
     "got str 'he'"),
    (lambda: fc.Dense(-5), ValueError, "output_size must be an int >= 1; got -5"),
    (lambda: fc.Dense(0), ValueError, "output_size must be an int >= 1; got 0"),
    (lambda: fc.Dense(10.0), TypeError, "output_size must be an int >= 1; got float 10.0"),
    (lambda: fc.Dense(10, input_size=0), ValueError, "input_size must be an int >= 1; got 0"),
    (lambda: fc.Dense(10, input_size=4.5), TypeError,
     "input_size must be an int >= 1; got float 4.5"),
    (lambda: fc.Dense(10, ignore_bias=1), TypeError, "ignore_bias must be a bool; got int 1"),
    (lambda: fc.MaxPool2d(filter=0), ValueError,
     "filter must be >= 1 in both dimensions; got (0, 0)"),
    (lambda: fc.MaxPool2d(ceil_mode="no"), TypeError, "ceil_mode must be a bool; got str 'no'"),
    (lambda: fc.AveragePool2d(stride=(2, 0)), ValueError,
     "stride must be >= 1 in both dimensions; got (2, 0)"),
    (lambda: fc.AveragePool2d(padding=(0, -2)), ValueError,
     "padding must be >= 0 in both dimensions; got (0, -2)"),
    (lambda: fc.AveragePool2d(count_include_pad=None), TypeError,
     "count_include_pad must be a bool; got None"),
    (lambda: fc.Dropout(-0.1), ValueError, "dropout_ratio must be a number in [0, 1); got -0.1"),
    (lambda: fc.Dropout("0.5"), TypeError, "dropout_ratio must be a number in [0, 1); got str "
                                           "'0.5'"),
    (lambda: fc.Dropout(True), TypeError, "dropout_ratio must be a number in [0, 1); got bool "
                                          "True"),
    (lambda: fc.Sgd(lr="0.1"), TypeError, "lr must be a number >= 0; got str '0.1'"),
    (lambda: fc.Sgd(lr=float("inf")), ValueError, "lr must be a number >= 0; got inf"),
    (lambda: fc.Sgd(momentum=-0.5), ValueError, "momentum must be a number >= 0; got -0.5"),
    (lambda: fc.Sgd(momentum=None), TypeError, "momentum must be a number >= 0; got None"),
    (lambda: fc.Sgd(nesterov="no"), TypeError, "nesterov must be a bool; got str 'no'"),
    (lambda: fc.Adam(lr=-1e-3), ValueError, "lr must be a number >= 0; got -0.001"),
    (lambda: fc.Adam(g=1.0), ValueError, "g must be a number in [0, 1); got 1.0"),
    (lambda: fc.Adam(b=-0.1), ValueError, "b must be a number in [0, 1); got -0.1"),
    (lambda: fc.Adam(b=np.float32(1.5)), ValueError, "b must be a number in [0, 1); got 1.5"),
    (lambda: fc.Adam(epsilon=0), ValueError, "epsilon must be a number > 0; got 0"),
    (lambda: fc.Adam(epsilon="1e-8"), TypeError, "epsilon must be a number > 0; got str '1e-8'"),
    (lambda: fc.GlorotNormal(gain=None), TypeError, "gain must be a finite number; got None"),
    (lambda: fc.Gaussian(std=-1), ValueError, "std must be a number >= 0; got -1"),
    (lambda: fc.Gaussian(mean=float("inf")), ValueError, "mean must be a finite number; got inf"),
]


@pytest.mark.parametrize("make,exc,message", BAD_ARGUMENTS, ids=[m for _, _, m in BAD_ARGUMENTS])
def test_constructor_arguments_are_checked_with_named_messages(make, exc, message):
    with raises_exactly(exc, message):
        make()


def test_good_constructor_arguments_still_work():
    fc.Conv2d(channel=np.int64(4), filter=(np.int32(3), 1), padding=(0, 1), stride=(1, 2),
              ignore_bias=np.bool_(True), weight_decay=0)
    fc.Dense(np.uint8(3), input_size=np.int64(2), weight_decay=np.float32(0.5))
    fc.Dropout(0)
    fc.Sgd(lr=0, momentum=0, nesterov=np.bool_(False))
    fc.Adam(lr=np.float64(1e-3), g=0, b=0.5, epsilon=1e-12)


def test_conv2d_reads_the_channel_count_from_a_4d_input():
    with raises_exactly(ValueError, "x must be 4-D (N, C, H, W); got shape (3, 8, 8)"):
        fc.Conv2d(2)(np.zeros((3, 8, 8), np.float32))
    with raises_exactly(TypeError, "x must be an array of real numbers (float, int or bool); got "
                                   "None"):
        fc.Conv2d(2)(None)
    assert fc.Conv2d(channel=3)(np.zeros((1, 2, 5, 5), np.uint8)).shape == (1, 3, 3, 3)


def test_dense_input_size_makes_the_parameters_and_is_enforced():
    layer = fc.Dense(10, input_size=5)
    assert layer.params.w.shape == (5, 10) and layer.params.b.shape == (1, 10)
    assert layer.params.w.dtype == np.float32
    assert layer(np.ones((2, 5))).shape == (2, 10)
    with raises_exactly(ValueError, "x.shape[1] must equal input_size (5); got 7 (x has shape "
                                    "(2, 7))"):
        fc.Dense(10, input_size=5)(np.ones((2, 7), np.float32))  # was: silently (2, 10)
    with raises_exactly(ValueError, "x.shape[1] must equal input_size (5); got 4 (x has shape "
                                    "(3, 4))"):
        layer(np.ones((3, 4), np.float32))
    with raises_exactly(TypeError, "x must be an array of real numbers (float, int or bool); got "
                                   "complex 1j"):
        fc.Dense(2)(1j)


def test_input_size_parameters_load_from_a_file(tmp_path):
    source = fc.Sequential([fc.Dense(4, input_size=3)])
    source.save(tmp_path / "m.npz")
    target = fc.Sequential([fc.Dense(4, input_size=3)])
    target.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(target[0].params.w.as_ndarray(),
                                  source[0].params.w.as_ndarray())


def test_dropout_in_inference_refuses_bad_input_too():
    model = fc.Sequential([fc.Dropout(0.5)])
    model.eval()
    with raises_exactly(TypeError, "x must be an array of real numbers (float, int or bool); got "
                                   "None"):
        model(None)
    assert model([1, 2]).shape == (2,)


def test_weights_too_large_to_describe_are_a_valueerror_naming_what_sized_them():
    # numpy's own "Maximum allowed dimension exceeded" named nothing (a fuzz sample found it).
    x2, x4 = np.zeros((2, 4), np.float32), np.zeros((2, 3, 5, 5), np.float32)
    dense = ("output_size and input_size (x's features) must give Dense.w fewer than 2**60 "
             "elements; got w of shape ")
    with raises_exactly(ValueError, dense + f"(4, {2**63})"):
        fc.Dense(2**63)(x2)
    with raises_exactly(ValueError, dense + f"({2**63}, 4)"):
        fc.Dense(4, input_size=2**63)
    with raises_exactly(ValueError, dense + f"(4, {2**58})"):
        fc.Dense(2**58)(x2)  # the product counts, not one axis
    with raises_exactly(ValueError, "channel and filter (with x's channels) must give Conv2d.w "
                        f"fewer than 2**60 elements; got w of shape ({2**63}, 3, 3, 3)"):
        fc.Conv2d(channel=2**63)(x4)
