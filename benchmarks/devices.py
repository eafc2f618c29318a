"""Where a benchmark runs: how to put its inputs there, how to wait for it, which implementations
have a column there, and the GPU's own peaks and precision settings. Everything GPU-specific lives
in this file."""
from __future__ import annotations

import os

import numpy as np

# Column keys, in table order.
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
# fastconv / PyTorch ratios, pair by pair.
RATIO_PAIRS = {"cpu": ("fastconv", "torch"), "cuda": ("fastconv_cuda", "torch_cudnn")}


class Unavailable(Exception):
    """Raised by a row's builder when its implementation cannot run here; the message is the
    text its cell shows, e.g. 'n/a (the layers keep parameters on the host)'."""


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


def fastconv_cuda_reason() -> str | None:
    """None when fastconv's CUDA kernels can run here, else why not."""
    import fastconv as fc

    return None if fc.cuda_available() else fc.cuda_status()


def torch_cuda_reason(torch) -> str | None:
    """None when PyTorch can run on a GPU here, else why not."""
    if torch is None:
        return "no torch"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA device"
    return None


class Device:
    """One place to run: 'cpu' or 'cuda'. A 'cuda' Device also exists where no GPU is usable
    (--device cuda on such a machine): its columns then say why, instead of the run failing."""

    def __init__(self, name: str, torch):
        self.name = name
        self.torch = torch
        self.impls = CPU_IMPLS if name == "cpu" else CUDA_IMPLS
        self.skip = set()  # columns left out with --impls
        self.peaks = None  # the GPU's measured peaks (gpu_peaks), for the % of peak
        self._why = {}
        if name == "cuda":
            self._why["fastconv_cuda"] = fastconv_cuda_reason()
            why_torch = torch_cuda_reason(torch)
            self._why["torch_cudnn"] = self._why["torch_nocudnn"] = why_torch

    @property
    def usable(self) -> bool:
        """Whether any column of this device can run (always, for the CPU)."""
        return self.name == "cpu" or any(w is None for w in self._why.values())

    def tensor(self, array: np.ndarray):
        """A torch tensor on this device holding a copy of `array`."""
        t = self.torch.from_numpy(np.ascontiguousarray(array))
        return t.to(self.name) if self.name != "cpu" else t.clone()

    def array(self, array: np.ndarray):
        """fastconv's input on this device: the numpy array itself, or a DeviceArray copy."""
        if self.name == "cpu":
            return array
        import fastconv as fc

        return fc.to_device(array)

    def sync(self) -> None:
        """Wait for queued device work, so a wall-clock interval covers the whole call. Both
        calls are cudaDeviceSynchronize: they wait for every stream, fastconv's and PyTorch's."""
        if self.name != "cuda":
            return
        from fastconv import _native

        if self._why.get("fastconv_cuda") is None:
            _native.CUDA.synchronize()
        elif self._why.get("torch_cudnn") is None:
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
        # The reason is printed once, above the table (unusable_note / the header).
        return "unavailable" if self._why.get(impl) is not None else None

    def columns(self) -> list[tuple[str, str, str | None]]:
        """(key, title, None or why the column is empty) for each of this device's columns."""
        return [(impl, TITLES[impl], self._why.get(impl) or self.available(impl))
                for impl in self.impls]


def select(which: str, torch) -> list[Device]:
    """The devices for --device cpu|cuda|all ('all': the CPU and, where there is one, the GPU).
    --device cuda always gives a 'cuda' Device: without a GPU its cells say why."""
    devices = [Device("cpu", torch)] if which in ("cpu", "all") else []
    if which in ("cuda", "all"):
        gpu = Device("cuda", torch)
        if which == "cuda" or gpu.usable:
            devices.append(gpu)
    return devices


def unusable_note(devices) -> str | None:
    """A line for the top of the output where --device cuda found no GPU at all."""
    gpu = next((d for d in devices if d.name == "cuda"), None)
    if gpu is None or gpu.usable:
        return None
    return ("no GPU is usable here, so the CUDA columns are empty: fastconv: "
            f"{gpu._why['fastconv_cuda']}; PyTorch: {gpu._why['torch_cudnn']}")


# ---- precision ---------------------------------------------------------------------------------

def _torch_new_api(torch) -> bool:
    # PyTorch >= 2.9 has fp32_precision; mixing it with the legacy allow_tf32 flags raises.
    return hasattr(torch.backends.cuda.matmul, "fp32_precision")


