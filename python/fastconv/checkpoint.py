"""Checkpoints: a model's parameters, optionally its optimiser's state and a JSON `meta` dict, in
one .npz archive. `Sequential.save` and `Sequential.load` are the public entry points.

The archive holds:
  "l{i}.{name}"                  each parameter, as named_parameters() names it ("l0.w");
  "optimizer:{param}:{slot}"     the optimiser's per-parameter state ("optimizer:l0.w:m"), when
                                 save was given optimizer=;
  "__fastconv__"                 UTF-8 JSON bytes: {"format": 1, "meta": {...}, "optimizer":
                                 {"type": "Adam", "hyperparameters": {...}} or null}.
Nothing is pickled, so a checkpoint from elsewhere cannot run code when loaded.

Saving writes a temporary file next to the target and renames it over the target, so a save that
fails midway (disk full, Ctrl-C) leaves the previous checkpoint whole. Loading checks everything
(every key, shape and dtype against the model's configuration, and the optimiser state) before it
changes anything, so a refused file leaves the model and the optimiser as they were.
"""
from __future__ import annotations

import json
import os
import secrets

import numpy as np

from ._validate import describe

FORMAT = 1
HEADER = "__fastconv__"
OPTIMIZER_PREFIX = "optimizer:"


def npz_path(path) -> str:
    """`path` as save and load both use it: ".npz" appended when it does not end so (the rule
    np.savez applies), so `model.save("ckpt")` then `model.load("ckpt")` finds `ckpt.npz`."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike; got {describe(path)}")
    path = os.fsdecode(os.fspath(path))
    return path if path.endswith(".npz") else path + ".npz"


# ----------------------------------------------------------------------------------------- save

def save(model, path, optimizer=None, meta=None) -> str:
    target = npz_path(path)
    header = {"format": FORMAT, "meta": _encode_meta(meta), "optimizer": None}
    arrays = {}
    for prefix, layer in model._named_leaves():
        if layer._unbuilt_parameters():
            raise ValueError(f"{prefix} ({layer!r}) has no parameters yet (they are made at its "
                             "first call): run the model on a batch before save(); got an unbuilt "
                             "model")
    for name, variable in model.named_parameters():
        arrays[name] = variable.as_ndarray()
    if optimizer is not None:
        _check_optimizer(optimizer)
        header["optimizer"] = {"type": type(optimizer).__name__,
                               "hyperparameters": optimizer.hyperparameters()}
        for name, variable in model.named_parameters():
            for slot, value in (optimizer.get_state(variable) or {}).items():
                arrays[f"{OPTIMIZER_PREFIX}{name}:{slot}"] = np.asarray(value)
    arrays[HEADER] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    _replace_atomically(target, arrays)
    return target


def _encode_meta(meta):
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be None or a dict of JSON-serialisable values; got "
                        f"{describe(meta)}")
    try:
        json.dumps(meta, default=_json_default)
    except (TypeError, ValueError) as err:
        raise TypeError(f"meta must be None or a dict of JSON-serialisable values; got a dict "
                        f"that json cannot write ({err})") from None
    # Round-tripped now, so numpy scalars are stored as the plain numbers load will return.
    return json.loads(json.dumps(meta, default=_json_default))


def _json_default(value):
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _check_optimizer(optimizer) -> None:
    from .optimizers import Optimizer

    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be None or a fastconv optimiser (fc.Sgd, fc.Adam); got "
                        f"{describe(optimizer)}")


def _write_archive(file, arrays: dict) -> None:
    """The one place bytes are written (tests replace it to simulate a full disk)."""
    np.savez(file, **arrays)


def _replace_atomically(target: str, arrays: dict) -> None:
    folder, base = os.path.split(os.path.abspath(target))
    # Same folder as the target: os.replace is atomic only within one file system. open("xb")
    # honours the umask, so the checkpoint gets the permissions a plain write would give it.
    temporary = os.path.join(folder, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as file:
            _write_archive(file, arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


# ----------------------------------------------------------------------------------------- load

def load(model, path, optimizer=None) -> dict:
    source = npz_path(path)
    where = f"path {source!r}"
    if optimizer is not None:
        _check_optimizer(optimizer)
    arrays = _read_archive(source, where)
    header = _read_header(arrays.pop(HEADER, None), where)
    saved_state = {k: arrays.pop(k) for k in list(arrays) if k.startswith(OPTIMIZER_PREFIX)}
    values = _check_parameters(model, arrays, where)
    states = (_check_optimizer_state(optimizer, header, saved_state, values, where)
              if optimizer is not None else None)
    # Everything checked: now change the model (and the optimiser).
    for prefix, layer in model._named_leaves():
        for name, value in values.get(prefix, {}).items():
            layer._set_parameter(name, value)
    if states is not None:
        for name, variable in model.named_parameters():
            optimizer.set_state(variable, states.get(name))
    return header["meta"]


def _read_archive(source: str, where: str) -> dict:
    expected = "a fastconv checkpoint (an .npz archive written by save)"
    with open(source, "rb") as file:  # a missing or unreadable file raises its own OSError
        try:
            with np.load(file, allow_pickle=False) as data:
                if not isinstance(data, np.lib.npyio.NpzFile):
                    raise ValueError("a single .npy array")
                return {key: data[key] for key in data.files}
        except MemoryError:
            raise
        except Exception as err:  # zipfile, zlib, numpy's format and pickle refusals alike
            raise ValueError(f"{where} must be {expected}; got a file numpy cannot read as one "
                             f"({type(err).__name__}: {err})") from None


def _read_header(raw, where: str) -> dict:
    if raw is None:  # written before checkpoints carried a header: parameters only
        return {"format": FORMAT, "meta": {}, "optimizer": None}
    try:
        header = json.loads(np.asarray(raw, dtype=np.uint8).tobytes().decode("utf-8"))
        if not (isinstance(header, dict) and isinstance(header.get("meta"), dict)):
            raise ValueError("not a JSON object with a meta dict")
    except (ValueError, TypeError) as err:
        raise ValueError(f"{where}: entry {HEADER} must be fastconv's JSON header; got bytes "
                         f"that do not read as one ({err})") from None
    if header.get("format") != FORMAT:
        raise ValueError(f"{where}: checkpoint format must be {FORMAT}; got "
                         f"{header.get('format')!r} (written by another fastconv version)")
    return header


def _shape_text(shape) -> str:
    parts = ["any" if n is None else str(n) for n in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def _check_parameters(model, arrays: dict, where: str) -> dict:
    """{layer prefix: {name: array}} for every parameter of the model, each checked against the
    layer's configuration; the first mismatch raises ValueError naming the file."""
    leaves = dict(model._named_leaves())
    present = ", ".join(arrays) or "none"
    values = {}
    for prefix, layer in leaves.items():
        for name, expected in layer._parameter_shapes().items():
            key = f"{prefix}.{name}"
            if key not in arrays:
                raise ValueError(f"{where}: {key} must be present for {prefix} = {layer!r} "
                                 f"(shape {_shape_text(expected)}); got no such entry "
                                 f"(entries: {present})")
            value = arrays.pop(key)
            if value.dtype.kind != "f":
                raise ValueError(f"{where}: {key} must hold floating-point numbers; got dtype "
                                 f"{value.dtype}")
            if len(value.shape) != len(expected) or any(
                    n < 1 if e is None else n != e for n, e in zip(value.shape, expected)):
                raise ValueError(f"{where}: {key} must have shape {_shape_text(expected)} for "
                                 f"{prefix} = {layer!r}; got shape {value.shape}")
            values.setdefault(prefix, {})[name] = value
    for key in arrays:  # whatever is left names no parameter of this model
        prefix, _, name = key.rpartition(".")
        layer = leaves.get(prefix)
        if layer is not None:
            has = ", ".join(layer._parameter_shapes()) or "none"
            reason = f"{prefix} = {layer!r} has no parameter {name!r} (its parameters: {has})"
        else:
            reason = f"this model has no layer {prefix or key!r} with parameters"
        raise ValueError(f"{where}: every entry must be a parameter of the model; got {key!r} of "
                         f"shape {arrays[key].shape}: {reason}")
    return values


