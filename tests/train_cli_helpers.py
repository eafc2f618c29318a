"""What the fastconv-train tests share: tiny IDX folders, the environment and ways to run the
command (in this process, or as a user runs it)."""
from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

import fastconv as fc
from fastconv import train

FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
SIZE = 12  # pixels a side: the network takes any size, and small images train fast


def idx_file(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, np.uint8).tobytes())


def make_idx(folder: Path, n_train=48, n_test=16, train_labels=None) -> Path:
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, SIZE, SIZE)),
        "train_labels": np.arange(n_train) % 10 if train_labels is None else train_labels,
        "test_images": rng.integers(0, 256, (n_test, SIZE, SIZE)),
        "test_labels": np.arange(n_test) % 10,
    }
    for key, array in arrays.items():
        idx_file(folder / FILES[key], np.asarray(array))
    return folder


@pytest.fixture(autouse=True)
def no_pictures(monkeypatch):
    """matplotlib takes most of a tiny run's time; the pictures are checked by the Ctrl-C test
    here (a real process) and by test_train.py."""
    monkeypatch.setattr(train, "write_pictures", lambda *args: None)


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("FASTCONV_DATA", raising=False)
    monkeypatch.setenv("FASTCONV_TRY_OPENML", "0")


@pytest.fixture
def keep_threads():
    before = fc.get_num_threads()
    yield
    fc.set_num_threads(before)


def run(capsys, *argv) -> tuple[int, str, str]:
    """train.main in this process: (exit status, stdout, stderr)."""
    try:
        code = train.main([str(a) for a in argv])
    except SystemExit as e:  # argparse's errors and --help
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def shell(*argv, env=None, **popen):
    """`python -m fastconv.train ...` as a user runs it, with this checkout's package."""
    package_root = str(Path(fc.__file__).resolve().parents[1])
    env = dict(os.environ if env is None else env, FASTCONV_TRY_OPENML="0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    env.pop("FASTCONV_DATA", None)
    return [sys.executable, "-m", "fastconv.train", *map(str, argv)], env
