#!/usr/bin/env python
"""fastconv's benchmarks: each op (forward and backward) and the tutorial CNN's training step,
beside PyTorch (when importable) and the numpy reference, on the CPU and, where there is one, the
GPU. Prints a markdown table; --json writes every number, --plot a PNG of fastconv/PyTorch ratios.

    python benchmarks/run.py --threads 2 --json bench.json --plot benchmarks/ratios.png
    python benchmarks/run.py --quick            # seconds-long smoke run (CI)
    python benchmarks/run.py --memory 200       # RSS over 200 training steps must not grow
    python benchmarks/run.py --device cuda --tf32   # the GPU columns, TF32 on in both frameworks

FASTCONV_BENCH_NO_TORCH=1 hides PyTorch (its columns then read "no torch").
"""
from __future__ import annotations

import argparse
import os
import re
import sys


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="small sizes, few repetitions: a smoke run of a few seconds")
    p.add_argument("--device", choices=("cpu", "cuda", "all"), default="all",
                   help="where to run (all: the CPU, and the GPU where one is usable)")
    p.add_argument("--tf32", action="store_true",
                   help="TF32 for float32 GEMMs/convolutions on the GPU, in fastconv and PyTorch "
                        "alike (default: off in both)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for fastconv, PyTorch and numpy (default: fastconv's)")
    p.add_argument("--repeat", type=int, default=None,
                   help="timed repetitions per cell (default 10; --quick 3)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls first (default 2)")
    p.add_argument("--impls", metavar="LIST", default=None,
                   help="comma-separated columns to run, e.g. 'torch' to time PyTorch in a "
                        "process of its own (fastconv, torch, numpy, fastconv_cuda, torch_cudnn, "
                        "torch_nocudnn; default all)")
    p.add_argument("--only", metavar="PATTERN", default=None,
                   help="rows whose id or name matches this regex (or contains it)")
    p.add_argument("--conv-algorithm", default=None,
                   choices=("auto", "im2col", "winograd", "winograd_f2", "winograd_f4"),
                   help="fastconv's CPU convolution algorithm (fc.set_conv_algorithm; default: "
                        "auto)")
    p.add_argument("--json", metavar="PATH", help="write every number here")
    p.add_argument("--plot", metavar="PATH", help="write a PNG of fastconv/PyTorch ratios here")
    p.add_argument("--memory", metavar="N", type=int, default=None,
                   help="instead of the table: RSS over N training steps (exit 1 if it grows)")
    args = p.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be >= 1")
    if args.repeat is not None and args.repeat < 1:
        p.error("--repeat must be >= 1")
    if args.memory is not None and args.memory < 2:
        p.error("--memory needs at least 2 steps")
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args.threads is not None:
        # numpy's OpenBLAS reads these once, at import: set them before importing it.
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    omp_policy_user = os.environ.get("OMP_WAIT_POLICY")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

    import fastconv as fc  # first: it sets OMP_WAIT_POLICY before any OpenMP runtime loads

    import devices as dev
    import machine
    import report
    import step_rows

    torch = dev.import_torch()
    threads = args.threads or fc.get_num_threads()
    fc.set_num_threads(threads)
    if args.conv_algorithm is not None:
        fc.set_conv_algorithm(args.conv_algorithm)
    if torch is not None:
        torch.set_num_threads(threads)

    if args.memory is not None:
        mem = step_rows.memory_check(args.memory, args.quick)
        print(report.memory_text(mem))
        if args.json:
            report.write_json({"memory": mem}, args.json)
        return 0 if mem["ok"] else 1

    devices = dev.select(args.device, torch)
    if args.impls:
        wanted = {i.strip() for i in args.impls.split(",") if i.strip()}
        unknown = wanted - set(dev.TITLES)
        if unknown:
            raise SystemExit(f"--impls: unknown {sorted(unknown)}; choose from {list(dev.TITLES)}")
        for d in devices:
            d.skip = set(d.impls) - wanted
    script = os.path.relpath(os.path.abspath(__file__))
    dev.set_tf32(args.tf32, torch, devices)
    header = machine.header(torch, devices, threads, omp_policy_user, [script] + argv)
    peaks = machine.peaks(args.quick)
    gpu = next((d for d in devices if d.name == "cuda"), None)
    note = dev.unusable_note(devices)
    if note:
        print(f"[bench] {note}", file=sys.stderr, flush=True)
    elif gpu is not None:
        print("[bench] GPU peaks", file=sys.stderr, flush=True)
        gpu.peaks = peaks["cuda"] = dev.gpu_peaks(gpu, args.quick)
    repeat = args.repeat or (3 if args.quick else 10)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)

    rows = select_rows(args.only, args.quick, with_gpu=gpu is not None)
    results = {"header": header, "peaks": peaks,
               "config": {"quick": args.quick, "repeat": repeat, "warmup": warmup,
                          "only": args.only},
               "rows": []}
    for row in rows:
        print(f"[bench] {row.name}", file=sys.stderr, flush=True)
        results["rows"].append(measure_row(row, devices, warmup, repeat, peaks, args.quick))
    results["rows"] += derived_rows(results["rows"], args.quick)
    cpu = next((d for d in devices if d.name == "cpu"), None)
    if any(r.id == "step" for r in rows) and cpu is not None and "fastconv" not in cpu.skip:
        results["python_overhead"] = step_rows.python_overhead(args.quick, cpu, warmup, repeat)
        results["step_breakdown_s"] = step_rows.breakdown(args.quick, warmup, repeat)

    print(report.markdown(results, note))
    if args.json:
        report.write_json(results, args.json)
    if args.plot and not report.plot(results, args.plot):
        print(f"--plot: nothing written to {args.plot} (no PyTorch ratios, or no matplotlib)",
              file=sys.stderr)
    return 0


