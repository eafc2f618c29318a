"""Output: the markdown table (stdout), the JSON with every number, the PNG of the ratios."""
from __future__ import annotations

import json

from devices import RATIO_PAIRS, TITLES, gpu_peak_line

# Any number read back from a results file may instead be None or a string such as
# "n/a (reason)" (a cell or ratio that could not be measured): the *_text helpers show those as
# they are ("" for None) and format only real numbers.


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _as_is(v) -> str:
    return "" if v is None else str(v)


def duration_text(s) -> str:
    if not is_number(s):
        return _as_is(s)
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def value_text(v) -> str:
    """A derived row's plain number in the row's unit."""
    if not is_number(v):
        return _as_is(v)
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def ratio_text(r) -> str:
    """A ratio column: two decimals for a number."""
    return f"{r:.2f}" if is_number(r) else _as_is(r)


def cell_text(cell: dict) -> str:
    if cell["status"] != "ok":
        return cell["status"]
    if "value" in cell:
        return value_text(cell["value"])
    text = f"{duration_text(cell['median_s'])} · {cell['rate']:.3g} {cell['unit']}"
    if isinstance(cell.get("pct_peak"), (int, float)):
        text += f" · {cell['pct_peak']:.0f}%"
    return text + (f" ({cell['reps']}×)" if cell.get("capped") else "")


def header_lines(h: dict, peaks: dict, overhead: dict | None, note: str | None = None
                 ) -> list[str]:
    """The header; `note` (why a device asked for is not measured) and the GPU's peaks, when
    measured, follow the CPU's peaks."""
    lines = [
        f"- date: {h['date']}; load average (1, 5, 15 min): "
        + ", ".join(f"{x:g}" for x in h["load_average"]),
        f"- command: `{h['command']}`",
        f"- CPU: {h['cpu']}, {h['logical_cores']} logical cores; threads: {h['threads']}",
        f"- BLAS: {h['blas']}; compiler: {h['compiler']}; fastconv's SIMD clones: "
        f"{h.get('cpu_simd', 'x86-64')}",
        f"- fastconv {h['fastconv']}, numpy {h['numpy']}, torch {h['torch']}; CPU conv algorithm: "
        f"{h.get('conv_algorithm', 'im2col')} (each conv row's scratch cell names what ran; conv "
        "GFLOP/s count im2col's FLOPs)",
        f"- OMP_WAIT_POLICY: {h['omp_wait_policy']} ({h['omp_wait_policy_source']}), "
        f"GOMP_SPINCOUNT: {h.get('gomp_spincount', 'unset')}",
        "- TF32: " + "; ".join(f"{k}: {v}" for k, v in h["tf32"].items()),
        f"- devices: {', '.join(h['devices'])}" + (f" ({', '.join(h['gpus'])})" if h["gpus"]
                                                     else "")
        + f"; fastconv CUDA: {h['fastconv_cuda']}",
        f"- peaks: sgemm {peaks['sgemm_n']}³ through fastconv {peaks['sgemm_gflops']:.1f} GFLOP/s "
        f"(numpy matmul {peaks['numpy_sgemm_gflops']:.1f}); numpy copy "
        f"{peaks['copy_gbs']:.1f} GB/s (read + write)",
    ]
    if note:
        lines.append(f"- {note}")
    if "cuda" in peaks:
        lines.append(gpu_peak_line(peaks["cuda"]))
    if overhead:
        lines.append(
            f"- Python overhead of the training step (batch {overhead['batch']}): step "
            f"{duration_text(overhead['step_s'])}, the same kernels called directly "
            f"{duration_text(overhead['kernels_only_s'])}: {duration_text(overhead['overhead_s'])} = "
            f"{overhead['overhead_pct']:.1f}% of the step")
    return lines


def breakdown_text(b: dict) -> str:
    total = sum(b.values())
    return ("Training-step breakdown (the same kernels called directly; median seconds per step, "
            f"sum {duration_text(total)}): " + ", ".join(f"{name} {duration_text(s)} ({100 * s / total:.0f}%)"
                                                 for name, s in b.items()))


def markdown(results: dict, note: str | None = None) -> str:
    devices = results["header"]["devices"]
    impls = [i for d in devices for i in (("fastconv", "torch", "numpy") if d == "cpu" else
                                          ("fastconv_cuda", "torch_cudnn", "torch_nocudnn"))]
    cols = ["row"] + [TITLES[i] for i in impls]
    cols += [f"fastconv/PyTorch {d.upper()}" for d in devices] + ["conv scratch (bytes)"]
    out = header_lines(results["header"], results["peaks"], results.get("python_overhead"), note)
    out += ["", "Cells: median time · rate · % of the measured peak (sgemm for GFLOP/s, copy for "
            "GB/s). Ratios: median of fastconv/PyTorch times measured in alternation (< 1: "
            "fastconv faster).", ""]
    out += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in results["rows"]:
        cells = [row["name"]] + [cell_text(row["cells"][i]) if i in row["cells"] else ""
                                 for i in impls]
        for d in devices:
            cells.append(ratio_text(row["ratios"].get(d)))
        cells.append(f"{row['scratch_bytes']:,}" + (f" ({row['algorithm']})" if row.get("algorithm")
                                                     else "")
                     if row.get("scratch_bytes") is not None else "")
        out.append("| " + " | ".join(cells) + " |")
    if results.get("step_breakdown_s"):
        out += ["", breakdown_text(results["step_breakdown_s"])]
    mem = results.get("memory")
    if mem:
        out += ["", memory_text(mem)]
    return "\n".join(out)


def memory_text(m: dict) -> str:
    mib = 2 ** 20
    return (f"Memory ({m['steps']} training steps, batch {m['batch']}): VmRSS "
            f"{m['rss_start'] / mib:.1f} MiB at the start, {m['rss_after_warmup'] / mib:.1f} MiB "
            f"after {m['warmup_steps']} warm-up steps, {m['rss_end'] / mib:.1f} MiB at the end: "
            f"growth {m['growth_bytes'] / mib:+.2f} MiB -> "
            + ("OK (no growth)" if m["ok"] else "GREW (leak?)"))


def write_json(results: dict, path: str) -> None:
    with open(path, "w") as f:
        json.dump(results, f, indent=1)


def plot(results: dict, path: str) -> bool:
    """Horizontal bars of fastconv/PyTorch time per row (log scale), a line at 1.0. False when
    there is no ratio to draw (no torch) or matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    bars = [(f"{row['name']} [{d}]", row["ratios"][d]) for row in results["rows"]
            for d in RATIO_PAIRS
            if row["kind"] != "derived" and isinstance(row["ratios"].get(d), float)]
    if not bars:
        return False
    names, values = zip(*bars[::-1])
    fig = Figure(figsize=(10, 0.32 * len(bars) + 1.4), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colors = ["tab:green" if v <= 1 else "tab:red" for v in values]
    ax.barh(range(len(values)), values, color=colors)
    ax.set_yticks(range(len(values)), names, fontsize=8)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=1)
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize=7)
    h = results["header"]
    ax.set_xlabel("fastconv time / PyTorch time (median of paired repetitions; < 1: fastconv "
                  "faster)")
    ax.set_title(f"fastconv vs PyTorch, {h['threads']} threads, {h['cpu']}, {h['date']}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return True
