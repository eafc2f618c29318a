"""Pictures of a trained CNN: its first-layer kernels, the feature maps they produce, the loss curves.

Figures are built as ``matplotlib.figure.Figure`` on an Agg canvas directly, never through pyplot,
so importing or calling this module leaves the user's chosen backend (and any open pyplot figures)
alone and works on machines without a display.

Every function writes a PNG to ``path`` (creating missing parent directories) and returns the path
as a ``pathlib.Path``. Array arguments may be numpy arrays, anything numpy can convert, or objects
with ``as_ndarray()`` / ``to_numpy()`` (fastconv parameters and device arrays).
"""
from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

# matplotlib is imported by the functions that draw, not here: `import fastconv` stays light for
# those who never plot, and a matplotlib warning cannot break an import.
if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_kernels", "plot_feature_maps", "plot_history"]

PathLike = Union[str, "os.PathLike[str]"]

_HEADER_INCHES = 0.4  # a band above the grid for the title
_MIN_WIDTH_INCHES = 3.0  # so the title of a small grid is not clipped
_GAP = 0.06  # fraction of a cell left blank on each side, so neighbouring images do not merge


def _to_numpy(x, name: str) -> np.ndarray:
    if hasattr(x, "as_ndarray"):
        x = x.as_ndarray()
    elif hasattr(x, "to_numpy"):
        x = x.to_numpy()
    try:
        arr = np.asarray(x)
    except Exception as e:
        raise ValueError(f"{name}: cannot convert {type(x).__name__} to an array ({e})") from e
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _check_grid_args(ncols, cell_inches, dpi) -> None:
    if isinstance(ncols, bool) or not isinstance(ncols, numbers.Integral) or ncols < 1:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")
    if not cell_inches > 0:
        raise ValueError(f"cell_inches must be > 0, got {cell_inches!r}")
    if not dpi > 0:
        raise ValueError(f"dpi must be > 0, got {dpi!r}")


def _save(fig: Figure, path: PathLike, dpi: float) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # attaches itself to fig; savefig then renders with Agg
    fig.savefig(path, dpi=dpi, format="png", facecolor="white")
    return path


