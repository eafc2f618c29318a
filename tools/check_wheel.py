"""Check a repaired release wheel: its manylinux tag, what it vendors, what it leaves to others.

Usage: python tools/check_wheel.py WHEEL SHOW_JSON   (SHOW_JSON: `auditwheel show --json WHEEL`;
patchelf must be on PATH). Called by tools/build_wheel.sh; exits non-zero with the reason.
"""
from __future__ import annotations

import json
import runpy
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# The cuBLAS facts from their one home, read by path: this runs in a tools venv without fastconv.
FACTS = runpy.run_path(str(Path(__file__).resolve().parents[1] / "python/fastconv/_cuda_facts.py"))
# Left out on purpose (auditwheel repair --exclude): each comes from its own wheel at run time.
EXTERNAL = {"libscipy_openblas.so", FACTS["cublas_soname"](), FACTS["cublas_soname"]("cublasLt")}
# Where each module finds them: an RPATH into the sibling packages in site-packages.
RPATHS = {"_C": "$ORIGIN/../scipy_openblas32/lib",
          "_cuda": "$ORIGIN/../" + FACTS["cublas_lib_dir"]()}


def check(wheel: Path, show: dict) -> list[str]:
    problems = []
    tag = show["sym_tag"]
    if not tag.startswith("manylinux_") or not wheel.name.endswith(f"-{tag}.whl"):
        problems.append(f"auditwheel show gives the symbol tag {tag}; the file is {wheel.name}")
    if show["unsupported_isa"]:
        problems.append("auditwheel show reports instructions beyond the baseline x86-64")
    # show cannot find the excluded libraries, so its overall tag stays linux_x86_64 for their
    # sake alone; anything else external would be a library missing from the wheel.
    unexpected = sorted(set(show["external_libs"]) - EXTERNAL)
    if unexpected:
        problems.append(f"external libraries the wheel neither vendors nor expects: {unexpected}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        zipfile.ZipFile(wheel).extractall(out)
        vendored = sorted(p.name for p in out.glob("fastconv.libs/*"))
        print("check_wheel: vendored:", ", ".join(vendored) or "nothing")
        if any(not name.startswith("libgomp") for name in vendored):
            problems.append(f"vendors {vendored}: only libgomp belongs inside")
        modules = sorted(out.glob("fastconv/_*.so"))
        if not any(m.name.startswith("_C.") for m in modules):
            problems.append("no _C module")
        for module in modules:
            rpath = subprocess.run(["patchelf", "--print-rpath", str(module)], check=True,
                                   capture_output=True, text=True).stdout.strip()
            print(f"check_wheel: {module.name}: RPATH {rpath}")
            want = RPATHS[module.name.split(".")[0]]
            if want not in rpath.split(":"):
                problems.append(f"{module.name} lost its RPATH entry {want}")
        if not (out / "fastconv" / "py.typed").exists():
            problems.append("no fastconv/py.typed")
        if not list(out.glob("fastconv-*.dist-info/licenses/LICENSE")):
            problems.append("no LICENSE in the .dist-info")
    return problems


if __name__ == "__main__":
    wheel, show_json = Path(sys.argv[1]), Path(sys.argv[2])
    problems = check(wheel, json.loads(show_json.read_text()))
    if problems:
        sys.exit("check_wheel: " + wheel.name + ":\n  " + "\n  ".join(problems))
    print(f"check_wheel: {wheel.name} is a manylinux wheel; it leaves "
          + ", ".join(sorted(EXTERNAL)) + " to their own wheels")
