"""The GPU check (benchmarks/gpu_check.sh) and the benchmark's GPU plumbing, checked where no GPU
is: the script's plan, its argument errors, and the CUDA columns saying why they are empty. A
stand-in 'GPU' device whose arrays stay numpy runs fastconv's CUDA-column builders through the
CPU kernels, so their argument plumbing is exercised on every CI run."""
import importlib
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import fastconv as fc

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
PHASES = ["1 preflight", "2 venv", "3 build", "4 info", "5 tests", "6 bench", "7 summary"]
no_gpu = pytest.mark.skipif(fc.cuda_available(), reason="checks the behaviour without a GPU")


def bash(*args, script=SCRIPT):
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True,
                          timeout=30)


def test_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], timeout=30).returncode == 0


def test_dry_run_prints_the_plan():
    proc = bash("--dry-run")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for phase in PHASES:
        assert phase in out, phase
    assert "--system-site-packages" in out and "--no-build-isolation" in out
    assert "FASTCONV_CUDA=ON" in out and "pytest" in out
    assert "benchmarks/run.py --device" in out and "--tf32" in out


def test_dry_run_options_and_missing_wheels(tmp_path):
    # A copy of the script in a tree without wheels/: the plan says so instead of failing.
    (tmp_path / "benchmarks").mkdir()
    copy = tmp_path / "benchmarks" / "gpu_check.sh"
    shutil.copy(SCRIPT, copy)
    proc = bash("--dry-run", "--cuda", "auto", "--quick", "--budget", "300", script=copy)
    assert proc.returncode == 0, proc.stderr
    assert "wheels/:    MISSING" in proc.stdout
    assert "FASTCONV_CUDA=AUTO" in proc.stdout and "--quick" in proc.stdout
    assert "budget 300 s" in proc.stdout


def test_bad_arguments_fail_fast():
    proc = bash("--frobnicate")
    assert proc.returncode == 2 and "unknown argument '--frobnicate'" in proc.stderr
    proc = bash("--cuda", "maybe", "--dry-run")
    assert proc.returncode == 2 and "--cuda must be on, auto or off" in proc.stderr


# ---- the benchmark's device plumbing ----------------------------------------------------------

@pytest.fixture(scope="module")
def bench():
    """The benchmark modules, imported as run.py imports them (benchmarks/ on the path)."""
    path = str(ROOT / "benchmarks")
    sys.path.insert(0, path)
    try:
        mods = {name: importlib.import_module(name)
                for name in ("devices", "timing", "op_rows", "step_rows", "run", "report")}
    finally:
        sys.path.remove(path)
    return mods


@no_gpu
def test_device_cuda_without_gpu_says_why(bench):
    dev = bench["devices"]
    torch = dev.import_torch()
    devices = dev.select("cuda", torch)  # no SystemExit: a 'cuda' device whose columns say why
    assert [d.name for d in devices] == ["cuda"]
    gpu = devices[0]
    assert not gpu.usable
    cols = gpu.columns()
    assert [c[0] for c in cols] == ["fastconv_cuda", "torch_cudnn", "torch_nocudnn"]
    assert [c[1] for c in cols] == ["fastconv CUDA", "PyTorch CUDA cuDNN",
                                    "PyTorch CUDA no cuDNN"]
    assert cols[0][2] == fc.cuda_status()
    assert all(why for _, _, why in cols)
    assert all(gpu.available(i) in ("unavailable", "no torch") for i in gpu.impls)
    note = dev.unusable_note(devices)
    assert note and fc.cuda_status() in note
    # 'all' on a machine without a GPU: the CPU alone.
    assert [d.name for d in dev.select("all", torch)] == ["cpu"]


def test_tf32_flag_reaches_fastconv(bench):
    dev = bench["devices"]
    cpu = dev.select("cpu", None)
    try:
        dev.set_tf32(True, None, cpu)
        assert fc.tf32() and dev.tf32_mode(None, cpu)["fastconv"].startswith("on")
    finally:
        dev.set_tf32(False, None, cpu)
    assert not fc.tf32() and dev.tf32_mode(None, cpu)["fastconv"].startswith("off")


