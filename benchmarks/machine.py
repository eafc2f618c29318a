"""The header: what machine, libraries and settings produced the numbers, and this machine's
measured peaks (sgemm GFLOP/s and copy GB/s) that the table's percentages refer to."""
from __future__ import annotations

import datetime
import os
import platform

import numpy as np

import timing


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def rss_bytes() -> int:
    """Resident memory of this process (VmRSS in /proc/self/status)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def header(torch, devices, threads: int, omp_policy_user: str | None, argv: list) -> dict:
    import fastconv as fc

    from devices import tf32_mode

    info = fc.build_info()
    gpus = []
    if torch is not None and any(d.name == "cuda" for d in devices):
        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python " + " ".join(argv),
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "threads": threads,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "blas": info["blas_config"] or info["blas"],
        "fastconv": info["version"],
        "compiler": info["compiler"],
        "conv_algorithm": info["conv_algorithm"],
        "cpu_simd": info["cpu_simd"],
        "numpy": np.__version__,
        "torch": torch.__version__ if torch is not None else "not available",
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "omp_wait_policy_source": "user" if omp_policy_user is not None else "fastconv default",
        "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", "unset"),
        "tf32": tf32_mode(torch, devices),
        "devices": [d.name for d in devices],
        "gpus": gpus,
        "fastconv_cuda": fc.cuda_status(),
    }


def peaks(quick: bool) -> dict:
    """sgemm n^3 through fastconv (the GFLOP/s reference), numpy's matmul beside it, and a numpy
    copy's bandwidth (read + write; the GB/s reference; numpy copies on one thread)."""
    from fastconv import ops

    n = 1024 if quick else 2048
    reps = 3 if quick else 7
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), np.float32)

    class _Host:
        def before(self, impl):
            pass

        def sync(self):
            pass

    # One after the other, not interleaved: numpy's OpenBLAS keeps its own threads spinning for a
    # while after each call, and they would steal the cores from fastconv's next call.
    t = timing.interleaved({"fastconv": lambda: ops.dense_forward(a, b)}, _Host(), 1, reps)
    t.update(timing.interleaved({"numpy": lambda: np.matmul(a, b, out=out)}, _Host(), 1, reps))
    flops = 2.0 * n ** 3
    words = (4 if quick else 64) * 2 ** 20 // 4
    src, dst = np.ones(words, np.float32), np.empty(words, np.float32)
    c = timing.interleaved({"copy": lambda: np.copyto(dst, src)}, _Host(), 1, reps * 2)
    return {
        "sgemm_n": n,
        "sgemm_gflops": flops / timing.median(t["fastconv"]) / 1e9,
        "numpy_sgemm_gflops": flops / timing.median(t["numpy"]) / 1e9,
        "copy_bytes": 2 * src.nbytes,
        "copy_gbs": 2 * src.nbytes / timing.median(c["copy"]) / 1e9,
    }