def _check_optimizer_state(optimizer, header, saved: dict, values: dict, where: str) -> dict:
    """{parameter name: state dict} for optimizer.set_state, checked against the optimiser and
    the parameters' shapes."""
    kind = type(optimizer).__name__
    info = header.get("optimizer")
    if not isinstance(info, dict):
        raise ValueError(f"{where} holds no optimiser state (it was saved without optimizer=); "
                         f"got optimizer={kind}: pass optimizer=None to load the parameters only")
    if info.get("type") != kind:
        raise ValueError(f"{where}: optimizer must be a {info.get('type')} (the state saved is "
                         f"its); got {kind}")
    shapes = {f"{prefix}.{name}": value.shape
              for prefix, by_name in values.items() for name, value in by_name.items()}
    grouped = {}
    for key, value in saved.items():
        name, _, slot = key[len(OPTIMIZER_PREFIX):].rpartition(":")
        if name not in shapes:
            raise ValueError(f"{where}: optimiser entries must belong to a parameter of the "
                             f"model; got {key!r}")
        grouped.setdefault(name, {})[slot] = value
    wanted = set(optimizer.state_names())
    for name, state in grouped.items():
        if set(state) != wanted:
            raise ValueError(f"{where}: the optimiser state of {name} must have entries "
                             f"{sorted(wanted)} for this {kind}; got {sorted(state)}")
        for slot, value in state.items():
            if slot == "step":
                if value.shape != () or value.dtype.kind not in "iu" or value < 1:
                    raise ValueError(f"{where}: optimizer:{name}:step must be an integer >= 1; "
                                     f"got {value!r}")
            elif value.shape != shapes[name] or value.dtype.kind != "f":
                raise ValueError(f"{where}: optimizer:{name}:{slot} must be floating-point of "
                                 f"shape {shapes[name]} (the parameter's); got {value.dtype} of "
                                 f"shape {value.shape}")
    return grouped