@pytest.fixture
def fake_gpu(bench):
    """A 'cuda' device whose fastconv column runs (its arrays stay numpy, so the CPU kernels
    serve) and whose PyTorch columns are absent: the CUDA-column builders without a GPU."""
    dev = bench["devices"]

    class FakeGpu(dev.Device):
        def __init__(self):
            super().__init__("cpu", None)
            self.name, self.impls = "cuda", dev.CUDA_IMPLS
            self._why = {"fastconv_cuda": None, "torch_cudnn": "no torch",
                         "torch_nocudnn": "no torch"}

        def array(self, array):
            return array

        def sync(self):
            pass
    return FakeGpu()


def test_cuda_columns_plumbing(bench, fake_gpu):
    run, op_rows, dev = bench["run"], bench["op_rows"], bench["devices"]
    fake_gpu.peaks = {"sgemm_gflops": 100.0, "torch_sgemm_gflops": None, "copy_gbs": 10.0}
    rows = [r for r in op_rows.all_rows(quick=True)
            if r.id in ("conv1.fwd", "conv1.bwd", "maxpool1.bwd", "sce1.bwd", "dense.bwd")]
    cpu_peaks = {"sgemm_gflops": 100.0, "copy_gbs": 10.0}
    for row in rows:
        out = run.measure_row(row, [fake_gpu], 0, 1, cpu_peaks, True)
        c = out["cells"]["fastconv_cuda"]
        assert c["status"] == "ok" and c["device"] == "cuda", (row.id, c)
        ref = 100e9 if row.unit == "GFLOP/s" else 10e9
        assert c["pct_peak"] == pytest.approx(100 * row.work / c["median_s"] / ref)
        assert out["cells"]["torch_cudnn"]["status"] == "no torch"
        assert out["ratios"]["cuda"] == "n/a"
    assert dev.gpu_peak({"sgemm_gflops": None, "torch_sgemm_gflops": 5.0}, "GFLOP/s") == 5e9


@no_gpu
def test_gpu_step_row_says_why_instead_of_crashing(bench, fake_gpu):
    run, step_rows = bench["run"], bench["step_rows"]
    step = next(r for r in step_rows.rows(quick=True) if r.id == "step")
    out = run.measure_row(step, [fake_gpu], 0, 1, {"sgemm_gflops": 1.0, "copy_gbs": 1.0}, True)
    cell = out["cells"]["fastconv_cuda"]
    assert cell["status"].startswith("n/a (") and "set_cuda_active" in cell["status"], cell
    assert not fc.is_cuda_active()
    epoch = run.derived_rows([out], True)[0]
    assert epoch["cells"]["fastconv_cuda"]["status"] == cell["status"]


def test_gpu_peaks_and_line(bench, fake_gpu):
    dev = bench["devices"]
    peaks = dev.gpu_peaks(fake_gpu, quick=True)
    assert peaks["sgemm_n"] == 1024 and peaks["sgemm_gflops"] > 0
    assert peaks["torch_sgemm_gflops"] is None  # no torch on the stand-in
    assert peaks["copy_gbs"] > 0 and peaks["copy_source"] == "fastconv relu_forward"
    line = dev.gpu_peak_line(peaks)
    assert line.startswith("- GPU peaks: sgemm 1024³ through fastconv") and "torch.mm n/a" in line
    np.testing.assert_equal(fake_gpu.array(np.arange(3)), np.arange(3))


def test_gpu_op_that_raises_gets_an_error_cell(bench, fake_gpu):
    run, op_rows = bench["run"], bench["op_rows"]
    fake_gpu.array = lambda a: a.tolist()  # not an array fastconv.ops accepts: the op raises
    row = next(r for r in op_rows.all_rows(quick=True) if r.id == "dense.fwd")
    out = run.measure_row(row, [fake_gpu], 0, 1, {"sgemm_gflops": 1.0, "copy_gbs": 1.0}, True)
    status = out["cells"]["fastconv_cuda"]["status"]
    assert status.startswith("error (TypeError: x must be a numpy array"), status


