"""The start-up agreement between ranks: every rank's model has the same parameters (count,
names, shapes, dtypes), and then rank 0's values are copied to all.

Every rank gathers every rank's description, so all of them find the same first difference and
raise the same ModelMismatchError: no rank is left waiting in a collective the others skipped.
"""
from __future__ import annotations

import numpy as np


class ModelMismatchError(ValueError):
    """The ranks' models (or gradients) differ; raised alike on every rank."""


def _parameters(model) -> list:
    """(name, Variable) pairs: a Sequential's names, else l{i} by position."""
    if hasattr(model, "named_parameters"):
        return list(model.named_parameters())
    return [(f"parameter {i}", p) for i, p in enumerate(model.parameters())]


def _text(entry) -> str:
    name, shape, dtype = entry
    return f"{name} {tuple(shape)} {dtype}"


def first_difference(descriptions: list, what: str) -> str | None:
    """The first way in which a rank's list of (name, shape, dtype) differs from rank 0's."""
    mine = descriptions[0]
    for rank, theirs in enumerate(descriptions[1:], start=1):
        for i, (a, b) in enumerate(zip(mine, theirs)):
            if tuple(a) != tuple(b):
                return (f"{what} differ between ranks: {what[:-1]} {i} is {_text(b)} on rank "
                        f"{rank} and {_text(a)} on rank 0")
        if len(mine) != len(theirs):
            longer, who = (mine, 0) if len(mine) > len(theirs) else (theirs, rank)
            extra = _text(longer[min(len(mine), len(theirs))])
            return (f"{what} differ between ranks: rank {rank} has {len(theirs)} and rank 0 has "
                    f"{len(mine)}; the first without a match is {extra} on rank {who}")
    return None


def describe(model) -> list:
    return [(name, tuple(int(n) for n in p.shape), np.dtype(p.dtype).name)
            for name, p in _parameters(model)]


def check_models(comm, model) -> None:
    """Raise ModelMismatchError (on every rank) unless all ranks' models have the same
    parameters; ValueError if the model has none yet (they appear on the first forward pass)."""
    mine = describe(model)
    everyone = comm.allgather(mine)
    empty = [r for r, d in enumerate(everyone) if not d]
    if empty:
        raise ValueError(f"model must have its parameters (run one forward pass or load a "
                         f"checkpoint first); got none on rank {empty[0]}")
    problem = first_difference(everyone, "parameters")
    if problem:
        raise ModelMismatchError(problem)


def broadcast_parameters(comm, model) -> None:
    """Check the models agree, then give every rank rank 0's parameter values."""
    check_models(comm, model)
    if comm.Get_size() == 1:
        return
    for _, p in _parameters(model):
        value = np.array(p.as_ndarray(), order="C", copy=True)
        comm.Bcast(value, root=0)
        p.copy_from(value)


def agree_on_layout(comm, layout: tuple) -> None:
    """The gradients' (dtype, shape, on device) in order must be alike on every rank."""
    entries = [(f"#{i}" + (" (GPU)" if device else ""), shape, dtype)
               for i, (dtype, shape, device) in enumerate(layout)]
    problem = first_difference(comm.allgather(entries), "gradients")
    if problem:
        raise ModelMismatchError(problem)
