"""Where a benchmark runs: how to put its inputs there, how to wait for it, and which
implementations have a column there. Everything GPU-specific lives in this file."""
from __future__ import annotations

import os

import numpy as np

# Column keys, in table order. fastconv's CUDA kernels are not wired into the ops yet: that column
# is reported as "n/a" until they are.
CPU_IMPLS = ("fastconv", "torch", "numpy")
CUDA_IMPLS = ("fastconv_cuda", "torch_cudnn", "torch_nocudnn")
TITLES = {
    "fastconv": "fastconv CPU",
    "torch": "PyTorch CPU",
    "numpy": "numpy reference",
    "fastconv_cuda": "fastconv CUDA",
    "torch_cudnn": "PyTorch CUDA cuDNN",
    "torch_nocudnn": "PyTorch CUDA no cuDNN",
}
# fastconv / PyTorch ratios, pair by pair; None where fastconv has no implementation yet.
RATIO_PAIRS = {"cpu": ("fastconv", "torch"), "cuda": ("fastconv_cuda", "torch_cudnn")}


def import_torch():
    """torch, or None when it is missing or hidden with FASTCONV_BENCH_NO_TORCH=1 (so CI can
    check that the benchmarks run without it)."""
    if os.environ.get("FASTCONV_BENCH_NO_TORCH", "") not in ("", "0"):
        return None
    try:
        import torch
    except ImportError:
        return None
    return torch


class Device:
    """One place to run: 'cpu' or 'cuda'."""

    def __init__(self, name: str, torch):
        self.name = name
        self.torch = torch
        self.impls = CPU_IMPLS if name == "cpu" else CUDA_IMPLS
        self.skip = set()  # columns left out with --impls

    def tensor(self, array: np.ndarray):
        """A torch tensor on this device holding a copy of `array`."""
        t = self.torch.from_numpy(np.ascontiguousarray(array))
        return t.to(self.name) if self.name != "cpu" else t.clone()

    def sync(self) -> None:
        """Wait for queued device work, so a wall-clock interval covers the whole call."""
        if self.name == "cuda":
            self.torch.cuda.synchronize()

    def before(self, impl: str) -> None:
        """Switch global framework state an implementation needs; called outside the timing."""
        if impl in ("torch_cudnn", "torch_nocudnn"):
            self.torch.backends.cudnn.enabled = impl == "torch_cudnn"

    def available(self, impl: str) -> str | None:
        """None when `impl` can run here, else the text its cell shows."""
        if impl in self.skip:
            return "not run"
        if impl.startswith("torch") and self.torch is None:
            return "no torch"
        if impl == "fastconv_cuda":
            return "n/a"
        return None


def cuda_present(torch) -> bool:
    import fastconv as fc

    if fc.cuda_available():
        return True
    return torch is not None and torch.cuda.is_available()


def select(which: str, torch) -> list[Device]:
    """The devices for --device cpu|cuda|all ('all': the CPU and, where there is one, the GPU)."""
    names = ["cpu"] if which in ("cpu", "all") else []
    if which in ("cuda", "all") and cuda_present(torch):
        if torch is None or not torch.cuda.is_available():
            # fastconv sees a GPU but PyTorch does not: every CUDA column would be empty.
            if which == "cuda":
                raise SystemExit("--device cuda: PyTorch with CUDA is needed for the GPU columns")
        else:
            names.append("cuda")
    if which == "cuda" and "cuda" not in names:
        raise SystemExit("--device cuda: no usable GPU here (" + _cuda_reason() + ")")
    return [Device(n, torch) for n in names]


def _cuda_reason() -> str:
    import fastconv as fc

    return fc.cuda_status()


def tf32_mode(torch, devices) -> dict:
    """What precision the GEMMs ran in, as the header reports it."""
    mode = {"fastconv": "off (float32 GEMMs)"}
    if torch is not None and any(d.name == "cuda" for d in devices):
        mode["torch_matmul_allow_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
        mode["torch_cudnn_allow_tf32"] = bool(torch.backends.cudnn.allow_tf32)
    return mode