def select_rows(pattern, quick, with_gpu=False):
    import helper_rows
    import op_rows
    import step_rows

    # The GPU's helper-kernel rows only where a CUDA device is benchmarked.
    helpers = helper_rows.helper_rows(quick) if with_gpu else []
    graphs = step_rows.gpu_step_rows(quick) if with_gpu else []
    rows = op_rows.all_rows(quick) + helpers + step_rows.rows(quick) + graphs
    if pattern:
        try:
            rx = re.compile(pattern)
            rows = [r for r in rows if rx.search(r.id) or rx.search(r.name)]
        except re.error:
            rows = [r for r in rows if pattern in r.id or pattern in r.name]
        if not rows:
            raise SystemExit(f"--only {pattern!r} matches no row")
    return rows


def measure_row(row, devices, warmup, repeat, peaks, quick) -> dict:
    import timing
    from devices import Unavailable, gpu_peak

    peak = peaks["sgemm_gflops"] * 1e9 if row.unit == "GFLOP/s" else peaks["copy_gbs"] * 1e9
    out = {"id": row.id, "name": row.name, "kind": row.kind, "direction": row.direction,
           "unit": row.unit, "work": row.work, "shape": row.shape,
           "scratch_bytes": row.scratch, "algorithm": row.algorithm, "cells": {}, "ratios": {}}

    def cell(times, device, capped=False):
        med = timing.median(times)
        rate = row.work / med
        # Each device's cells against that device's own measured peaks.
        ref = peak if device.name == "cpu" else gpu_peak(device.peaks or {}, row.unit)
        return {"status": "ok", "device": device.name, "median_s": med, "reps": len(times),
                "times_s": times, "rate": rate / 1e9, "unit": row.unit,
                "pct_peak": 100.0 * rate / ref if ref else None,
                "capped": capped}

    for device in devices:
        fns = {}
        for impl in device.impls:
            why = device.available(impl)
            if why is None and impl == "numpy" and row.reference_skip:
                why = "skipped (slow)"
            fn = None
            if not why:
                try:
                    fn = row.make(impl, device)
                except Unavailable as e:
                    why = str(e)
            if why is None and fn is None:
                why = "n/a"
            if why:
                out["cells"][impl] = {"status": why, "device": device.name}
            elif impl != "numpy":
                fns[impl] = fn
        if fns:
            times = timing.interleaved(fns, device, warmup, repeat)
            for impl, ts in times.items():
                out["cells"][impl] = cell(ts, device)
        if "numpy" in device.impls and out["cells"].get("numpy") is None:
            fn = row.make("numpy", device)
            ts = timing.capped(fn, "numpy", device, repeat, 0.5 if quick else 3.0)
            out["cells"]["numpy"] = cell(ts, device, capped=len(ts) < repeat)
        a, b = dev_pair(device)
        if a in fns and b in fns:
            out["ratios"][device.name] = timing.paired_ratio(times[a], times[b])
        else:
            out["ratios"][device.name] = "n/a"
        del fns
    return out


def dev_pair(device):
    from devices import RATIO_PAIRS

    return RATIO_PAIRS[device.name]


def derived_rows(measured, quick):
    """Seconds per 56,000-image epoch and images per second, from the training step's median."""
    import step_rows

    out = []
    for step_id, suffix, how in (("step", "", "from the step"),
                                 ("step_graph", "_graph", "from the graph-replayed step")):
        step = next((r for r in measured if r["id"] == step_id), None)
        if step is not None:
            out += _from_step(step, step_rows.batches(quick)[0], suffix, how)
    return out


def _from_step(step, n, suffix, how):
    import step_rows

    # Both carry the step's time ratio: the table's ratio column is fastconv time / PyTorch time.
    epoch = {"id": "epoch" + suffix, "kind": "derived",
             "name": f"epoch of {step_rows.EPOCH_IMAGES:,} images (s, {how})",
             "unit": "s", "cells": {}, "ratios": step["ratios"]}
    ips = {"id": "images_per_s" + suffix, "name": f"training images/s ({how})",
           "unit": "images/s", "kind": "derived", "cells": {}, "ratios": step["ratios"]}
    for impl, c in step["cells"].items():
        if c["status"] != "ok":
            epoch["cells"][impl] = ips["cells"][impl] = dict(c)
            continue
        epoch["cells"][impl] = {"status": "ok", "device": c["device"],
                                "value": c["median_s"] * step_rows.EPOCH_IMAGES / n}
        ips["cells"][impl] = {"status": "ok", "device": c["device"], "value": n / c["median_s"]}
    return [epoch, ips]


if __name__ == "__main__":
    sys.exit(main())