def set_tf32(on: bool, torch, devices) -> None:
    """TF32 on or off for float32 GEMMs and convolutions in both frameworks. Off is set
    explicitly: PyTorch's default lets cuDNN convolutions use TF32, which would compare its
    TF32 with fastconv's full float32."""
    import fastconv as fc

    fc.set_tf32(bool(on))
    if torch is None or not any(d.name == "cuda" for d in devices):
        return
    if _torch_new_api(torch):
        mode = "tf32" if on else "ieee"
        torch.backends.cuda.matmul.fp32_precision = mode
        torch.backends.cudnn.conv.fp32_precision = mode
    else:
        torch.backends.cuda.matmul.allow_tf32 = bool(on)
        torch.backends.cudnn.allow_tf32 = bool(on)


def tf32_mode(torch, devices) -> dict:
    """What precision the GEMMs ran in, as the header reports it."""
    import fastconv as fc

    on = fc.tf32()
    mode = {"fastconv": "on (TF32 tensor cores on the GPU)" if on else "off (float32 GEMMs)"}
    if torch is not None and any(d.name == "cuda" for d in devices):
        if _torch_new_api(torch):
            mode["torch matmul"] = str(torch.backends.cuda.matmul.fp32_precision)
            mode["torch cudnn conv"] = str(torch.backends.cudnn.conv.fp32_precision)
        else:
            mode["torch matmul allow_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
            mode["torch cudnn allow_tf32"] = bool(torch.backends.cudnn.allow_tf32)
    return mode


# ---- the GPU's peaks ---------------------------------------------------------------------------

def gpu_peaks(device: Device, quick: bool) -> dict:
    """sgemm n^3 through fastconv.ops.dense_forward on DeviceArrays (the GFLOP/s reference of the
    GPU cells) and torch.mm beside it; a device-to-device copy's bandwidth (read + write; the
    GB/s reference). Measured in the precision mode in force (TF32 or not)."""
    import timing

    n = 1024 if quick else 4096
    reps = 3 if quick else 10
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    flops = 2.0 * n ** 3
    out = {"sgemm_n": n, "sgemm_gflops": None, "torch_sgemm_gflops": None, "copy_gbs": None,
           "copy_bytes": None, "copy_source": None}
    fns = {}
    if device.available("fastconv_cuda") is None:
        from fastconv import ops

        ad, bd = device.array(a), device.array(b)
        fns["fastconv"] = lambda: ops.dense_forward(ad, bd)
    torch_ok = device.available("torch_cudnn") is None
    if torch_ok:
        at, bt = device.tensor(a), device.tensor(b)
        fns["torch"] = lambda: at.mm(bt)
    if fns:
        t = timing.interleaved(fns, device, 2, reps)
        if "fastconv" in t:
            out["sgemm_gflops"] = flops / timing.median(t["fastconv"]) / 1e9
        if "torch" in t:
            out["torch_sgemm_gflops"] = flops / timing.median(t["torch"]) / 1e9
    words = (16 if quick else 512) * 2 ** 20 // 4
    if torch_ok:
        src = device.torch.ones(words, dtype=device.torch.float32, device="cuda")
        dst = device.torch.empty_like(src)
        copy, out["copy_source"] = (lambda: dst.copy_(src)), "torch copy_"
    elif "fastconv" in fns:
        # No PyTorch: ReLU reads and writes each element once, as a copy does.
        from fastconv import ops

        src = device.array(np.ones(words, np.float32))
        copy, out["copy_source"] = (lambda: ops.relu_forward(src)), "fastconv relu_forward"
    else:
        return out
    c = timing.interleaved({"copy": copy}, device, 2, reps * 2)
    out["copy_bytes"] = 2 * words * 4
    out["copy_gbs"] = out["copy_bytes"] / timing.median(c["copy"]) / 1e9
    return out


def gpu_peak(peaks: dict, unit: str) -> float | None:
    """The rate (per second, not giga) a GPU cell's % of peak refers to: fastconv's sgemm (as on
    the CPU), torch.mm's where fastconv cannot run; the copy's bandwidth for GB/s rows."""
    if unit == "GFLOP/s":
        v = peaks.get("sgemm_gflops") or peaks.get("torch_sgemm_gflops")
    else:
        v = peaks.get("copy_gbs")
    return None if not v else v * 1e9


def gpu_peak_line(peaks: dict) -> str:
    def f(v, unit):  # None, or an "n/a (why)" string, where it could not be measured
        return f"{v:,.0f} {unit}" if isinstance(v, (int, float)) else str(v or "n/a")
    return (f"- GPU peaks: sgemm {peaks['sgemm_n']}³ through fastconv "
            f"{f(peaks['sgemm_gflops'], 'GFLOP/s')} (torch.mm "
            f"{f(peaks['torch_sgemm_gflops'], 'GFLOP/s')}); device copy "
            f"{f(peaks['copy_gbs'], 'GB/s')} (read + write, {peaks['copy_source']})")
