"""fastconv-train's data: --data to a loader call, and the checks that make a run worth starting.

Everything found wrong here raises CommandError with one readable sentence, before any training:
an empty split or out-of-range labels would otherwise fail (or "succeed" with 0 steps) much later.
"""
from __future__ import annotations

import os

import numpy as np

from . import datasets
from ._cli import DATA_SOURCES, CommandError, note

NUM_CLASSES = 10  # the tutorial network's last Dense layer


def _os_reason(e: OSError) -> str:
    reason = e.strerror or str(e)
    return f"{reason}: {e.filename}" if e.filename else reason


def load(data: str, seed: int, limit_train, limit_test) -> datasets.MnistData:
    """Load what --data names; print what auto skipped and why; raise CommandError on failure."""
    if data in DATA_SOURCES:
        source, folder = data, None
        if data == "idx" and not os.environ.get("FASTCONV_DATA"):
            raise CommandError("--data idx reads the folder named by the FASTCONV_DATA "
                               "environment variable, which is not set; set it, or pass the "
                               "folder itself: --data DIR")
    else:
        if not os.path.isdir(data):
            what = "a file, not a folder" if os.path.exists(data) else "no such folder"
            raise CommandError(f"--data {data}: {what}; expected one of "
                               f"{', '.join(DATA_SOURCES)} or a folder of MNIST IDX files")
        source, folder = "idx", data
    try:
        loaded = datasets.load_mnist(source=source, data_dir=folder, seed=seed,
                                     limit_train=limit_train, limit_test=limit_test)
    except OSError as e:
        raise CommandError(f"cannot read the data: {_os_reason(e)}") from None
    except (ValueError, RuntimeError) as e:
        # The loader's messages name the file and the problem; several lines become one.
        raise CommandError(str(e)) from None
    for skipped in loaded.tried:
        note(f"data: skipped {skipped}")
    return loaded


def check(data: datasets.MnistData, batch_size: int, ranks: int = 1) -> None:
    """Refuse data that cannot train the 10-class network for even one step (of batch_size
    images on each of `ranks` processes)."""
    for split, images, labels in (("training", data.train_images, data.train_labels),
                                  ("validation", data.test_images, data.test_labels)):
        if len(images) == 0:
            raise CommandError(f"the {split} set is empty ({data.source})")
        bad = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
        if bad.size:
            raise CommandError(
                f"{split} labels must be 0 to {NUM_CLASSES - 1}; got {labels[bad[0]]} at index "
                f"{bad[0]} ({bad.size} such labels in {data.source})")
    count = len(data.train_images)
    if batch_size * ranks > count:
        # An error, not a silent clamp: the batch size changes what is learned, and a run of
        # 0 steps would report a loss of 0.
        if ranks == 1:
            raise CommandError(f"--batch-size {batch_size} is larger than the training set "
                               f"({count} images); use at most {count}")
        raise CommandError(f"--batch-size {batch_size} x {ranks} ranks is larger than the "
                           f"training set ({count} images); use at most {count // ranks}")
