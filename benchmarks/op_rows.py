"""The op rows: each op's shapes from the issue, its work (FLOPs or bytes moved), and how every
implementation runs it. A row's `make(impl, device)` returns a no-argument callable, or None
where that implementation has no such op. fastconv's CUDA column calls the same fastconv.ops
function as its CPU column, on DeviceArray copies of the same inputs (the ops dispatch on where
the array lives)."""
from __future__ import annotations

import numpy as np

# (N, Cin, H, W, Cout, k, stride, pad). The work of a conv row is always counted as im2col's
# 2*N*Cout*Cin*k*k*OH*OW FLOPs, so a Winograd row's GFLOP/s are "effective" (im2col-equivalent).
CONV_SHAPES = [
    (64, 1, 28, 28, 32, 3, 1, 1),
    (64, 32, 28, 28, 64, 3, 1, 1),
    (32, 64, 56, 56, 128, 3, 1, 1),
    (16, 128, 28, 28, 256, 3, 2, 1),
    (8, 3, 224, 224, 64, 7, 2, 3),
]
# (N, C, H, W, k, stride, pad)
POOL_SHAPES = [(64, 64, 28, 28, 2, 2, 0), (32, 128, 56, 56, 3, 2, 1)]
SCE_SHAPES = [(64, 10), (4096, 1000)]
DENSE_SHAPE = (64, 12544, 128)

# The numpy reference is skipped where one call would take many seconds (im2col in numpy).
REFERENCE_MAX_FLOPS = 4e9


def _out(h, k, s, p):
    return (h + 2 * p - k) // s + 1


