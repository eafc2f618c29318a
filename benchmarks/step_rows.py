"""End-to-end rows: one training step of the tutorial's CNN (forward, backward, SGD with Nesterov
momentum) and inference on a large batch, in fastconv and in a PyTorch twin; and the same step as
bare fastconv.ops calls, to estimate what the Python layer (layers, autograd, optimiser) costs.
On the GPU, fastconv's model is built under fc.set_cuda_active(True) and fed DeviceArrays."""
from __future__ import annotations

import warnings

import numpy as np

from devices import Unavailable
from op_rows import Row

STEP_BATCH, INFER_BATCH, EPOCH_IMAGES = 64, 1000, 56000
LARGE_STEP_BATCH = 256  # the GPU's second step size (issue 11)
LR, MOMENTUM = 0.01, 0.9


def batches(quick: bool) -> tuple[int, int]:
    return (8, 50) if quick else (STEP_BATCH, INFER_BATCH)


def _data(n, seed):
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n).astype(np.int64)


def step_flops(n: int) -> tuple[float, float]:
    """(training step, forward only) FLOPs of the tutorial CNN at batch n. The first conv's
    backward computes dW only (its input needs no gradient, in either framework); element-wise
    layers are left out (negligible)."""
    hw = 28 * 28
    c1 = 2.0 * n * 32 * 1 * 9 * hw
    c2 = 2.0 * n * 64 * 32 * 9 * hw
    d1 = 2.0 * n * 12544 * 128
    d2 = 2.0 * n * 128 * 10
    fwd = c1 + c2 + d1 + d2
    return fwd + c1 + 2 * (c2 + d1 + d2), fwd


def fastconv_model(x):
    import fastconv as fc
    from fastconv.train import tutorial_cnn

    model = tutorial_cnn()
    model(x[:1])  # parameters are created on the first call
    return model, fc.Sgd(lr=LR, momentum=MOMENTUM)


def fastconv_step(model, opt, x, t):
    import fastconv as fc

    def step():
        with model.train():
            loss = fc.softmax_cross_entropy(model(x), t)
        loss.grad().update(opt)
    return step


def _on_host(value) -> bool:
    return isinstance(getattr(value, "_value", value), np.ndarray)


# What a Python layer that cannot (yet) run on the GPU raises; its cell then says why.
_NOT_YET = (NotImplementedError, TypeError, RuntimeError, ValueError, AttributeError)


def _cuda_active(fn):
    """`fn` run with fc.set_cuda_active(True), the previous setting restored afterwards, so the
    CPU rows and the step breakdown never see the GPU setting (costs microseconds per call)."""
    import fastconv as fc

    def run():
        was = fc.is_cuda_active()
        fc.set_cuda_active(True)
        try:
            return fn()
        finally:
            fc.set_cuda_active(was)
    return run


def fastconv_cuda_model(x, device):
    """fastconv's model with its parameters on the GPU and `x` as a DeviceArray, built under
    fc.set_cuda_active(True) (restored afterwards). Raises Unavailable, with the reason, where the
    Python layer cannot do that (yet): an error, a warning that it stays on the CPU, or parameters
    that are numpy arrays after the first call."""
    import fastconv as fc

    was_active = fc.is_cuda_active()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fc.set_cuda_active(True)
        if not fc.is_cuda_active():
            said = "; ".join(str(w.message) for w in caught) or "is_cuda_active() is False"
            raise Unavailable(f"n/a (set_cuda_active(True): {_short(said)})")
        xd = device.array(x)
        model, opt = fastconv_model(xd)
        host = [i for i, p in enumerate(model.parameters()) if _on_host(p)]
        if host:
            raise Unavailable(f"n/a (parameters {host} stayed on the host)")
        return model, opt, xd
    except _NOT_YET as e:
        raise Unavailable(f"n/a ({type(e).__name__}: {_short(e)})") from e
    finally:
        fc.set_cuda_active(was_active)


def _short(e, n=120) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= n else text[:n - 1] + "…"


def _tried(fn):
    """`fn` under set_cuda_active(True), run once now, so that a failure becomes an
    'n/a (reason)' cell instead of ending the run in the middle of the timing."""
    fn = _cuda_active(fn)
    try:
        fn()
    except _NOT_YET as e:
        raise Unavailable(f"n/a ({type(e).__name__}: {_short(e)})") from e
    return fn


def torch_model(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2, 2), nn.Dropout(0.5),
        nn.Flatten(), nn.Linear(12544, 128), nn.ReLU(), nn.Linear(128, 10))


def _torch_step(device, x, t):
    torch = device.torch
    model = torch_model(torch).to(device.name).train()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, tt = device.tensor(x), device.tensor(t)

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(xt), tt).backward()
        opt.step()
    return step


