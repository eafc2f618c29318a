"""benchmarks/run.py --quick runs end to end, with and without PyTorch, and its JSON holds every
row with sane numbers. (CI runs the same smoke run; the full run is BENCHMARKS.md's job.)"""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fastconv

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks" / "run.py"

OP_IDS = ([f"conv{i}.{d}" for i in range(1, 6) for d in ("fwd", "bwd")]
          + ["convpool.fwd", "convpool.bwd"]
          + [f"{p}{i}.{d}" for i in (1, 2) for p in ("maxpool", "avgpool") for d in ("fwd", "bwd")
             + ("bwdflat",) * (p == "maxpool")]
          + [f"sce{i}.{d}" for i in (1, 2) for d in ("fwd", "bwd")]
          + ["dense.fwd", "dense.bwd"])
STEP_IDS = ["step", "inference", "epoch", "images_per_s"]
HAVE_TORCH = importlib.util.find_spec("torch") is not None


def run_quick(tmp_path, *extra, hide_torch=False):
    env = dict(os.environ)
    # The subprocess imports the same fastconv as this test (an in-place build or an install).
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(fastconv.__file__).parents[1]), env.get("PYTHONPATH", "")])
    if hide_torch:
        env["FASTCONV_BENCH_NO_TORCH"] = "1"
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(RUN), "--quick", "--device", "cpu", "--json",
                           str(out), *extra], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


def check_ok(cell):
    assert cell["status"] == "ok", cell
    assert cell["median_s"] > 0 and cell["rate"] > 0 and cell["pct_peak"] > 0
    assert cell["reps"] >= 1 and all(t > 0 for t in cell["times_s"])


def check_common(data, stdout):
    ids = [r["id"] for r in data["rows"]]
    assert ids == OP_IDS + STEP_IDS
    peaks = data["peaks"]
    assert peaks["sgemm_gflops"] > 0 and peaks["numpy_sgemm_gflops"] > 0 and peaks["copy_gbs"] > 0
    h = data["header"]
    assert h["threads"] >= 1 and h["cpu"] and h["fastconv"] == fastconv.__version__
    assert h["tf32"]["fastconv"].startswith("off")
    rows = {r["id"]: r for r in data["rows"]}
    for rid in OP_IDS + ["step", "inference"]:
        row = rows[rid]
        assert row["work"] > 0
        check_ok(row["cells"]["fastconv"])
        assert row["unit"] == ("GB/s" if rid.startswith(("maxpool", "avgpool", "sce"))
                               else "GFLOP/s")
    for i in range(1, 6):
        assert rows[f"conv{i}.fwd"]["scratch_bytes"] > 0
    for rid in OP_IDS:
        ref = rows[rid]["cells"]["numpy"]
        assert ref["status"] in ("ok", "skipped (slow)")
        if ref["status"] == "ok":
            check_ok(ref)
    assert rows["epoch"]["cells"]["fastconv"]["value"] > 0
    assert rows["images_per_s"]["cells"]["fastconv"]["value"] > 0
    over = data["python_overhead"]
    assert over["step_s"] > 0 and over["kernels_only_s"] > 0
    assert "| row |" in stdout and "Python overhead" in stdout
    return rows


def test_quick_without_torch(tmp_path):
    data, stdout = run_quick(tmp_path, hide_torch=True)
    rows = check_common(data, stdout)
    assert data["header"]["torch"] == "not available"
    for row in rows.values():
        assert row["cells"]["torch"]["status"] == "no torch"
        assert row["ratios"]["cpu"] == "n/a"


@pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch is not installed")
def test_quick_with_torch(tmp_path):
    png = tmp_path / "ratios.png"
    data, stdout = run_quick(tmp_path, "--plot", str(png))
    rows = check_common(data, stdout)
    for rid in OP_IDS + ["step", "inference"]:
        check_ok(rows[rid]["cells"]["torch"])
        ratio = rows[rid]["ratios"]["cpu"]
        assert isinstance(ratio, float) and ratio > 0
        # Interleaved: fastconv and PyTorch got the same number of repetitions.
        assert rows[rid]["cells"]["torch"]["reps"] == rows[rid]["cells"]["fastconv"]["reps"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_only_and_memory(tmp_path):
    data, _ = run_quick(tmp_path, "--only", "^sce1", hide_torch=True)
    assert [r["id"] for r in data["rows"]] == ["sce1.fwd", "sce1.bwd"]
    data, stdout = run_quick(tmp_path, "--memory", "6", hide_torch=True)
    mem = data["memory"]
    assert mem["rss_start"] > 0 and mem["rss_end"] > 0 and mem["steps"] == 6
    assert "VmRSS" in stdout