# ---- the check's pytest plugin and summary (benchmarks/gpucheck_*.py) ---------------------------

@pytest.fixture
def gpucheck():
    """Fresh copies of the two modules: under the GPU check the plugin is also loaded (as
    gpucheck_plugin) to record this very run, and its state must stay untouched."""
    import importlib.util

    mods = {}
    for name in ("plugin", "summary"):
        spec = importlib.util.spec_from_file_location(
            f"_gpucheck_{name}_under_test", ROOT / "benchmarks" / f"gpucheck_{name}.py")
        mods[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mods[name])
    return mods


def test_the_script_runs_pytest_so_a_crash_is_named(tmp_path):
    text = SCRIPT.read_text()
    assert "-n 4 --max-worker-restart" in text and "-p no:benchmark" in text
    assert "benchmarks/gpucheck_plugin.py" in text and "benchmarks/gpucheck_summary.py" in text
    assert "<<'EOF'\nimport" not in text  # the programs live in their own files


def _report(nodeid, outcome, when="call", longrepr=None, keywords=None):
    return pytest.TestReport(nodeid, (nodeid.split("::")[0], None, nodeid), keywords or {},
                             outcome, longrepr, when)


def test_plugin_records_outcomes_and_xdist_crashes(gpucheck, tmp_path, monkeypatch):
    plugin = gpucheck["plugin"]
    out = tmp_path / "tests.jsonl"
    monkeypatch.setenv("GPUCHECK_TESTS_JSONL", str(out))
    plugin.pytest_configure(object())  # the controller (no workerinput)
    assert plugin._path == str(out)
    plugin.pytest_runtest_logreport(_report("t.py::a", "passed", "setup"))  # not recorded
    plugin.pytest_runtest_logreport(_report("t.py::a", "passed", keywords={"cuda": 1}))
    plugin.pytest_runtest_logreport(_report("t.py::b", "skipped", "setup",
                                            ("t.py", 1, "Skipped: no usable GPU: none"),
                                            {"cuda": 1}))
    # What pytest-xdist's controller reports when a worker process dies mid-test.
    plugin.pytest_runtest_logreport(_report(
        "t.py::c", "failed", "???", "worker 'gw1' crashed while running 't.py::c'"))
    plugin.pytest_runtest_logreport(_report("t.py::d", "failed", "teardown", "boom"))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["nodeid"], r["outcome"], r["cuda"]) for r in lines] == [
        ("t.py::a", "passed", True), ("t.py::b", "skipped", True), ("t.py::c", "crashed", False),
        ("t.py::d", "error", False)]
    assert lines[1]["reason"] == "no usable GPU: none"
    # Workers stay silent: only the controller writes.
    monkeypatch.setattr(plugin, "_config", types.SimpleNamespace(workerinput={}))
    plugin.pytest_runtest_logreport(_report("t.py::e", "passed"))
    assert len(out.read_text().splitlines()) == 4