def _quick_n(n):
    return max(1, n // 16)


def _quick_hw(h):
    return h // 2 if h >= 56 else h


class Row:
    def __init__(self, id, name, kind, direction, unit, work, builders, scratch=None,
                 shape=None, algorithm=None):
        self.id, self.name, self.kind, self.direction = id, name, kind, direction
        self.unit = unit            # "GFLOP/s" or "GB/s"
        self.work = work            # FLOPs or bytes per call
        self.scratch = scratch      # conv: bytes of scratch one call uses
        self.algorithm = algorithm  # conv: what fastconv's CPU column runs (im2col, winograd_f4)
        self.shape = shape
        self._builders = builders   # {impl family: fn(device) -> callable}
        self.reference_skip = (unit == "GFLOP/s" and work > REFERENCE_MAX_FLOPS
                               and "numpy" in builders)

    def make(self, impl, device):
        family = "torch" if impl.startswith("torch") else impl
        build = self._builders.get(family)
        return None if build is None else build(device)


class _Inputs:
    """Random inputs made once per op and shared by its forward and backward rows."""

    def __init__(self, **arrays):
        self.np = arrays
        self._torch = {}
        self._fc = {}

    def t(self, device):
        if device.name not in self._torch:
            self._torch[device.name] = {k: device.tensor(v) for k, v in self.np.items()}
        return self._torch[device.name]

    def d(self, device):
        """fastconv's inputs on `device`: the numpy arrays, or DeviceArray copies (made once)."""
        if device.name not in self._fc:
            self._fc[device.name] = {k: device.array(v) for k, v in self.np.items()}
        return self._fc[device.name]


def _tried(call):
    """One call of a GPU op before its timing: an op that raises gets an 'error (...)' cell (the
    GPU check counts it as a failure) instead of ending the whole run."""
    from devices import Unavailable

    try:
        call()
    except Exception as e:  # noqa: BLE001 -- any failure becomes the cell's text
        text = " ".join(str(e).split())[:120]
        raise Unavailable(f"error ({type(e).__name__}: {text})") from e


def conv_rows(quick: bool) -> list[Row]:
    rows = []
    for i, (n, c, h, w, k, f, s, p) in enumerate(CONV_SHAPES, 1):
        if quick:
            n, h, w = _quick_n(n), _quick_hw(h), _quick_hw(w)
        oh, ow = _out(h, f, s, p), _out(w, f, s, p)
        rng = np.random.default_rng(i)
        inp = _Inputs(x=rng.standard_normal((n, c, h, w), dtype=np.float32),
                      w=rng.standard_normal((k, c, f, f), dtype=np.float32) * 0.1,
                      b=rng.standard_normal(k, dtype=np.float32),
                      dy=rng.standard_normal((n, k, oh, ow), dtype=np.float32))
        from fastconv import ops
        from fastconv._native import C
        scratch = ops.conv2d_scratch_bytes(inp.np["x"], inp.np["w"], s, p)
        algorithm = C._conv2d_algorithm(inp.np["x"], inp.np["w"], (s, s), (p, p), (1, 1))
        flops = 2.0 * n * k * c * f * f * oh * ow
        name = f"conv2d {n}x{c}x{h}x{w} -> {k}, {f}x{f} s{s} p{p}"
        rows.append(Row(f"conv{i}.fwd", name + " fwd", "conv", "fwd", "GFLOP/s", flops,
                        _conv_fwd(inp, s, p), scratch, (n, c, h, w, k, f, s, p), algorithm))
        rows.append(Row(f"conv{i}.bwd", name + " bwd (dX+dW+db)", "conv", "bwd", "GFLOP/s",
                        2 * flops, _conv_bwd(inp, s, p, k), scratch, (n, c, h, w, k, f, s, p),
                        algorithm))
    return rows


# The tutorial CNN's conv2 + ReLU + 2x2 max pool, which Sequential runs as one fused op.
CONV_POOL_SHAPE = (64, 32, 28, 28, 64, 3, 1, 1)


def conv_pool_rows(quick: bool) -> list[Row]:
    """fastconv's conv2d_relu_max_pool2d (CPU only: no CUDA column) against PyTorch's
    conv2d + relu + max_pool2d with indices, and autograd's backward through those three. Work:
    the convolution's im2col FLOPs, as the conv rows count them."""
    n, c, h, w, k, f, s, p = CONV_POOL_SHAPE
    if quick:
        n = _quick_n(n)
    oh, ow = _out(h, f, s, p), _out(w, f, s, p)
    rng = np.random.default_rng(40)
    from fastconv import ops
    from fastconv._native import C
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    wt = rng.standard_normal((k, c, f, f), dtype=np.float32) * 0.1
    b = rng.standard_normal(k, dtype=np.float32)
    y, idx = ops.conv2d_relu_max_pool2d_forward(x, wt, b, s, p)
    inp = _Inputs(x=x, w=wt, b=b, y=y, idx=idx, dy=rng.standard_normal(y.shape, dtype=np.float32))
    scratch = ops.conv2d_scratch_bytes(x, wt, s, p) + n * k * oh * ow * 4
    algorithm = C._conv2d_algorithm(x, wt, (s, s), (p, p), (1, 1))
    flops = 2.0 * n * k * c * f * f * oh * ow
    name = f"conv2d+relu+max_pool2d {n}x{c}x{h}x{w} -> {k}, {f}x{f} s{s} p{p}, pool 2x2"
    fwd = _np_impls("conv2d_relu_max_pool2d_forward", inp, ("x", "w", "b"), s, p)
    bwd = _np_impls("conv2d_relu_max_pool2d_backward", inp, ("x", "w", "dy", "y", "idx"), s, p)
    del fwd["fastconv_cuda"], bwd["fastconv_cuda"]

    def torch_fwd(device):
        F, t = device.torch.nn.functional, inp.t(device)
        return lambda: F.max_pool2d(F.relu(F.conv2d(t["x"], t["w"], t["b"], s, p)), 2, 2,
                                    return_indices=True)

    def torch_bwd(device):
        # Autograd's backward through max_pool2d, relu and conv2d (dX, dW, db), on a graph
        # built once and kept.
        torch, F, t = device.torch, device.torch.nn.functional, inp.t(device)
        leaves = [t[name].detach().requires_grad_() for name in ("x", "w", "b")]
        out, _ = F.max_pool2d(F.relu(F.conv2d(*leaves, stride=s, padding=p)), 2, 2,
                              return_indices=True)
        return lambda: torch.autograd.grad(out, leaves, t["dy"], retain_graph=True)
    fwd["torch"], bwd["torch"] = torch_fwd, torch_bwd
    shape = (n, c, h, w, k, f, s, p)
    return [Row("convpool.fwd", name + " fwd", "conv", "fwd", "GFLOP/s", flops, fwd, scratch,
                shape, algorithm),
            Row("convpool.bwd", name + " bwd (dX+dW+db)", "conv", "bwd", "GFLOP/s", 2 * flops,
                bwd, scratch, shape, algorithm)]


def _np_impls(fn_name, inp, names, *consts):
    """fastconv (CPU), fastconv CUDA and the numpy reference: fastconv.ops.<fn_name> (or
    reference.<fn_name>) on the inputs `names` of `inp`, then the constant arguments."""
    from fastconv import ops, reference

    def of(module, where):
        fn = getattr(module, fn_name)

        def build(device):
            arrays = inp.np if where == "host" else inp.d(device)
            args = [arrays[k] for k in names] + list(consts)
            call = lambda: fn(*args)  # noqa: E731
            if where == "device":
                _tried(call)
            return call
        return build
    return {"fastconv": of(ops, "host"), "fastconv_cuda": of(ops, "device"),
            "numpy": of(reference, "host")}


def _conv_fwd(inp, s, p):
    impls = _np_impls("conv2d_forward", inp, ("x", "w", "b"), s, p)

    def torch_fwd(device):
        F, t = device.torch.nn.functional, inp.t(device)
        return lambda: F.conv2d(t["x"], t["w"], t["b"], s, p)
    impls["torch"] = torch_fwd
    return impls


def _conv_bwd(inp, s, p, k):
    impls = _np_impls("conv2d_backward", inp, ("x", "w", "dy"), s, p)

    def torch_bwd(device):
        # The kernel autograd runs for a conv, without building a graph: dX, dW and db.
        aten, t = device.torch.ops.aten, inp.t(device)
        return lambda: aten.convolution_backward(t["dy"], t["x"], t["w"], [k], [s, s], [p, p],
                                                 [1, 1], False, [0, 0], 1, [True, True, True])
    impls["torch"] = torch_bwd
    return impls


def pool_rows(quick: bool) -> list[Row]:
    rows = []
    for i, (n, c, h, w, f, s, p) in enumerate(POOL_SHAPES, 1):
        if quick:
            n, h, w = _quick_n(n), _quick_hw(h), _quick_hw(w)
        oh, ow = _out(h, f, s, p), _out(w, f, s, p)
        rng = np.random.default_rng(10 + i)
        x = rng.standard_normal((n, c, h, w), dtype=np.float32)
        dy = rng.standard_normal((n, c, oh, ow), dtype=np.float32)
        from fastconv import ops
        _, idx = ops.max_pool2d_forward(x, f, s, p)
        _, code = ops.max_pool2d_forward(x, f, s, p, window_indices=True)
        inp = _Inputs(x=x, dy=dy, idx=idx)
        xb, yb = x.nbytes, dy.nbytes
        geo = f"{n}x{c}x{h}x{w}, {f}x{f} s{s} p{p}"
        # Bytes: every input read once and every output written once (max pool: + int64 indices;
        # the .bwd row: + the uint8 window codes fastconv's CPU column reads).
        rows += [
            Row(f"maxpool{i}.fwd", f"max_pool2d {geo} fwd", "pool", "fwd", "GB/s",
                xb + yb + idx.nbytes, _maxpool_fwd(inp, f, s, p)),
            Row(f"maxpool{i}.bwd", f"max_pool2d {geo} bwd (fastconv CPU: uint8 window indices)",
                "pool", "bwd", "GB/s", yb + code.nbytes + xb, _maxpool_bwd(inp, f, s, p, code)),
            Row(f"maxpool{i}.bwdflat", f"max_pool2d {geo} bwd, int64 indices", "pool", "bwd",
                "GB/s", yb + idx.nbytes + xb, _maxpool_bwd(inp, f, s, p)),
            Row(f"avgpool{i}.fwd", f"avg_pool2d {geo} fwd", "pool", "fwd", "GB/s", xb + yb,
                _avgpool_fwd(inp, f, s, p)),
            Row(f"avgpool{i}.bwd", f"avg_pool2d {geo} bwd", "pool", "bwd", "GB/s", yb + xb,
                _avgpool_bwd(inp, f, s, p)),
        ]
    return rows


def _maxpool_fwd(inp, f, s, p):
    impls = _np_impls("max_pool2d_forward", inp, ("x",), f, s, p)

    def torch_fwd(device):
        F, t = device.torch.nn.functional, inp.t(device)
        return lambda: F.max_pool2d(t["x"], f, s, p, return_indices=True)
    impls["torch"] = torch_fwd
    return impls


def _maxpool_bwd(inp, f, s, p, code=None):
    # The CPU forward's indices serve the device too: both kernels pick the same element. With
    # `code`, fastconv's CPU column reads uint8 window codes instead (window_indices=True), as
    # its autograd and layers do; the GPU column keeps int64 (the CUDA side has no window form).
    impls = _np_impls("max_pool2d_backward", inp, ("x", "dy", "idx"), f, s, p)
    if code is not None:
        from fastconv import ops
        x, dy = inp.np["x"], inp.np["dy"]
        impls["fastconv"] = lambda device: lambda: ops.max_pool2d_backward(
            x, dy, code, f, s, p, window_indices=True)

    def torch_bwd(device):
        aten, t = device.torch.ops.aten, inp.t(device)
        return lambda: aten.max_pool2d_with_indices_backward(
            t["dy"], t["x"], [f, f], [s, s], [p, p], [1, 1], False, t["idx"])
    impls["torch"] = torch_bwd
    return impls


def _avgpool_fwd(inp, f, s, p):
    impls = _np_impls("average_pool2d_forward", inp, ("x",), f, s, p)

    def torch_fwd(device):
        F, t = device.torch.nn.functional, inp.t(device)
        return lambda: F.avg_pool2d(t["x"], f, s, p, count_include_pad=True)
    impls["torch"] = torch_fwd
    return impls


def _avgpool_bwd(inp, f, s, p):
    impls = _np_impls("average_pool2d_backward", inp, ("x", "dy"), f, s, p)

    def torch_bwd(device):
        aten, t = device.torch.ops.aten, inp.t(device)
        return lambda: aten.avg_pool2d_backward(t["dy"], t["x"], [f, f], [s, s], [p, p], False,
                                                True, None)
    impls["torch"] = torch_bwd
    return impls


def sce_rows(quick: bool) -> list[Row]:
    rows = []
    for i, (n, c) in enumerate(SCE_SHAPES, 1):
        if quick:
            n = max(8, n // 16)
        rng = np.random.default_rng(20 + i)
        z = rng.standard_normal((n, c), dtype=np.float32) * 3
        t = rng.integers(0, c, n).astype(np.int64)
        inp = _Inputs(z=z, t=t)
        name = f"softmax_cross_entropy {n}x{c} labels"
        rows += [
            Row(f"sce{i}.fwd", name + " fwd", "loss", "fwd", "GB/s", z.nbytes + t.nbytes,
                _sce_fwd(inp)),
            Row(f"sce{i}.bwd", name + " bwd", "loss", "bwd", "GB/s", 2 * z.nbytes + t.nbytes,
                _sce_bwd(inp)),
        ]
    return rows


def _sce_fwd(inp):
    impls = _np_impls("softmax_cross_entropy_forward", inp, ("z", "t"))

    def torch_fwd(device):
        F, t = device.torch.nn.functional, inp.t(device)
        return lambda: F.cross_entropy(t["z"], t["t"])
    impls["torch"] = torch_fwd
    return impls


def _sce_bwd(inp):
    impls = _np_impls("softmax_cross_entropy_backward", inp, ("z", "t"))

    def torch_bwd(device):
        # What autograd runs for cross_entropy's backward: nll_loss's, then log_softmax's (the
        # forward's log-softmax is saved, as autograd would have it).
        torch, t = device.torch, inp.t(device)
        aten = torch.ops.aten
        ls = torch.log_softmax(t["z"], 1)
        one = torch.ones((), dtype=ls.dtype, device=ls.device)
        total = torch.tensor(float(ls.shape[0]), dtype=ls.dtype, device=ls.device)

        def run():
            g = aten.nll_loss_backward(one, ls, t["t"], None, 1, -100, total)
            return aten._log_softmax_backward_data(g, ls, 1, ls.dtype)
        return run
    impls["torch"] = torch_bwd
    return impls


def dense_rows(quick: bool) -> list[Row]:
    n, fin, fout = DENSE_SHAPE
    if quick:
        n = _quick_n(n)
    rng = np.random.default_rng(30)
    w = rng.standard_normal((fin, fout), dtype=np.float32) * 0.01
    inp = _Inputs(x=rng.standard_normal((n, fin), dtype=np.float32), w=w,
                  wt=np.ascontiguousarray(w.T),  # PyTorch's Linear keeps (out, in)
                  b=rng.standard_normal(fout, dtype=np.float32),
                  dy=rng.standard_normal((n, fout), dtype=np.float32))
    flops = 2.0 * n * fin * fout
    name = f"dense {n}x{fin} -> {fout}"
    fwd = _np_impls("dense_forward", inp, ("x", "w", "b"))
    bwd = _np_impls("dense_backward", inp, ("x", "w", "dy"))

    def torch_fwd(device):
        F, t = device.torch.nn.functional, inp.t(device)
        return lambda: F.linear(t["x"], t["wt"], t["b"])

    def torch_bwd(device):
        t = inp.t(device)
        return lambda: (t["dy"].mm(t["wt"]), t["dy"].t().mm(t["x"]), t["dy"].sum(0))
    fwd["torch"], bwd["torch"] = torch_fwd, torch_bwd
    return [Row("dense.fwd", name + " fwd", "dense", "fwd", "GFLOP/s", flops, fwd),
            Row("dense.bwd", name + " bwd (dX+dW+db)", "dense", "bwd", "GFLOP/s", 2 * flops, bwd)]


def all_rows(quick: bool) -> list[Row]:
    return (conv_rows(quick) + conv_pool_rows(quick) + pool_rows(quick) + sce_rows(quick)
            + dense_rows(quick))