def _torch_graph_step(device, x, t):
    """PyTorch's strongest form of the step: captured once with torch.cuda.graph (after a warm-up
    on a side stream, as its documentation asks) and replayed."""
    if device.name == "cpu":
        raise Unavailable("n/a (CUDA graphs need a GPU)")
    torch = device.torch
    step = _torch_step(device, x, t)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()  # zero_grad(set_to_none) included: the gradients live in the graph's pool
    return graph.replay


def _torch_infer(device, x):
    torch = device.torch
    model = torch_model(torch).to(device.name).eval()
    xt = device.tensor(x)

    def infer():
        with torch.no_grad():
            return model(xt)
    return infer


def rows(quick: bool) -> list[Row]:
    n, m = batches(quick)
    x, t = _data(n, 40)
    xi, _ = _data(m, 41)
    train, infer = step_flops(n)[0], step_flops(m)[1]

    def fc_step(device):
        model, opt = fastconv_model(x)
        return fastconv_step(model, opt, x, t)

    def fc_infer(device):
        model, _ = fastconv_model(xi)
        model.set_models(inference=True)
        return lambda: model(xi)

    def fc_cuda_infer(device):
        model, _, xd = fastconv_cuda_model(xi, device)
        model.set_models(inference=True)
        return _tried(lambda: model(xd))

    return [
        Row("step", f"training step, batch {n} (fwd+bwd+SGD)", "step", "step", "GFLOP/s", train,
            {"fastconv": fc_step, "fastconv_cuda": _fc_cuda_step(x, t, graphed=False),
             "torch": lambda d: _torch_step(d, x, t)}),
        Row("inference", f"inference, batch {m}", "step", "fwd", "GFLOP/s", infer,
            {"fastconv": fc_infer, "fastconv_cuda": fc_cuda_infer,
             "torch": lambda d: _torch_infer(d, xi)}),
    ]


def gpu_step_rows(quick: bool) -> list[Row]:
    """GPU only: the training step replayed as a captured CUDA graph, fastconv's
    (fastconv.graph_step) against PyTorch's (torch.cuda.graph), where each framework is at its
    fastest; and both forms at batch 256, issue 11's second step target."""
    small, large = batches(quick)[0], (16 if quick else LARGE_STEP_BATCH)
    rows = []
    for n, suffix in ((small, ""), (large, "_large")):
        x, t = _data(n, 40)
        work = step_flops(n)[0]
        if suffix:
            rows.append(Row("step" + suffix, f"training step, batch {n} (fwd+bwd+SGD)", "step",
                            "step", "GFLOP/s", work,
                            {"fastconv_cuda": _fc_cuda_step(x, t, graphed=False),
                             "torch": lambda d, x=x, t=t: _torch_step(d, x, t)}))
        rows.append(Row(f"step{suffix}_graph",
                        f"training step, batch {n}, replayed as a captured CUDA graph", "step",
                        "step", "GFLOP/s", work,
                        {"fastconv_cuda": _fc_cuda_step(x, t, graphed=True),
                         "torch": lambda d, x=x, t=t: _torch_graph_step(d, x, t)}))
    return rows


def _fc_cuda_step(x, t, graphed: bool):
    """The builder of fastconv's GPU step on (x, t): op by op, or through fastconv.graph_step."""
    def build(device):
        import fastconv as fc

        model, opt, xd = fastconv_cuda_model(x, device)
        td = device.array(t)
        if not graphed:
            return _tried(fastconv_step(model, opt, xd, td))

        def one(xb, tb):
            with model.train():
                loss = fc.softmax_cross_entropy(model(xb), tb)
            loss.grad().update(opt)
            return loss

        graphed_step = fc.graph_step(one)
        return _tried(lambda: graphed_step(xd, td))
    return build