def test_a_killed_run_keeps_the_outcomes_so_far(tmp_path):
    (tmp_path / "test_k.py").write_text(
        "import os\n\ndef test_first():\n    pass\n\ndef test_dies():\n    os.abort()\n\n"
        "def test_never():\n    pass\n")
    out = tmp_path / "tests.jsonl"
    env = {**os.environ, "GPUCHECK_TESTS_JSONL": str(out),
           "PYTHONPATH": str(ROOT / "benchmarks")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "gpucheck_plugin", "-p",
                           "no:cacheprovider", "-q", "test_k.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["nodeid"], r["outcome"]) for r in lines] == [("test_k.py::test_first", "passed")]


def _fabricated_log(tmp_path, ratios_cuda="n/a", tests=None):
    """A log folder as the phases leave it, with n/a cells and ratios where nothing could be
    measured (the shape of the first real run that crashed the summary)."""
    na = "n/a (TypeError: 'DeviceArray' object is not subscriptable)"
    ok = {"status": "ok", "device": "cuda", "median_s": 0.004, "times_s": [0.004, 0.0041],
          "pct_peak": None}
    step = {"id": "step", "name": "training step, batch 64", "cells": {
        "fastconv": {"status": "ok", "device": "cpu", "median_s": 0.05, "times_s": [0.05, 0.051],
                     "pct_peak": 12.0},
        "torch": {"status": "ok", "device": "cpu", "median_s": 0.06, "times_s": [0.06, 0.06],
                  "pct_peak": 10.0},
        "fastconv_cuda": {"status": na, "device": "cuda"}, "torch_cudnn": ok,
        "torch_nocudnn": {"status": "no torch", "device": "cuda"}},
        "ratios": {"cpu": 0.83, "cuda": ratios_cuda}}
    epoch = {"id": "epoch", "name": "epoch (s)", "kind": "derived", "cells": {
        "fastconv": {"status": "ok", "device": "cpu", "value": 43.7},
        "fastconv_cuda": {"status": na, "device": "cuda"},
        "torch_cudnn": {"status": "ok", "device": "cuda", "value": "n/a"}},
        "ratios": {"cpu": "n/a", "cuda": ratios_cuda}}
    conv = {"id": "conv1.fwd", "name": "conv1 forward", "cells": {
        "fastconv_cuda": ok, "torch_cudnn": dict(ok, times_s=[0.002, "n/a"])},
        "ratios": {"cuda": 2.0}}
    bench = {"header": {"fastconv_cuda": "built, usable", "tf32": {"fastconv": "off"},
                        "cpu": "x86", "threads": 16},
             "peaks": {"sgemm_gflops": "n/a", "cuda": {"sgemm_n": 4096, "sgemm_gflops": None,
                                                       "torch_sgemm_gflops": "n/a",
                                                       "copy_gbs": 3000.0}},
             "rows": [step, epoch, conv]}
    (tmp_path / "bench.json").write_text(json.dumps(bench))
    (tmp_path / "bench_tf32.json").write_text(json.dumps(
        {"header": {"tf32": {"fastconv": "on"}}, "rows": [step, epoch, conv]}))
    records = tests if tests is not None else [
        {"nodeid": "tests/test_a.py::ok", "outcome": "passed", "cuda": True},
        {"nodeid": "tests/test_a.py::gone", "outcome": "crashed", "cuda": False},
        {"exitstatus": 1}]
    (tmp_path / "tests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records)
                                          + '{"nodeid": "cut sho')
    phases = tmp_path / "phases.tsv"
    phases.write_text("preflight\t1\ntests\t60\n")
    env = {"GPU_LINE": "NVIDIA H200, 570, 143771 MiB", "EXPECT_GPU": "1", "CUDA_OK": "1",
           "PYTEST_RC": "1", "BENCH_RC": "0", "BENCH_TF32_RC": "0", "TOTAL_S": "117",
           "BUDGET": "480"}
    return phases, env


@pytest.mark.parametrize("ratio", ["n/a", None, 0.75])
def test_summary_handles_na_cells_and_names_crashed_tests(gpucheck, tmp_path, ratio):
    summary = gpucheck["summary"]
    phases, env = _fabricated_log(tmp_path, ratio)
    text, problems = summary.summarize(str(tmp_path), str(phases), env)
    assert "| crashed tests | tests/test_a.py::gone |" in text
    assert "| tests | 1 passed, 0 failed, 0 error, 1 crashed, 0 skipped (of 2); pytest exit 1 |" in text
    assert "1 test(s) crashed their process: tests/test_a.py::gone" in problems
    assert "n/a (TypeError: 'DeviceArray' object is not subscriptable)" in text
    shown = {"n/a": "n/a", None: "", 0.75: "0.75"}[ratio]
    assert "| epoch (s) | 43.7 |  | n/a (TypeError" in text
    assert any(line.startswith("| epoch (s) |") and line.endswith(f"| {shown} |  |")
               for line in text.splitlines()), text
    assert "sgemm n/a through fastconv" in text and "torch.mm n/a" in text
    assert text.rstrip().splitlines()[-1].startswith("RESULT: FAILED: ")


def test_summary_passes_a_clean_run(gpucheck, tmp_path):
    summary = gpucheck["summary"]
    phases, env = _fabricated_log(tmp_path, 0.9, tests=[
        {"nodeid": "tests/test_a.py::ok", "outcome": "passed", "cuda": True},
        {"nodeid": "tests/test_a.py::skip", "outcome": "skipped", "cuda": False},
        {"exitstatus": 0}])
    env["PYTEST_RC"] = "0"
    text, problems = summary.summarize(str(tmp_path), str(phases), env)
    assert problems == [] and text.rstrip().endswith("RESULT: OK")
    assert "crashed tests" not in text


def test_summary_shows_the_switch_rows_or_says_their_run_failed(gpucheck, tmp_path):
    summary = gpucheck["summary"]
    phases, env = _fabricated_log(tmp_path, 0.9, tests=[
        {"nodeid": "tests/test_a.py::ok", "outcome": "passed", "cuda": True}, {"exitstatus": 0}])
    env.update(PYTEST_RC="0", SWITCHES_RC="1")
    text, problems = summary.summarize(str(tmp_path), str(phases), env)
    assert problems == ["benchmarks/switches.py exited 1"] and "switches both ways" not in text
    row = {"work": "training step, batch 64", "default_ms": 0.9, "other_ms": 1.0, "ratio": 0.91,
           "gemms_fused": 5, "gemms_refused": 1}
    choice = {"pass": "forward", "x": [64, 32, 28, 28], "w": [64, 32, 3, 3], "stride": [1, 1],
              "padding": [1, 1], "dilation": [1, 1], "need_dx": False, "tf32": True,
              "median_ms": {"im2col": 0.25, "implicit": 0.125}, "chosen": "implicit"}
    (tmp_path / "switches.json").write_text(json.dumps({"rows": [
        dict(row, switch="epilogues"), dict(row, switch="conv_groups", ratio=1.02)],
        "autotune": [choice]}))
    env["SWITCHES_RC"] = "0"
    text, problems = summary.summarize(str(tmp_path), str(phases), env)
    assert problems == [] and "## fastconv's GPU switches both ways" in text
    assert "| work | fused | own | fused / own | cuBLASLt took, refused a call |" in text
    assert "| training step, batch 64 | 0.900 ms | 1.000 ms | 0.91 | 5, 1 |" in text
    assert "| work | half L2 | 64 MiB | half L2 / 64 MiB |" in text
    assert "| training step, batch 64 | 0.900 ms | 1.000 ms | 1.02 |" in text
    assert ("| forward | [64, 32, 28, 28] | [64, 32, 3, 3] | [1, 1], [1, 1] | on | 0.250 | "
            "0.125 | - | - | implicit |") in text


def test_summary_program_exit_status(gpucheck, tmp_path):
    phases, env = _fabricated_log(tmp_path)
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpucheck_summary.py"),
                           str(tmp_path), str(phases)], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "RESULT: FAILED" in proc.stdout, proc.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpucheck_summary.py"),
                           str(empty), str(empty / "none.tsv")], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "the test run left no results" in proc.stdout, proc.stderr


