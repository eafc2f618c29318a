"""What fastconv-train leaves in --out: weights, metrics, pictures and resumable checkpoints.

A checkpoint is model.save(path, optimizer, meta): the weights, the optimiser's state, and in meta
everything else a run needs to continue exactly where it stopped: the epochs done, both random
generators (the batch order's and numpy's global one, which draws the dropout seeds) and the
metrics so far.
"""
from __future__ import annotations

import csv
import json
import os
import warnings

import numpy as np

from ._cli import CommandError

CHECKPOINT_FORMAT = "fastconv-train checkpoint 1"
# Settings that change what a resumed run computes; a difference is reported, not refused. A
# checkpoint from before --distributed has no "ranks": it was one process.
_SETTINGS = ("batch_size", "lr", "seed", "data", "ranks")
_UNSAVED = {"ranks": 1}


def write_metrics(history: list, out: str) -> None:
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(history, f, indent=2)
    # LF on every platform (the csv module's default is CRLF).
    with open(os.path.join(out, "metrics.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)


def write_pictures(model, history: list, test_images: np.ndarray, out: str) -> None:
    from . import viz  # matplotlib is imported only when there is something to draw

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # matplotlib font-cache chatter on a fresh machine
        viz.plot_history(history, os.path.join(out, "history.png"))
        viz.plot_kernels(model._layers[0].params.w, os.path.join(out, "kernels.png"))
        maps = model._layers[0](test_images[:1])  # the tutorial's picture: conv1 on one digit
        viz.plot_feature_maps(maps, os.path.join(out, "feature_maps.png"))


def snapshot(model) -> list:
    """Host copies of every parameter, to go back to the last finished epoch after a Ctrl-C."""
    return [np.array(p.as_ndarray(), copy=True) for p in model.parameters()]


def restore(model, saved: list) -> None:
    for parameter, value in zip(model.parameters(), saved):
        parameter.copy_from(value)


def _global_rng_state() -> dict:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached)}


def _set_global_rng_state(state: dict) -> None:
    np.random.set_state((state["name"], np.asarray(state["keys"], dtype=np.uint32),
                         state["pos"], state["has_gauss"], state["cached_gaussian"]))


def checkpoint_path(out: str, epoch: int) -> str:
    return os.path.join(out, f"checkpoint-epoch{epoch:03d}.npz")


def save_checkpoint(model, opt, out: str, history: list, rng, settings: dict) -> str:
    """Write the state after the last epoch in history; returns the path written."""
    meta = {
        "format": CHECKPOINT_FORMAT,
        "epoch": len(history),  # epochs finished: the next one to run
        "batch_rng": rng.bit_generator.state,
        "numpy_rng": _global_rng_state(),
        "history": history,
        "settings": settings,
    }
    return os.fspath(model.save(checkpoint_path(out, len(history) - 1), optimizer=opt, meta=meta))


def resume(path: str, model, opt, rng, settings: dict, epochs: int) -> tuple[int, list, list]:
    """Load a checkpoint into model, opt and both generators; returns (epochs done, history,
    warnings about settings that differ from the checkpoint's)."""
    # The meta first (with the weights): a file that is not a training checkpoint, or one from
    # another optimiser, is then named as such rather than by what the optimiser state lacks.
    meta = _load(path, model, None)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CommandError(f"--resume {path}: not a fastconv-train checkpoint (a file written "
                           "with --checkpoint-every holds the training state too)")
    saved = meta["settings"]
    if saved["optimizer"] != settings["optimizer"]:
        raise CommandError(f"--resume {path}: the checkpoint was trained with --optimizer "
                           f"{saved['optimizer']}; got --optimizer {settings['optimizer']}")
    done = int(meta["epoch"])
    if done >= epochs:
        raise CommandError(f"--resume {path}: the checkpoint has finished {done} epoch(s), so "
                           f"--epochs {epochs} leaves nothing to do; pass a larger --epochs")
    _load(path, model, opt)
    rng.bit_generator.state = meta["batch_rng"]
    _set_global_rng_state(meta["numpy_rng"])
    differs = [f"{_label(key)} is {settings[key]}; the checkpoint used "
               f"{saved.get(key, _UNSAVED.get(key))}"
               for key in _SETTINGS if saved.get(key, _UNSAVED.get(key)) != settings[key]]
    return done, list(meta["history"]), differs


def _label(key: str) -> str:
    return "the number of ranks" if key == "ranks" else f"--{key.replace('_', '-')}"


def check_readable(path: str) -> None:
    """Before the data is loaded (which may take a download): is there a file to resume from?"""
    if not os.path.isfile(_npz(path)):
        what = "a folder, not a checkpoint file" if os.path.isdir(_npz(path)) else \
            "No such file or directory"
        raise CommandError(f"--resume {path}: {what}")


def _load(path: str, model, opt) -> dict:
    try:
        return model.load(path, optimizer=opt)
    except OSError as e:
        raise CommandError(f"--resume {path}: {e.strerror or e}") from None
    except (ValueError, TypeError) as e:
        # model.load names the file as "path '<file>'"; say it the command's way instead.
        message, named = str(e), f"path {_npz(path)!r}"
        if message.startswith(named):
            message = message[len(named):].lstrip(":").lstrip()
            raise CommandError(f"--resume {path}: {message}") from None
        raise CommandError(f"--resume {path}: {message}") from None


def _npz(path: str) -> str:
    return path if path.endswith(".npz") else path + ".npz"
