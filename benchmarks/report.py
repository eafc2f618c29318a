"""Output: the markdown table (stdout), the JSON with every number, the PNG of the ratios."""
from __future__ import annotations

import json

from devices import RATIO_PAIRS, TITLES


def _time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def cell_text(cell: dict) -> str:
    if cell["status"] != "ok":
        return cell["status"]
    if "value" in cell:  # derived rows: a plain number in the row's unit
        v = cell["value"]
        if not isinstance(v, (int, float)):
            return str(v)
        return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"
    text = f"{_time(cell['median_s'])} · {cell['rate']:.3g} {cell['unit']}"
    if isinstance(cell.get("pct_peak"), (int, float)):
        text += f" · {cell['pct_peak']:.0f}%"
    return text + (f" ({cell['reps']}×)" if cell.get("capped") else "")


def header_lines(h: dict, peaks: dict, overhead: dict | None) -> list[str]:
    lines = [
        f"- date: {h['date']}; load average (1, 5, 15 min): "
        + ", ".join(f"{x:g}" for x in h["load_average"]),
        f"- command: `{h['command']}`",
        f"- CPU: {h['cpu']}, {h['logical_cores']} logical cores; threads: {h['threads']}",
        f"- BLAS: {h['blas']}; compiler: {h['compiler']}",
        f"- fastconv {h['fastconv']}, numpy {h['numpy']}, torch {h['torch']}",
        f"- OMP_WAIT_POLICY: {h['omp_wait_policy']} ({h['omp_wait_policy_source']})",
        "- TF32: " + "; ".join(f"{k}: {v}" for k, v in h["tf32"].items()),
        f"- devices: {', '.join(h['devices'])}" + (f" ({', '.join(h['gpus'])})" if h["gpus"]
                                                     else "")
        + f"; fastconv CUDA: {h['fastconv_cuda']}",
        f"- peaks: sgemm {peaks['sgemm_n']}³ through fastconv {peaks['sgemm_gflops']:.1f} GFLOP/s "
        f"(numpy matmul {peaks['numpy_sgemm_gflops']:.1f}); numpy copy "
        f"{peaks['copy_gbs']:.1f} GB/s (read + write)",
    ]
    if overhead:
        lines.append(
            f"- Python overhead of the training step (batch {overhead['batch']}): step "
            f"{_time(overhead['step_s'])}, the same kernels called directly "
            f"{_time(overhead['kernels_only_s'])}: {_time(overhead['overhead_s'])} = "
            f"{overhead['overhead_pct']:.1f}% of the step")
    return lines


def breakdown_text(b: dict) -> str:
    total = sum(b.values())
    return ("Training-step breakdown (the same kernels called directly; median seconds per step, "
            f"sum {_time(total)}): " + ", ".join(f"{name} {_time(s)} ({100 * s / total:.0f}%)"
                                                 for name, s in b.items()))


def markdown(results: dict) -> str:
    devices = results["header"]["devices"]
    impls = [i for d in devices for i in (("fastconv", "torch", "numpy") if d == "cpu" else
                                          ("fastconv_cuda", "torch_cudnn", "torch_nocudnn"))]
    cols = ["row"] + [TITLES[i] for i in impls]
    cols += [f"fastconv/PyTorch {d.upper()}" for d in devices] + ["conv scratch (bytes)"]
    out = header_lines(results["header"], results["peaks"], results.get("python_overhead"))
    out += ["", "Cells: median time · rate · % of the measured peak (sgemm for GFLOP/s, copy for "
            "GB/s). Ratios: median of fastconv/PyTorch times measured in alternation (< 1: "
            "fastconv faster).", ""]
    out += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in results["rows"]:
        cells = [row["name"]] + [cell_text(row["cells"][i]) if i in row["cells"] else ""
                                 for i in impls]
        for d in devices:
            r = row["ratios"].get(d)
            cells.append(f"{r:.2f}" if isinstance(r, float) else (r or ""))
        cells.append(f"{row['scratch_bytes']:,}" if row.get("scratch_bytes") is not None else "")
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
