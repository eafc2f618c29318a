"""The four MNIST IDX files of one folder: finding them, saying what is missing, checking them.

Every header is read and checked, and the four checked against each other, before any image data
is read: an empty set, a count mismatch or a labels file in the place of an images file is reported
after a few bytes, and nothing malformed reaches the training loop.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from .idx import read_idx, read_idx_header

# key -> (file name, IDX dimensions), in the order they are reported.
MNIST_FILES = {
    "train_images": ("train-images-idx3-ubyte", 3),
    "train_labels": ("train-labels-idx1-ubyte", 1),
    "test_images": ("t10k-images-idx3-ubyte", 3),
    "test_labels": ("t10k-labels-idx1-ubyte", 1),
}
NUM_CLASSES = 10


def _find(directory: Path, stem: str) -> Optional[Path]:
    # Some mirrors spell "train-images.idx3-ubyte"; the plain file wins over .gz (no decompression).
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def _names(keys: List[str]) -> str:
    return ", ".join(MNIST_FILES[k][0] for k in keys)


def find_mnist_files(base: Path, origin: str) -> Dict[str, Path]:
    """The four files in ``base`` or, torchvision's layout, ``base/MNIST/raw``.

    Raises FileNotFoundError when ``base`` is not a folder or neither place has all four, naming
    the folder (and ``origin``, where it came from, when given) and what is missing there.
    """
    where = f"{base} (from {origin})" if origin else str(base)
    if not base.is_dir():
        state = "is not a folder" if base.exists() else "does not exist"
        raise FileNotFoundError(f"{where} {state}; expected a folder of MNIST IDX files")
    best: Optional[Tuple[Path, Dict[str, Optional[Path]]]] = None
    for directory in (base, base / "MNIST" / "raw"):
        found = {key: _find(directory, stem) for key, (stem, _) in MNIST_FILES.items()}
        if all(found.values()):
            return found  # type: ignore[return-value]
        # Report the place that has the most files: what is missing there is what the user lacks.
        if best is None or sum(map(bool, found.values())) > sum(map(bool, best[1].values())):
            best = (directory, found)
    directory, found = best
    present = [k for k, p in found.items() if p is not None]
    missing = [k for k, p in found.items() if p is None]
    if not present:
        raise FileNotFoundError(
            f"{where} holds no MNIST IDX files: expected {_names(missing)} (each may end in .gz), "
            f"in the folder itself or in its MNIST/raw"
        )
    if directory != base:
        where = f"{directory} (under {where})"
    raise FileNotFoundError(
        f"{where} lacks {_names(missing)} (each may end in .gz); it has {_names(present)}"
    )


def _check_headers(files: Dict[str, Path]) -> None:
    headers = {key: read_idx_header(files[key], expect_ndim=ndim, expect_dtype=np.uint8)
               for key, (_, ndim) in MNIST_FILES.items()}
    for split in ("train", "test"):
        images, labels = headers[f"{split}_images"], headers[f"{split}_labels"]
        n, height, width = images.dims
        if n == 0:
            raise ValueError(
                f"{images.path}: expected at least 1 image; got 0 (dims {images.dims})"
            )
        if height == 0 or width == 0:
            raise ValueError(
                f"{images.path}: expected images of at least 1x1 pixels; got {height}x{width}"
            )
        if labels.dims[0] != n:
            raise ValueError(
                f"{labels.path}: {labels.dims[0]} labels, but {images.path} has {n} images; "
                f"expected one label per image"
            )
    train, test = headers["train_images"], headers["test_images"]
    if train.dims[1:] != test.dims[1:]:
        raise ValueError(
            f"{test.path}: image size {test.dims[1:]} differs from {train.path} "
            f"({train.dims[1:]}); expected the same size in both sets"
        )


def _check_labels(labels: np.ndarray, path: Path) -> None:
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise ValueError(
            f"{path}: labels must lie in 0..{NUM_CLASSES - 1}; got {labels[bad[0]]} at index "
            f"{bad[0]} ({bad.size} such label{'s' if bad.size > 1 else ''})"
        )


def load_mnist_folder(base: Path, origin: str):
    """(train images, train labels, test images, test labels, description) from ``base``."""
    files = find_mnist_files(base, origin)
    _check_headers(files)
    arrays = {key: read_idx(files[key], expect_ndim=ndim, expect_dtype=np.uint8)
              for key, (_, ndim) in MNIST_FILES.items()}
    for key in ("train_labels", "test_labels"):
        _check_labels(arrays[key], files[key])
    gz = any(p.suffix == ".gz" for p in files.values())
    description = f"idx: {files['train_images'].parent}" + (" (gzipped)" if gz else "")
    return (arrays["train_images"], arrays["train_labels"], arrays["test_images"],
            arrays["test_labels"], description)