def test_summary_names_error_cells_and_survives_missing_rows(gpucheck, tmp_path):
    summary = gpucheck["summary"]
    phases, env = _fabricated_log(tmp_path, 0.9)
    bench = json.loads((tmp_path / "bench.json").read_text())
    conv = bench["rows"][2]
    conv["cells"]["fastconv_cuda"] = {"status": "error: RuntimeError: boom", "device": "cuda"}
    # Missing rows: no step or epoch row, a row without cells, a cell without times.
    bench["rows"] = [conv, {"id": "conv2.fwd"},
                     {"id": "conv3.fwd", "name": "conv3", "cells": {
                         "fastconv_cuda": {"status": "ok"}, "torch_cudnn": {"status": "ok"}}}]
    (tmp_path / "bench.json").write_text(json.dumps(bench))
    (tmp_path / "bench_tf32.json").write_text(json.dumps({"header": {}}))
    text, problems = summary.summarize(str(tmp_path), str(phases), env)
    assert "benchmark cells that raised: conv1.fwd/fastconv_cuda" in problems
    assert "| conv1 forward | error: RuntimeError: boom | 4 ms |  |  |" in text, text
    assert "| conv2.fwd |  |  |  |  |" in text and "| conv3 |  |  |  |  |" in text, text
    assert "training step" not in text and "epoch (s)" not in text
    assert text.rstrip().splitlines()[-1].startswith("RESULT: FAILED: ")


