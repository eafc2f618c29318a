import subprocess
import sys

import numpy as np
import pytest
from matplotlib.image import imread

import fastconv.viz as viz


class FakeParam:
    """Stands in for a fastconv parameter or device array: only as_ndarray()."""

    def __init__(self, array):
        self._array = array

    def as_ndarray(self):
        return self._array


def png_shape(path):
    assert path.is_file() and path.stat().st_size > 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return imread(path).shape[:2]


def grid_pixels(count, ncols=8, cell=1.0, dpi=100, aspect=1.0):
    # The documented size: max(cols * cell, 3) wide, rows * cell * H/W + 0.4 tall, in inches.
    cols = min(ncols, count)
    rows = -(-count // cols)
    return round((rows * cell * aspect + 0.4) * dpi), round(max(cols * cell, 3.0) * dpi)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_kernels_default_grid(tmp_path, rng):
    w = rng.standard_normal((32, 1, 3, 3)).astype(np.float32)
    out = viz.plot_kernels(w, tmp_path / "kernels.png")
    assert out == tmp_path / "kernels.png"
    assert png_shape(out) == grid_pixels(32) == (440, 800)  # 4 x 8 cells


def test_kernels_odd_count_other_channel_and_as_ndarray(tmp_path, rng):
    w = FakeParam(rng.standard_normal((5, 3, 5, 5)))
    out = viz.plot_kernels(w, tmp_path / "sub" / "k.png", channel=2, ncols=4, dpi=50)
    assert png_shape(out) == grid_pixels(5, ncols=4, dpi=50)
    out = viz.plot_kernels(w, str(tmp_path / "k7.png"), ncols=8, shared_scale=True, title="x")
    assert png_shape(out) == grid_pixels(5)
    one = viz.plot_kernels(np.ones((1, 1, 3, 3)), tmp_path / "one.png")  # constant kernel: no crash
    assert png_shape(one) == grid_pixels(1)


def test_kernels_show_the_weights(tmp_path):
    # A left-dark, right-bright kernel must come out left-dark, right-bright in the picture.
    w = np.tile(np.array([-1.0, 0.0, 1.0]), (1, 1, 3, 1))
    out = viz.plot_kernels(w, tmp_path / "ramp.png", cmap="gray")
    img = imread(out)[..., :3].mean(axis=2)
    h, wd = img.shape
    cell_mid_y = round((0.4 + 0.5) * 100)  # first row of cells, below the title band
    left0 = (wd - 100) // 2  # one 1-inch cell centred in the 3-inch minimum width
    row = img[cell_mid_y, left0 + 15:left0 + 85]
    assert row[0] < 0.1 and row[-1] > 0.9 and row[0] < row[len(row) // 2] < row[-1]


@pytest.mark.parametrize(
    "weights", [np.zeros((4, 3, 3)), np.zeros((4, 1, 3, 3, 1)), np.zeros((0, 1, 3, 3)), ["a", "b"]]
)
def test_kernels_bad_shape(tmp_path, weights):
    with pytest.raises(ValueError, match="weights"):
        viz.plot_kernels(weights, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_kernels_bad_arguments(tmp_path):
    w = np.zeros((4, 2, 3, 3))
    with pytest.raises(ValueError, match="channel"):
        viz.plot_kernels(w, tmp_path / "bad.png", channel=2)
    with pytest.raises(ValueError, match="ncols"):
        viz.plot_kernels(w, tmp_path / "bad.png", ncols=0)


def test_feature_maps(tmp_path, rng):
    maps = np.maximum(rng.standard_normal((1, 32, 28, 28)), 0).astype(np.float32)
    out = viz.plot_feature_maps(maps, tmp_path / "maps.png")
    assert png_shape(out) == grid_pixels(32)
    out = viz.plot_feature_maps(FakeParam(maps[0, :7]), tmp_path / "maps7.png", ncols=3)
    assert png_shape(out) == grid_pixels(7, ncols=3)


def test_feature_maps_with_input_and_non_square(tmp_path, rng):
    maps = rng.standard_normal((6, 14, 7))  # H/W = 2: cells twice as tall
    image = rng.random((1, 1, 28, 14))
    out = viz.plot_feature_maps(maps, tmp_path / "m.png", image=image, ncols=4, cell_inches=0.5)
    assert png_shape(out) == grid_pixels(7, ncols=4, cell=0.5, aspect=2.0)


@pytest.mark.parametrize("maps", [np.zeros((2, 3, 5, 5)), np.zeros((5, 5)), np.zeros((3, 0, 5))])
def test_feature_maps_bad_shape(tmp_path, maps):
    with pytest.raises(ValueError, match="maps"):
        viz.plot_feature_maps(maps, tmp_path / "bad.png")


def test_feature_maps_bad_image(tmp_path):
    with pytest.raises(ValueError, match="image"):
        viz.plot_feature_maps(np.zeros((3, 5, 5)), tmp_path / "bad.png", image=np.zeros((2, 5, 5)))


def history(n=6):
    return [
        {"epoch": e, "train_loss": 1 / (e + 2), "val_loss": 1.2 / (e + 2), "val_accuracy": 0.9 + e / 100,
         "seconds": 3.0}
        for e in range(n)
    ]


def test_history(tmp_path):
    out = viz.plot_history(history(), tmp_path / "h.png", title="run")
    assert png_shape(out) == (400, 1000)


def test_history_variants(tmp_path):
    # one epoch, loss only, a missing value, a scalar object with as_ndarray(), dict of lists
    one = viz.plot_history([{"train_loss": FakeParam(np.float32(0.5))}], tmp_path / "1.png", dpi=50)
    assert png_shape(one) == (200, 500)
    rows = history(4)
    rows[2]["val_loss"] = None
    del rows[3]["val_accuracy"]
    assert png_shape(viz.plot_history(rows, tmp_path / "gap.png")) == (400, 1000)
    cols = {"train_loss": [0.9, 0.5, 0.3], "val_acc": [0.5, 0.7, 0.8]}
    out = viz.plot_history(cols, tmp_path / "cols.png", width_inches=6, height_inches=3)
    assert png_shape(out) == (300, 600)


@pytest.mark.parametrize(
    "bad",
    [[], [1.0, 2.0], [{"epoch": 1, "seconds": 2.0}], [{"train_loss": [1.0, 2.0]}],
     [{"train_loss": "high"}], {"train_loss": [1.0], "val_loss": [1.0, 2.0]}],
)
def test_history_bad(tmp_path, bad):
    with pytest.raises(ValueError, match="history"):
        viz.plot_history(bad, tmp_path / "bad.png")


def test_pyplot_never_imported(tmp_path):
    # pyplot would pick (and lock in) a backend for the user; the module must draw without it.
    code = (
        "import sys, numpy as np, fastconv.viz as v\n"
        f"v.plot_kernels(np.ones((2, 1, 3, 3)), {str(tmp_path / 'k.png')!r})\n"
        f"v.plot_history([{{'train_loss': 1.0}}], {str(tmp_path / 'h.png')!r})\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
