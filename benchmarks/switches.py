"""Choices in fastconv's GPU path that only a GPU can judge, each timed both ways
alternately in one process (medians, and the median of the paired ratios; ratio < 1: the default
is faster):

- epilogues: the bias, the ReLU and the bias gradient fused into cuBLASLt GEMMs
  (fastconv.set_gemm_epilogues(True), the default) against fastconv's own passes (False); with
  how many GEMMs cuBLASLt took or refused a call (a refused one runs the own passes anyway);
- conv_groups: the conv's im2col groups sized to half the L2 cache (the default) against the
  fixed 64 MiB budget they had before;
- conv_kernel: the conv forward as im2col + cuBLAS (the choice while autotuning is off) against
  the implicit-GEMM kernel (csrc/cuda/conv_implicit.cu), through _cuda._set_conv_forward_kernel;
  conv_kernel_tf32 the same with TF32 on for both (cuBLAS's tensor cores against the kernel's
  mma.sync path);
- conv_backward_kernel (and _tf32): the conv backward as im2col + cuBLAS + col2im against the
  implicit-GEMM dgrad and wgrad kernels (conv_implicit_backward.h), through
  _cuda._set_conv_backward_kernel;
- autotune: the training step with conv autotuning off (the default) against on
  (fastconv.set_conv_autotune), and then the choices autotuning made, shape by shape, with each
  candidate's median time (the table that says where the implicit kernels pay on this card).

    python benchmarks/switches.py [--quick] [--json FILE]

Needs a usable fastconv GPU (or the CUDA emulator build, where the timings mean nothing but every
work runs: tests/test_switches_cuda.py). benchmarks/gpu_check.sh runs it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timing  # noqa: E402  (benchmarks/ is not a package)
from step_rows import fastconv_cuda_model, fastconv_step  # noqa: E402

# switch: (title, the default's name, the other's name)
SWITCHES = {
    "epilogues": ("GEMM epilogues fused by cuBLASLt against fastconv's own passes",
                  "fused", "own"),
    "conv_groups": ("conv groups sized to half the L2 cache against a fixed 64 MiB",
                    "half L2", "64 MiB"),
    "conv_kernel": ("the conv forward: im2col + cuBLAS against the implicit-GEMM kernel",
                    "im2col", "implicit"),
    "conv_kernel_tf32": ("the same with TF32 on for both", "im2col", "implicit"),
    "conv_backward_kernel": ("the conv backward: im2col + cuBLAS + col2im against the "
                             "implicit-GEMM kernels", "im2col", "implicit"),
    "conv_backward_kernel_tf32": ("the same with TF32 on for both", "im2col", "implicit"),
    "autotune": ("the training step with conv autotuning off against on", "off", "on"),
}


class _Device:
    """The timing's device: the switch set before each run (every other setting at its default,
    TF32 as the caller had it), and a full wait around it."""

    def __init__(self, fc, switch, tf32):
        self.fc, self.switch, self.tf32 = fc, switch, tf32

    def before(self, name: str) -> None:
        fc, cuda = self.fc, self.fc._native.CUDA
        _, default, _ = SWITCHES[self.switch]
        fc.set_gemm_epilogues(True)
        cuda._set_conv_column_budget(0)
        cuda._set_conv_forward_kernel("auto")
        cuda._set_conv_backward_kernel("auto")
        fc.set_conv_autotune(False)
        fc.set_tf32(self.tf32 or self.switch.endswith("_tf32"))
        if self.switch == "epilogues":
            fc.set_gemm_epilogues(name == default)
        elif self.switch.startswith("conv_kernel"):
            cuda._set_conv_forward_kernel(name)
        elif self.switch.startswith("conv_backward_kernel"):
            cuda._set_conv_backward_kernel(name)
        elif self.switch == "autotune":
            fc.set_conv_autotune(name == "on")
        else:
            cuda._set_conv_column_budget(0 if name == default else 64 << 20)

    def sync(self) -> None:
        self.fc.synchronize()

    def array(self, a):
        return self.fc.to_device(a)


def _conv(fc, n, c, k, hw, rng, backward=False):
    x = fc.to_device(rng.standard_normal((n, c, hw, hw), dtype=np.float32))
    w = fc.to_device(rng.standard_normal((k, c, 3, 3), dtype=np.float32) * 0.1)
    b = fc.to_device(rng.standard_normal(k, dtype=np.float32))
    if not backward:
        return lambda: fc.ops.conv2d_forward(x, w, b, 1, 1, 1, relu=True)
    y = fc.ops.conv2d_forward(x, w, b, 1, 1, 1, relu=True)
    dy = fc.to_device(rng.standard_normal((n, k, hw, hw), dtype=np.float32))
    return lambda: fc.ops.conv2d_backward(x, w, dy, 1, 1, 1, True, True, y)


def _dense(fc, n, i, o, rng, backward):
    x = fc.to_device(rng.standard_normal((n, i), dtype=np.float32))
    w = fc.to_device(rng.standard_normal((i, o), dtype=np.float32) * 0.01)
    b = fc.to_device(rng.standard_normal(o, dtype=np.float32))
    dy = fc.to_device(rng.standard_normal((n, o), dtype=np.float32))
    if backward:
        return lambda: fc.ops.dense_backward(x, w, dy)
    return lambda: fc.ops.dense_forward(x, w, b)


def _step(fc, device, n, rng):
    x = rng.standard_normal((n, 1, 28, 28), dtype=np.float32)
    t = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    model, opt, xd = fastconv_cuda_model(x, device)
    step = fastconv_step(model, opt, xd, device.array(t))

    def run():
        was = fc.is_cuda_active()
        fc.set_cuda_active(True)
        try:
            step()
        finally:
            fc.set_cuda_active(was)
    return run


def works(fc, device, switch: str, quick: bool):
    """(name, fn) for each work the switch changes: the tutorial CNN's convs (and, for the
    epilogues, its dense layers) at batch 64 and 256, a larger conv, and the whole op-by-op
    training step (the conv kernels: the conv forwards or backwards alone; autotuning: the step
    alone)."""
    rng = np.random.default_rng(0)
    out = []
    for n in (4,) if quick else (64, 256):
        if switch == "autotune":
            out.append((f"training step, batch {n}", _step(fc, device, n, rng)))
            continue
        if switch.startswith("conv_backward_kernel"):
            out += [(f"conv 1->32 3x3 28x28 backward, batch {n}",
                     _conv(fc, n, 1, 32, 28, rng, True)),
                    (f"conv 32->64 3x3 28x28 backward, batch {n}",
                     _conv(fc, n, 32, 64, 28, rng, True))]
            continue
        out += [(f"conv 1->32 3x3 28x28 + bias + ReLU, batch {n}", _conv(fc, n, 1, 32, 28, rng)),
                (f"conv 32->64 3x3 28x28 + bias + ReLU, batch {n}",
                 _conv(fc, n, 32, 64, 28, rng))]
        if switch.startswith("conv_kernel"):  # the forwards alone
            continue
        if switch == "conv_groups":
            out.append((f"conv 32->64 backward, batch {n}", _conv(fc, n, 32, 64, 28, rng, True)))
        else:
            out += [(f"dense 12544->128 forward, batch {n}",
                     _dense(fc, n, 12544, 128, rng, False)),
                    (f"dense 12544->128 backward, batch {n}",
                     _dense(fc, n, 12544, 128, rng, True))]
        out.append((f"training step, batch {n}", _step(fc, device, n, rng)))
    if not quick and switch.startswith("conv_backward_kernel"):
        out.append(("conv 64->128 3x3 56x56 backward, batch 32",
                    _conv(fc, 32, 64, 128, 56, rng, True)))
    elif not quick and switch != "autotune":
        out.append(("conv 64->128 3x3 56x56 + bias + ReLU, batch 32",
                    _conv(fc, 32, 64, 128, 56, rng)))
    return out


def measure(fc, switch, name, fn, device, warmup, repeat) -> dict:
    _, default, other = SWITCHES[switch]
    stats = fc._native.CUDA._gemm_epilogue_stats
    before = stats()
    device.before(default)
    fn()
    device.sync()
    after = stats()
    times = timing.interleaved({default: fn, other: fn}, device, warmup, repeat)
    return {"switch": switch, "work": name,
            "default_ms": 1e3 * timing.median(times[default]),
            "other_ms": 1e3 * timing.median(times[other]),
            "ratio": timing.paired_ratio(times[default], times[other]),
            "gemms_fused": after["fused"] - before["fused"],
            "gemms_refused": after["refused"] - before["refused"]}


def table(rows) -> str:
    """One markdown table a switch, in the order the rows come."""
    out = []
    for switch, (title, default, other) in SWITCHES.items():
        mine = [r for r in rows if r["switch"] == switch]
        if not mine:
            continue
        extra = " cuBLASLt took, refused a call |" if switch == "epilogues" else ""
        out += [f"{title}:", "", f"| work | {default} | {other} | {default} / {other} |{extra}",
                "| --- | --- | --- | --- |" + (" --- |" if extra else "")]
        for r in mine:
            cells = (f"| {r['work']} | {r['default_ms']:.3f} ms | {r['other_ms']:.3f} ms | "
                     f"{r['ratio']:.2f} |")
            if extra:
                cells += f" {r['gemms_fused']}, {r['gemms_refused']} |"
            out.append(cells)
        out.append("")
    return "\n".join(out).rstrip()


def choices_table(rows) -> str:
    """What autotuning chose (fastconv._cuda._conv_autotune_table()), one line a shape and pass,
    with each candidate's median time."""
    names = ["im2col", "implicit", "implicit_dx", "implicit_both"]
    out = ["conv autotuning's choices (median ms of each candidate; implicit: the forward's "
           "kernel or the backward's wgrad, implicit_dx: the backward's dgrad):", "",
           "| pass | x | w | stride, padding | TF32 | " + " | ".join(names) + " | chosen |",
           "| --- | --- | --- | --- | --- |" + " --- |" * (len(names) + 1)]
    for r in rows:
        ms = [f"{r['median_ms'][n]:.3f}" if n in r["median_ms"] else "-" for n in names]
        no_dx = r["pass"] == "backward" and not r["need_dx"]
        out.append(f"| {r['pass']}{' (no dx)' if no_dx else ''} | {r['x']} | {r['w']} | "
                   f"{r['stride']}, {r['padding']} | {'on' if r['tf32'] else 'off'} | "
                   + " | ".join(ms) + f" | {r['chosen']} |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, few repetitions (a smoke run)")
    p.add_argument("--json", type=Path, help="write the rows here too")
    args = p.parse_args(argv)
    import fastconv as fc

    if not fc.cuda_available():
        print(f"switches: no usable GPU ({fc.cuda_status()})", file=sys.stderr)
        return 2
    warmup, repeat = (1, 2) if args.quick else (5, 30)
    rows, tf32 = [], fc.tf32()
    fc._native.CUDA._clear_conv_autotune()
    try:
        for switch in SWITCHES:
            device = _Device(fc, switch, tf32)
            rows += [measure(fc, switch, name, fn, device, warmup, repeat)
                     for name, fn in works(fc, device, switch, args.quick)]
    finally:
        fc.set_gemm_epilogues(True)
        fc._native.CUDA._set_conv_column_budget(0)
        fc._native.CUDA._set_conv_forward_kernel("auto")
        fc._native.CUDA._set_conv_backward_kernel("auto")
        fc.set_conv_autotune(False)
        fc.set_tf32(tf32)
    choices = fc._native.CUDA._conv_autotune_table()
    print(f"fastconv {fc.__version__}, {fc.cuda_status()}: medians of {repeat} alternating "
          "rounds\n")
    print(table(rows))
    print()
    print(choices_table(choices))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "autotune": choices}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
