"""The GPU training step's roofline, without a GPU: bytes and FLOPs of every kernel kind that one
training step of the tutorial CNN launches (as csrc/cuda implements it today), and the time the
H200's measured copy bandwidth and sgemm rate allow for them. (Since the branch of issue 11's
helper kernels the conv forward has no bias-fill pass: its GEMM runs with beta = 0 and the one
pass after it adds the bias; the 0.09 ms that pass measured is gone from the step. The conv
backward sums the bias gradient in its dy layout pass, which reads dy anyway: the separate
channel sum's read of dy (and of the ReLU mask) is gone too, leaving its partial sums.)

Bytes are counted as benchmarks/run.py counts GB/s: every array a kernel reads or writes, once.
Peaks and the per-kernel times beside them are the H200 measurements of 2026-11-28 quoted in
issue 11 (a device copy of 231 MB at 3,950 GB/s; sgemm 4096^3 at 49.9 TFLOP/s through fastconv;
Nsight Compute's gpu__time_duration.sum for one batch-256 step). Run:

    python benchmarks/roofline.py [--batch 64 256]

It prints, for each batch, one markdown row per kernel kind, the floor those kinds add up to,
and the time each may take at 70% of the copy bandwidth (issue 11's target for helper kernels).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

COPY_GBPS = 3950.0     # H200, device-to-device copy (read + write), measured 2026-11-28
SGEMM_TFLOPS = 49.9    # H200, sgemm 4096^3 through fastconv, float32 without TF32
TARGET_FRACTION = 0.7  # issue 11: helper kernels at >= 70% of the copy bandwidth

# Issue 11's Nsight Compute split of one batch-256 step on the H200 (ms, all calls of a kind).
MEASURED_B256_MS = {
    "im2col": 1.57, "bias gradient (folded: partial sums)": 0.82, "col2im (gather)": 0.47,
    "cuBLAS GEMMs": 0.94, "max pool backward": 0.20,
    "output to NCHW + bias + ReLU (gemm_to_nchw)": 0.16, "dy to GEMM layout": 0.16,
}

F32, I64 = 4, 8
IMAGE = (1, 28, 28)
CONV = [(32, 3, 1), (64, 3, 1)]  # (out channels, filter, padding), stride 1: the tutorial's convs
DENSE = [128, 10]


@dataclass
class Kernel:
    name: str
    passes: int   # layer passes that launch it (a pass may run in several groups of samples)
    bytes: float  # over all passes of one step
    flops: float = 0.0

    def floor_us(self) -> float:
        """The time the measured peaks allow: the slower of moving the bytes and doing the FLOPs."""
        return max(self.bytes / (COPY_GBPS * 1e3), self.flops / (SGEMM_TFLOPS * 1e6))


def step_kernels(n: int) -> list[Kernel]:
    """Every kernel kind of one training step at batch n, summed over its passes."""
    c, h, w = IMAGE
    im2col = col2im = bias_grad = store = dy_layout = 0.0
    gemm_flops = gemm_bytes = 0.0
    gemm_calls = params = 0
    for i, (k, f, p) in enumerate(CONV):
        oh, ow = h + 2 * p - f + 1, w + 2 * p - f + 1
        x, col, y = n * c * h * w, n * c * f * f * oh * ow, n * k * oh * ow
        wts, first = k * c * f * f, i == 0
        im2col += 2 * (x + col) * F32           # the forward's columns, again for dW
        store += 2 * y * F32 + k * F32            # GEMM layout -> NCHW, + bias, ReLU
        dy_layout += 2 * y * F32                  # NCHW dy -> GEMM layout
        # Folded into dy's layout pass: only each chunk's partial sum (double), read back once.
        bias_grad += 2 * k * -(-(n * oh * ow) // 4096) * 8 + k * F32
        params += wts + k
        passes = 2 if first else 3                # the input needs no dx
        gemm_flops += passes * 2.0 * k * (c * f * f) * n * oh * ow
        gemm_bytes += (col + y + wts) * F32 * passes
        gemm_calls += passes
        if not first:
            col2im += (col + x) * F32
        c, h, w = k, oh, ow
    pooled = n * c * (h // 2) * (w // 2)
    pool_fwd = (n * c * h * w) * F32 + pooled * (F32 + I64)
    pool_bwd = pooled * (F32 + I64) + (n * c * h * w) * F32
    dropout = 2 * 2 * pooled * F32                # forward and backward, read + write each
    features = pooled // n
    for out in DENSE:
        gemm_flops += 3 * 2.0 * n * features * out
        gemm_bytes += 3 * (n * features + features * out + n * out) * F32
        gemm_calls += 3
        params += features * out + out
        features = out
    sgd = 5 * params * F32                        # read param, grad, velocity; write param, velocity
    return [
        Kernel("im2col", 2 * len(CONV), im2col),
        Kernel("col2im (gather)", 1, col2im),
        Kernel("bias gradient (folded: partial sums)", len(CONV), bias_grad),
        Kernel("output to NCHW + bias + ReLU (gemm_to_nchw)", len(CONV), store),
        Kernel("dy to GEMM layout", len(CONV), dy_layout),
        Kernel("max pool forward", 1, pool_fwd),
        Kernel("max pool backward", 1, pool_bwd),
        Kernel("dropout forward + backward", 2, dropout),
        Kernel("SGD update (all parameters)", 1, sgd),
        Kernel("cuBLAS GEMMs", gemm_calls, gemm_bytes, gemm_flops),
    ]


def table(n: int) -> str:
    rows = step_kernels(n)
    lines = [f"Batch {n}:", "",
             "| kernel kind | passes | MB | GFLOP | floor (µs) | at 70% of copy (µs) | measured "
             "2026-11-28, kernels before issue 11, batch 256 (ms) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for k in rows:
        at_target = k.bytes / (COPY_GBPS * TARGET_FRACTION * 1e3)
        measured = MEASURED_B256_MS.get(k.name) if n == 256 else None
        lines.append(f"| {k.name} | {k.passes} | {k.bytes / 1e6:.1f} | "
                     f"{k.flops / 1e9:.2f} | {k.floor_us():.1f} | "
                     f"{'' if k.flops else f'{at_target:.1f}'} | "
                     f"{'' if measured is None else f'{measured:.2f}'} |")
    total = sum(k.floor_us() for k in rows)
    lines += ["", f"Floor of the step as implemented (sum of the rows): {total / 1e3:.3f} ms."]
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, nargs="+", default=[64, 256], metavar="N")
    args = p.parse_args(argv)
    if min(args.batch) < 1:
        p.error(f"--batch must be positive; got {min(args.batch)}")
    print(f"Peaks: copy {COPY_GBPS:,.0f} GB/s, sgemm {SGEMM_TFLOPS} TFLOP/s (H200, 2026-11-28).\n")
    print("\n\n".join(table(n) for n in args.batch))


if __name__ == "__main__":
    main()