def _image_grid(
    images: Sequence[np.ndarray],
    path: PathLike,
    *,
    title: str,
    ncols: int,
    cell_inches: float,
    dpi: float,
    cmap: str,
    shared_scale: bool,
    highlight_first: bool = False,
) -> Path:
    count = len(images)
    ncols = min(ncols, count)
    nrows = math.ceil(count / ncols)
    h, w = images[-1].shape
    cell_w = cell_inches
    cell_h = cell_inches * h / w  # keep square pixels for non-square maps
    grid_w = ncols * cell_w
    fig_w = max(grid_w, _MIN_WIDTH_INCHES)
    fig_h = nrows * cell_h + _HEADER_INCHES
    from matplotlib.figure import Figure

    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)

    if shared_scale:
        finite = np.concatenate([im[np.isfinite(im)].ravel() for im in images])
        vmin, vmax = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    else:
        # Each picture stretched to its own range, as the tutorial's per-kernel MinMaxScaler.
        vmin = vmax = None

    left0 = (fig_w - grid_w) / 2
    for i, im in enumerate(images):
        row, col = divmod(i, ncols)
        x0 = left0 + (col + _GAP) * cell_w
        y0 = fig_h - _HEADER_INCHES - (row + 1 - _GAP) * cell_h
        ax = fig.add_axes(
            (x0 / fig_w, y0 / fig_h, (1 - 2 * _GAP) * cell_w / fig_w, (1 - 2 * _GAP) * cell_h / fig_h)
        )
        ax.imshow(im, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest", aspect="auto")
        ax.set_xticks([])
        ax.set_yticks([])
        if highlight_first and i == 0:
            for spine in ax.spines.values():
                spine.set_edgecolor("tab:red")
                spine.set_linewidth(2)
        else:
            for spine in ax.spines.values():
                spine.set_visible(False)
    fig.text(0.5, 1 - _HEADER_INCHES / 2 / fig_h, title, ha="center", va="center", fontsize=10)
    return _save(fig, path, dpi)


def plot_kernels(
    weights,
    path: PathLike,
    *,
    channel: int = 0,
    ncols: int = 8,
    cell_inches: float = 1.0,
    dpi: float = 100,
    cmap: str = "gray",
    shared_scale: bool = False,
    title: Optional[str] = None,
) -> Path:
    """Draw conv kernels ``weights`` ``(K, C, kh, kw)`` as a grid, one cell per kernel.

    Shows input channel ``channel`` of each kernel, ``ncols`` per row (32 kernels -> 4 x 8). Each
    kernel is stretched to its own min..max unless ``shared_scale``, which puts all on one range so
    their magnitudes compare. The PNG is ``max(ncols * cell_inches, 3) x (rows * cell_inches + 0.4)``
    inches at ``dpi`` (``ncols`` capped at K).
    """
    w = _to_numpy(weights, "weights")
    if w.ndim != 4 or 0 in w.shape:
        raise ValueError(f"weights must be (K, C, kh, kw) with no empty axis, got shape {w.shape}")
    _check_grid_args(ncols, cell_inches, dpi)
    k, c, kh, kw = w.shape
    if isinstance(channel, bool) or not isinstance(channel, numbers.Integral) or not 0 <= channel < c:
        raise ValueError(f"channel must be an int in 0..{c - 1}, got {channel!r}")
    if title is None:
        title = f"{k} kernels {kh}x{kw}, input channel {channel}"
    return _image_grid(
        [w[i, channel] for i in range(k)], path, title=title, ncols=ncols,
        cell_inches=cell_inches, dpi=dpi, cmap=cmap, shared_scale=shared_scale,
    )


def plot_feature_maps(
    maps,
    path: PathLike,
    *,
    image=None,
    ncols: int = 8,
    cell_inches: float = 1.0,
    dpi: float = 100,
    cmap: str = "gray",
    shared_scale: bool = False,
    title: Optional[str] = None,
) -> Path:
    """Draw feature maps ``(K, H, W)`` or ``(1, K, H, W)`` (one sample's layer output) as a grid.

    ``image``, the input that produced them (``(H', W')``, ``(1, H', W')`` or ``(1, 1, H', W')``),
    is drawn first, framed in red, when given. Each map is stretched to its own range unless
    ``shared_scale``. Size as in ``plot_kernels``, with cells ``cell_inches`` wide and ``H / W`` as
    tall, one more cell when ``image`` is given.
    """
    m = _to_numpy(maps, "maps")
    if m.ndim == 4 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 3 or 0 in m.shape:
        raise ValueError(
            f"maps must be (K, H, W) or (1, K, H, W) with no empty axis, got shape "
            f"{np.shape(_to_numpy(maps, 'maps'))}; for a batch pass one sample, e.g. maps[i]"
        )
    _check_grid_args(ncols, cell_inches, dpi)
    cells = [m[i] for i in range(m.shape[0])]
    if image is not None:
        img = _to_numpy(image, "image")
        while img.ndim > 2 and img.shape[0] == 1:
            img = img[0]
        if img.ndim != 2 or 0 in img.shape:
            raise ValueError(
                f"image must be (H, W), (1, H, W) or (1, 1, H, W), got shape {np.shape(image)}"
            )
        cells.insert(0, img)
    if title is None:
        title = f"{m.shape[0]} feature maps {m.shape[1]}x{m.shape[2]}"
        if image is not None:
            title += " (input framed in red)"
    return _image_grid(
        cells, path, title=title, ncols=ncols, cell_inches=cell_inches, dpi=dpi, cmap=cmap,
        shared_scale=shared_scale, highlight_first=image is not None,
    )


def _history_columns(history) -> Dict[str, List[float]]:
    """A list of per-epoch dicts (or a dict of equal-length lists) -> key -> list of floats."""
    if isinstance(history, Mapping):
        lengths = {len(v) for v in history.values()} if history else {0}
        if len(lengths) != 1:
            raise ValueError(f"history: the lists in the dict differ in length ({sorted(lengths)})")
        n = lengths.pop()
        rows = [{key: history[key][i] for key in history} for i in range(n)]
    else:
        rows = list(history)
    if not rows:
        raise ValueError("history is empty: expected one dict per epoch")
    columns: Dict[str, List[float]] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError(f"history[{i}] must be a dict, got {type(row).__name__}")
        for key in row:
            columns.setdefault(key, [math.nan] * len(rows))
    for i, row in enumerate(rows):
        for key, value in row.items():
            if value is None:
                continue
            arr = _to_numpy(value, f"history[{i}][{key!r}]")
            if arr.size != 1:
                raise ValueError(f"history[{i}][{key!r}] must be a scalar, got shape {arr.shape}")
            columns[key][i] = float(arr.reshape(()))
    return columns


def plot_history(
    history,
    path: PathLike,
    *,
    title: Optional[str] = None,
    width_inches: float = 10.0,
    height_inches: float = 4.0,
    dpi: float = 100,
) -> Path:
    """Plot training curves: losses on the left panel, accuracies on the right.

    ``history`` is a list with one dict per epoch (or a dict of per-epoch lists), e.g.
    ``{"epoch": 0, "train_loss": 0.45, "val_loss": 0.29, "val_accuracy": 0.91}``. Keys containing
    "loss" go left, keys containing "acc" right; others (time, lr) are ignored. The x axis is
    ``"epoch"`` when every entry has it, else 1, 2, ... A missing value leaves a gap. The PNG is
    ``width_inches x height_inches`` at ``dpi``.
    """
    columns = _history_columns(history)
    n = len(next(iter(columns.values())))
    epochs = columns.pop("epoch", None)
    if epochs is None or any(math.isnan(e) for e in epochs):
        epochs = [float(i + 1) for i in range(n)]
    loss_keys = [k for k in columns if "loss" in k.lower()]
    acc_keys = [k for k in columns if "acc" in k.lower() and k not in loss_keys]
    if not loss_keys and not acc_keys:
        raise ValueError(
            f"history has no loss or accuracy keys (found {sorted(columns)}); expected keys like "
            f"'train_loss', 'val_loss', 'val_accuracy'"
        )
    if not (width_inches > 0 and height_inches > 0 and dpi > 0):
        raise ValueError("width_inches, height_inches and dpi must be > 0")

    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(width_inches, height_inches), dpi=dpi, layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, keys, label in ((ax_loss, loss_keys, "loss"), (ax_acc, acc_keys, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if n == 1:
            # one point gives a zero-width range, which autoscale pads with fractional ticks
            ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
        if not keys:
            ax.text(0.5, 0.5, f"no {label} recorded", ha="center", va="center",
                    transform=ax.transAxes, color="gray")
            continue
        for key in keys:
            values = np.asarray(columns[key])
            finite = values[np.isfinite(values)]
            last = f" (last {finite[-1]:.4g})" if finite.size else ""
            ax.plot(epochs, values, marker="o", markersize=3, label=key + last)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    ax_loss.set_title("loss")
    ax_acc.set_title("accuracy")
    if title:
        fig.suptitle(title)
    return _save(fig, path, dpi)
