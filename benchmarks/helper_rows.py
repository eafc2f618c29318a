"""The GPU's helper-kernel rows (issue 11): each memory-bound kernel around conv2d's GEMMs timed
alone, in GB/s and % of the measured device copy, so that the next GPU run shows how far each is
from the card's bandwidth and a regression shows. The max pool kernels have their own op rows
(maxpool1.fwd/.bwd in op_rows.py, the tutorial's pool shape).

Shapes are the tutorial CNN's conv2 at batch 64 (x 64x32x28x28, 3x3, padding 1: a 58 MB column
matrix) and its bias gradient at batch 256; bytes count every array read or written once, as the
op rows do. fastconv's column calls the private one-kernel hooks of fastconv._cuda (_im2col,
_col2im, _gemm_to_nchw, _nchw_to_gemm) and the public bias_grad; PyTorch's column runs its op
for the same bytes (F.unfold, F.fold, sum over (0, 2, 3), permute + contiguous). The rows exist
only where a CUDA device is benchmarked (run.py adds them then): on the CPU they have no meaning.
"""
from __future__ import annotations

import numpy as np

from op_rows import Row, _Inputs, _quick_n, _tried

# (N, C, H, W) of conv2's input, its 3x3 filter with padding 1, and its K output channels.
CONV2 = (64, 32, 28, 28)
K = 64
BIAS_BATCH = 256
F32 = 4


def _cuda(device):
    from fastconv._native import CUDA

    return CUDA


def _fc(call_of):
    """fastconv's CUDA column: call_of(CUDA, arrays on the device) -> a no-argument callable."""
    def build(device):
        call = call_of(_cuda(device), device)
        _tried(call)
        return call
    return build


def _torch(call_of):
    def build(device):
        return None if device.name != "cuda" else call_of(device)
    return build


def helper_rows(quick: bool) -> list[Row]:
    n, c, h, w = CONV2
    nb = BIAS_BATCH
    if quick:
        n, nb = _quick_n(n), _quick_n(nb)
    rows_, plane = c * 9, h * w
    rng = np.random.default_rng(40)
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    col = rng.standard_normal((rows_, n * plane), dtype=np.float32)
    y = rng.standard_normal((n, K, h, w), dtype=np.float32)
    inp = _Inputs(x=x, col=col, y=y, mask=np.maximum(y, 0), m=y.reshape(K, n * plane),
                  b=rng.standard_normal(K, dtype=np.float32),
                  dyb=rng.standard_normal((nb, K, h, w), dtype=np.float32),
                  col_t=np.ascontiguousarray(col.reshape(rows_, n, plane).transpose(1, 0, 2)))
    geo = ((3, 3), (1, 1), (1, 1), (1, 1))
    shape = f"{n}x{c}x{h}x{w}, 3x3 p1"
    xb, cb, yb = x.nbytes, col.nbytes, y.nbytes

    def im2col(cuda, device):
        d = inp.d(device)
        return lambda: cuda._im2col(d["x"], *geo)

    def col2im(cuda, device):
        d = inp.d(device)
        return lambda: cuda._col2im(d["col"], d["x"], *geo)

    def bias_grad(cuda, device):
        d = inp.d(device)
        return lambda: cuda.bias_grad(d["dyb"])

    def to_nchw(cuda, device):
        d = inp.d(device)
        return lambda: cuda._gemm_to_nchw(d["m"], d["b"], n, True)

    def to_gemm(cuda, device):
        d = inp.d(device)
        return lambda: cuda._nchw_to_gemm(d["y"], None)

    def to_gemm_masked(cuda, device):
        d = inp.d(device)
        return lambda: cuda._nchw_to_gemm(d["y"], d["mask"])

    def t_unfold(device):
        F, t = device.torch.nn.functional, inp.t(device)
        return lambda: F.unfold(t["x"], 3, padding=1)

    def t_fold(device):
        F, t = device.torch.nn.functional, inp.t(device)
        return lambda: F.fold(t["col_t"], (h, w), 3, padding=1)

    def t_sum(device):
        t = inp.t(device)
        return lambda: t["dyb"].sum(dim=(0, 2, 3))

    def t_to_nchw(device):
        t = inp.t(device)
        return lambda: t["m"].view(K, n, plane).permute(1, 0, 2).contiguous()

    def t_to_gemm(device):
        t = inp.t(device)
        return lambda: t["y"].permute(1, 0, 2, 3).contiguous()

    def row(id_, name, work, fc, torch=None):
        builders = {"fastconv_cuda": _fc(fc)}
        if torch is not None:
            builders["torch"] = _torch(torch)
        return Row(f"helper.{id_}", name, "helper", "fwd", "GB/s", work, builders)

    return [
        row("im2col", f"im2col {shape} (GPU kernel)", xb + cb, im2col, t_unfold),
        row("col2im", f"col2im gather {shape} (GPU kernel)", cb + xb, col2im, t_fold),
        row("bias_grad", f"bias gradient {nb}x{K}x{h}x{w} (GPU kernel)",
            nb * K * plane * F32 + K * F32, bias_grad, t_sum),
        row("to_nchw", f"GEMM layout -> NCHW + bias + ReLU {n}x{K}x{h}x{w} (GPU kernel)",
            2 * yb + K * F32, to_nchw, t_to_nchw),
        row("to_gemm", f"NCHW -> GEMM layout {n}x{K}x{h}x{w} (GPU kernel)", 2 * yb, to_gemm,
            t_to_gemm),
        row("to_gemm_masked", f"NCHW -> GEMM layout, ReLU mask {n}x{K}x{h}x{w} (GPU kernel)",
            3 * yb, to_gemm_masked),
    ]