def raw_step(model, x, t, clock=None):
    """The kernel calls one training step of `model` makes, straight through fastconv.ops on
    preallocated inputs and parameters (copies, with their own velocities): no layers, no graph,
    no optimiser objects. With a `clock` dict, each kernel's seconds are appended under its name
    (the step breakdown)."""
    from fastconv import ops

    params = [np.array(v.as_ndarray()) for v in model.parameters()]
    vel = [np.zeros_like(p) for p in params]
    w1, b1, w2, b2, w3, b3, w4, b4 = params
    n = x.shape[0]
    k = _timed(clock)

    def step():
        # Conv2d + Relu, and Conv2d + Relu + MaxPool2d(2, 2), run fused, as Sequential runs them
        # (with uint8 window indices, as the autograd keeps them on the CPU).
        a1 = k("conv1+relu fwd", ops.conv2d_forward, x, w1, b1, 1, 1, relu=True)
        p, idx = k("conv2+relu+maxpool fwd", ops.conv2d_relu_max_pool2d_forward, a1, w2, b2, 1, 1,
                   window_indices=True)
        seed = int(np.random.randint(0, 2**62, dtype=np.int64))
        f = k("dropout fwd", ops.dropout_forward, p, 0.5, seed).reshape(n, -1)
        a3 = k("relu fwd", ops.relu_forward, k("dense1 fwd", ops.dense_forward, f, w3, b3))
        z = k("dense2 fwd", ops.dense_forward, a3, w4, b4)
        k("softmax_ce fwd", ops.softmax_cross_entropy_forward, z, t)
        dz = k("softmax_ce bwd", ops.softmax_cross_entropy_backward, z, t, 1.0)
        da3, dw4, db4 = k("dense2 bwd", ops.dense_backward, a3, w4, dz)
        dh = k("relu bwd", ops.relu_backward, da3, a3)
        df, dw3, db3 = k("dense1 bwd", ops.dense_backward, f, w3, dh)
        dp = k("dropout bwd", ops.dropout_backward, df.reshape(p.shape), 0.5, seed)
        da1, dw2, db2 = k("conv2+relu+maxpool bwd", ops.conv2d_relu_max_pool2d_backward, a1,
                          w2, dp, p, idx, 1, 1, window_indices=True)
        _, dw1, db1 = k("conv1+relu bwd (dW)", ops.conv2d_backward, x, w1, da1, 1, 1,
                        need_dx=False, relu_y=a1)
        grads = (dw1, db1, dw2, db2, dw3, db3, dw4, db4)
        # One multi-tensor update for all eight, as Grads.update makes it (Optimizer.step_many).
        k("sgd", ops.sgd_update_multi, params, [g.reshape(p.shape) for p, g in zip(params, grads)],
          vel, lr=LR, momentum=MOMENTUM, nesterov=True, weight_decays=[0.0] * len(params))
    return step


def _timed(clock):
    if clock is None:
        return lambda name, fn, *a, **kw: fn(*a, **kw)
    import time

    def call(name, fn, *a, **kw):
        start = time.perf_counter()
        out = fn(*a, **kw)
        clock.setdefault(name, []).append(time.perf_counter() - start)
        return out
    return call


def breakdown(quick: bool, warmup: int, repeat: int) -> dict:
    """Seconds per step spent in each kernel of the bare step (kernels of one name summed within
    a step, then the median over steps), largest first."""
    n, _ = batches(quick)
    x, t = _data(n, 44)
    model, _ = fastconv_model(x)
    clock = {}
    step = raw_step(model, x, t, clock)
    for _ in range(warmup):
        step()
    clock.clear()
    for _ in range(repeat):
        step()
    per_step = {}
    for name, ts in clock.items():
        c = len(ts) // repeat  # calls of this kernel per step
        per_step[name] = [sum(ts[i * c:(i + 1) * c]) for i in range(repeat)]
    import timing

    med = {name: timing.median(v) for name, v in per_step.items()}
    return dict(sorted(med.items(), key=lambda kv: -kv[1]))


def python_overhead(quick: bool, device, warmup: int, repeat: int) -> dict:
    """Step time minus the same kernels called directly, interleaved; as a share of the step."""
    import timing

    n, _ = batches(quick)
    x, t = _data(n, 42)
    model, opt = fastconv_model(x)
    times = timing.interleaved({"layers": fastconv_step(model, opt, x, t),
                                "kernels": raw_step(model, x, t)}, device, warmup, repeat)
    step, raw = timing.median(times["layers"]), timing.median(times["kernels"])
    return {"batch": n, "step_s": step, "kernels_only_s": raw,
            "overhead_s": step - raw, "overhead_pct": 100.0 * (step - raw) / step,
            "paired_ratio": timing.paired_ratio(times["layers"], times["kernels"])}


def memory_check(steps: int, quick: bool) -> dict:
    """RSS before the first step, after a warm-up, and after `steps` steps; a leak (per-step
    allocations that are never freed) shows as growth between the last two."""
    from machine import rss_bytes

    n, _ = batches(quick)
    x, t = _data(n, 43)
    model, opt = fastconv_model(x)
    step = fastconv_step(model, opt, x, t)
    warm = max(1, min(10, steps // 10))
    start = rss_bytes()
    for _ in range(warm):
        step()
    after_warmup = rss_bytes()
    for _ in range(steps - warm):
        step()
    end = rss_bytes()
    growth = end - after_warmup
    # Allowance for allocator noise (arena trimming, page rounding): 4 MiB.
    return {"steps": steps, "warmup_steps": warm, "batch": n, "rss_start": start,
            "rss_after_warmup": after_warmup, "rss_end": end, "growth_bytes": growth,
            "ok": growth <= 4 * 2**20}
