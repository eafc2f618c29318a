"""`import fastconv` stays light: the plotting, progress-bar and dataset packages are imported only
by the functions that use them (issue 9: matplotlib on every import slowed it, and a warning from
inside matplotlib broke the test run under `filterwarnings = error`)."""
import json
import subprocess
import sys

import pytest

HEAVY = ("matplotlib", "tqdm", "sklearn", "scipy", "mlxtend", "pandas")


def imported_after(code):
    # A fresh interpreter: this one has long imported everything. -W error turns any warning
    # raised during the import into a failure, as pytest's filterwarnings = error would.
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))"
    )
    done = subprocess.run([sys.executable, "-W", "error", "-c", probe], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("code", [
    "import fastconv",
    "import fastconv as fc; fc.viz; fc.datasets",
    "from fastconv import viz, datasets",
    "import fastconv.viz, fastconv.datasets",
])
def test_import_pulls_in_no_heavy_package(code):
    assert imported_after(code) == []


def test_viz_imports_matplotlib_when_it_draws(tmp_path):
    # The probe can fail: a module-level import or a broken lazy one shows up here.
    path = tmp_path / "h.png"
    code = (f"import fastconv as fc\n"
            f"fc.viz.plot_history([{{'epoch': 0, 'train_loss': 1.0}}], {str(path)!r})")
    assert imported_after(code) == ["matplotlib"]
    assert path.stat().st_size > 0


def test_viz_is_a_module_attribute():
    import fastconv as fc
    from fastconv import viz

    assert fc.viz is viz
    assert callable(fc.viz.plot_kernels) and callable(fc.datasets.load_mnist)
