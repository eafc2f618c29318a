"""fastconv-train when a run stops early or picks up again: Ctrl-C, failed writes, out of memory,
checkpoints and resuming (the arguments, data and devices: test_train_cli.py)."""
from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

import fastconv as fc
from fastconv import train
from train_cli_helpers import (FILES, SIZE, clean_env, idx_file, keep_threads,  # noqa: F401
                               make_idx, no_pictures, run, shell)


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