def test_summary_formats_cells_and_ratios_as_the_report_does(gpucheck, bench):
    summary, report = gpucheck["summary"], bench["report"]
    assert summary.ratio_text is report.ratio_text
    assert [summary.ratio_text(r) for r in (0.754, 2, "n/a (why)", None)] == [
        "0.75", "2.00", "n/a (why)", ""]
    assert [summary.cell({"status": "ok", "value": v}) for v in (43.71, 1234.5, "n/a", None)] == [
        "43.7", "1,234", "n/a", ""]
    assert summary.cell({"status": "ok", "median_s": 0.0042, "pct_peak": 12.4}) == "4.2 ms (12%)"
    assert summary.cell({"status": "ok", "median_s": "n/a", "pct_peak": "n/a"}) == "n/a"
    row = {"cells": {"a": {"status": "ok", "times_s": [2.0, "n/a", 3.0, 1.0]},
                     "b": {"status": "ok", "times_s": [1.0, 1.0, 0.0, 4.0]}}}
    assert summary.paired(row, "a", "b") == bench["timing"].paired_ratio([2.0, 1.0], [1.0, 4.0])
    assert summary.paired(row, "a", "missing") is None


def test_report_header_places_the_note_and_gpu_peaks_after_the_cpu_peaks(bench):
    report = bench["report"]
    h = {"date": "today", "load_average": [1.0, 0.5, 0.25], "command": "run.py", "cpu": "x86",
         "logical_cores": 16, "threads": 16, "blas": "own", "compiler": "gcc", "fastconv": "1",
         "numpy": "2", "torch": "none", "omp_wait_policy": "passive",
         "omp_wait_policy_source": "default", "tf32": {"fastconv": "off"}, "devices": ["cpu"],
         "gpus": [], "fastconv_cuda": "not built"}
    peaks = {"sgemm_n": 512, "sgemm_gflops": 100.0, "numpy_sgemm_gflops": 90.0, "copy_gbs": 10.0}
    lines = report.header_lines(h, peaks, None)
    assert lines[-1].startswith("- peaks: sgemm 512³") and len(lines) == 9
    gpu = {"sgemm_n": 4096, "sgemm_gflops": 50000.0, "torch_sgemm_gflops": None,
           "copy_gbs": "n/a (why)", "copy_source": "torch"}
    lines = report.header_lines(h, dict(peaks, cuda=gpu), None, "cuda: not usable")
    assert lines[-3].startswith("- peaks: ")
    assert lines[-2:] == ["- cuda: not usable", bench["devices"].gpu_peak_line(gpu)]
    assert lines[-1] == ("- GPU peaks: sgemm 4096³ through fastconv 50,000 GFLOP/s (torch.mm "
                         "n/a); device copy n/a (why) (read + write, torch)")
