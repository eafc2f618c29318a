"""Checkpoints (issue 9): the suffix rule, atomic saves, loads checked against the model's
configuration, unreadable files, optimiser state for an exact resume, and meta."""
import io
import os
import pickle
import zipfile

import numpy as np
import pytest

import fastconv as fc
from fastconv import checkpoint
from helpers import raises_exactly


def small_model():
    return fc.Sequential([fc.Conv2d(channel=4, filter=3), fc.Relu(), fc.Flatten(), fc.Dense(3)])


def built(model, shape=(2, 1, 6, 6)):
    model(np.zeros(shape, np.float32))
    return model


def read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def batch(seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((8, 1, 6, 6), dtype=np.float32), rng.integers(0, 3, 8)


def train_step(model, opt, seed):
    x, y = batch(seed)
    with model.train():
        loss = fc.softmax_cross_entropy(model(x), y)
    loss.grad().update(opt)


def test_save_and_load_apply_the_same_suffix_rule(tmp_path):
    model = built(small_model())
    written = model.save(tmp_path / "ckpt")
    assert written == str(tmp_path / "ckpt.npz") and os.path.exists(written)
    fresh = small_model()
    assert fresh.load(tmp_path / "ckpt") == {}  # was: FileNotFoundError for "ckpt"
    assert fresh.load(str(tmp_path / "ckpt.npz")) == {}
    np.testing.assert_array_equal(fresh[0].params.w.as_ndarray(), model[0].params.w.as_ndarray())
    assert model.save(str(tmp_path / "other.npz")) == str(tmp_path / "other.npz")
    with raises_exactly(TypeError, "path must be a str or os.PathLike; got int 3"):
        model.save(3)


def test_a_save_failing_midway_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model = built(small_model())
    path = model.save(tmp_path / "ckpt")
    good = read(path)

    class DiskFull(io.RawIOBase):  # a file that takes 300 bytes, then reports a full disk
        def __init__(self, file):
            self.file, self.left = file, 300

        def writable(self):
            return True

        def write(self, data):
            if len(data) > self.left:
                self.file.write(bytes(data[:self.left]))
                raise OSError(28, "No space left on device")
            self.left -= len(data)
            return self.file.write(data)

        def seekable(self):
            return False

    real = checkpoint._write_archive
    monkeypatch.setattr(checkpoint, "_write_archive", lambda f, arrays: real(DiskFull(f), arrays))
    model[0].params.w[0, 0, 0, 0] = 123.0
    with pytest.raises(OSError, match="No space left on device"):
        model.save(tmp_path / "ckpt")
    assert read(path) == good  # was: truncated in place by np.savez
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # the temporary file is gone too
    fresh = small_model()
    fresh.load(path)
    assert fresh[0].params.w[0, 0, 0, 0] != 123.0


def test_load_refuses_weights_the_configuration_does_not_allow(tmp_path):
    wide = fc.Sequential([fc.Conv2d(channel=8, filter=5)])
    path = built(wide).save(tmp_path / "wide")
    narrow = fc.Sequential([fc.Conv2d(channel=4, filter=3)])
    with raises_exactly(ValueError, f"path {path!r}: l0.w must have shape (4, any, 3, 3) for l0 "
                                    "= Conv2d(channel=4, filter=(3, 3), padding=(0, 0), stride=(1, "
                                    "1), dilation=(1, 1)); got shape (8, 1, 5, 5)"):
        narrow.load(path)  # was: silently took the (8, 1, 5, 5) weights
    assert not list(narrow.parameters())  # nothing half-loaded
    # Once called, the input channel count is fixed too.
    three = fc.Sequential([fc.Conv2d(channel=8, filter=5)])
    three(np.zeros((1, 3, 6, 6), np.float32))
    with raises_exactly(ValueError, f"path {path!r}: l0.w must have shape (8, 3, 5, 5) for l0 = "
                                    "Conv2d(channel=8, filter=(5, 5), padding=(0, 0), stride=(1, "
                                    "1), dilation=(1, 1)); got shape (8, 1, 5, 5)"):
        three.load(path)
    dense = fc.Sequential([fc.Dense(4, input_size=3)])
    path = dense.save(tmp_path / "dense")
    with raises_exactly(ValueError, f"path {path!r}: l0.w must have shape (5, 4) for l0 = Dense("
                                    "output_size=4, input_size=5); got shape (3, 4)"):
        fc.Sequential([fc.Dense(4, input_size=5)]).load(path)
    with raises_exactly(ValueError, f"path {path!r}: every entry must be a parameter of the model; "
                                    "got 'l0.b' of shape (1, 4): l0 = Dense(output_size=4, "
                                    "ignore_bias=True) has no parameter 'b' (its parameters: w)"):
        fc.Sequential([fc.Dense(4, ignore_bias=True)]).load(path)
    trimmed = path_without(tmp_path, path, "l0.b")
    with raises_exactly(ValueError, f"path {trimmed!r}: l0.b must be present for l0 = Dense("
                                    "output_size=4) (shape (1, 4)); got no such entry (entries: "
                                    "l0.w)"):
        fc.Sequential([fc.Dense(4)]).load(trimmed)


def path_without(tmp_path, path, *keys):
    with np.load(path) as data:
        kept = {k: data[k] for k in data.files if k not in keys}
    out = str(tmp_path / "trimmed.npz")
    np.savez(out, **kept)
    return out


def test_load_refuses_parameters_for_layers_without_any(tmp_path):
    path = str(tmp_path / "relu.npz")
    np.savez(path, **{"l0.w": np.ones((2, 1, 3, 3), np.float32),
                      "l0.b": np.zeros((1, 2, 1, 1), np.float32),
                      "l1.w": np.ones((3, 3), np.float32)})
    model = fc.Sequential([fc.Conv2d(channel=2), fc.Relu()])
    with raises_exactly(ValueError, f"path {path!r}: every entry must be a parameter of the model; "
                                    "got 'l1.w' of shape (3, 3): l1 = Relu() has no parameter 'w' "
                                    "(its parameters: none)"):
        model.load(path)  # was: a Relu with parameters
    assert not model[1].params and not model[0].params
    with raises_exactly(ValueError, f"path {path!r}: every entry must be a parameter of the model; "
                                    "got 'l1.w' of shape (3, 3): this model has no layer 'l1' with "
                                    "parameters"):
        fc.Sequential([fc.Conv2d(channel=2)]).load(path)


def test_unbuilt_models_are_built_from_the_file_and_refused_when_unbuilt_at_save(tmp_path):
    source = built(small_model())
    path = source.save(tmp_path / "m")
    fresh = small_model()
    fresh.load(path)
    assert [(k, v.shape) for k, v in fresh.named_parameters()] == [
        ("l0.w", (4, 1, 3, 3)), ("l0.b", (1, 4, 1, 1)), ("l3.w", (64, 3)), ("l3.b", (1, 3))]
    x = batch()[0]
    np.testing.assert_array_equal(fresh(x).as_ndarray(), source(x).as_ndarray())
    with raises_exactly(ValueError, "l0 (Conv2d(channel=4, filter=(3, 3), padding=(0, 0), "
                                    "stride=(1, 1), dilation=(1, 1))) has no parameters yet (they "
                                    "are made at its first call): run the model on a batch before "
                                    "save(); got an unbuilt model"):
        small_model().save(tmp_path / "unbuilt")
    assert not (tmp_path / "unbuilt.npz").exists()


def write_bytes(tmp_path, data: bytes) -> str:
    path = str(tmp_path / "bad.npz")
    with open(path, "wb") as f:
        f.write(data)
    return path


def unreadable_files(tmp_path):
    good = read(built(small_model()).save(tmp_path / "good"))
    npy = str(tmp_path / "array.npy")
    np.save(npy, np.zeros(3))
    objects = str(tmp_path / "objects.npz")
    np.savez(objects, **{"l0.w": np.array([{"a": 1}], dtype=object)})
    return {
        "random bytes": write_bytes(tmp_path, np.random.default_rng(0).bytes(500)),
        "truncated zip": write_bytes(tmp_path, good[:len(good) // 2]),
        "pickle": write_bytes(tmp_path, pickle.dumps({"l0.w": np.zeros(3)})),
        "empty": write_bytes(tmp_path, b""),
        "npy": os.replace(npy, str(tmp_path / "array.npz")) or str(tmp_path / "array.npz"),
        "object array": objects,
    }


def test_unreadable_files_raise_value_error_naming_the_file(tmp_path):
    for kind, path in unreadable_files(tmp_path).items():
        with pytest.raises(ValueError) as caught:
            small_model().load(path)
        message = str(caught.value)
        assert message.startswith(f"path {path!r} must be a fastconv checkpoint (an .npz archive "
                                  "written by save); got a file numpy cannot read as one ("), kind
        assert not isinstance(caught.value, (zipfile.BadZipFile, EOFError)), kind
    with pytest.raises(FileNotFoundError):
        small_model().load(tmp_path / "missing")


def test_a_corrupt_header_or_a_future_format_is_refused(tmp_path):
    model = built(small_model())
    path = model.save(tmp_path / "m")
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays[checkpoint.HEADER] = np.frombuffer(b'{"format": 2, "meta": {}}', np.uint8)
    np.savez(path, **arrays)
    with raises_exactly(ValueError, f"path {path!r}: checkpoint format must be 1; got 2 (written "
                                    "by another fastconv version)"):
        small_model().load(path)
    arrays[checkpoint.HEADER] = np.frombuffer(b"\xff\x00", np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"^path .*: entry __fastconv__ must be fastconv's JSON "
                                         r"header; got bytes that do not read as one \("):
        small_model().load(path)


def test_meta_round_trips(tmp_path):
    model = built(small_model())
    rng = np.random.default_rng(7)
    meta = {"epoch": np.int64(3), "rng": rng.bit_generator.state, "history": [0.5, 0.25],
            "note": "ok", "lr": np.float32(0.5)}
    path = model.save(tmp_path / "m", meta=meta)
    got = small_model().load(path)
    assert got == {"epoch": 3, "rng": rng.bit_generator.state, "history": [0.5, 0.25],
                   "note": "ok", "lr": 0.5}
    restored = np.random.default_rng()
    restored.bit_generator.state = got["rng"]
    assert restored.random() == rng.random()
    with raises_exactly(TypeError, "meta must be None or a dict of JSON-serialisable values; got "
                                   "list"):
        model.save(tmp_path / "m", meta=[1, 2])
    with raises_exactly(TypeError, "meta must be None or a dict of JSON-serialisable values; got a "
                                   "dict that json cannot write (Object of type object is not JSON "
                                   "serializable)"):
        model.save(tmp_path / "m", meta={"x": object()})
    assert small_model().load(path) == got  # the refused saves left the file alone


@pytest.mark.parametrize("make_opt", [lambda: fc.Sgd(lr=0.1, momentum=0.9),
                                      lambda: fc.Adam(lr=0.01),
                                      lambda: fc.Sgd(lr=0.1, momentum=0.0)],
                         ids=["sgd-momentum", "adam", "sgd-plain"])
def test_a_resumed_run_is_bitwise_exact(tmp_path, make_opt):
    np.random.seed(0)
    model, opt = small_model(), make_opt()
    built(model)
    for seed in range(2):
        train_step(model, opt, seed)
    path = model.save(tmp_path / "ckpt", optimizer=opt, meta={"step": 2})
    fresh, fresh_opt = small_model(), make_opt()
    assert fresh.load(path, optimizer=fresh_opt) == {"step": 2}
    train_step(model, opt, 2)
    train_step(fresh, fresh_opt, 2)
    for (name, a), (_, b) in zip(model.named_parameters(), fresh.named_parameters()):
        assert a.as_ndarray().tobytes() == b.as_ndarray().tobytes(), name
    # Without the optimiser state the third step differs (the test can fail).
    if opt.state_names():
        cold, cold_opt = small_model(), make_opt()
        cold.load(path)
        train_step(cold, cold_opt, 2)
        assert cold[0].params.w.as_ndarray().tobytes() != model[0].params.w.as_ndarray().tobytes()


def test_optimizer_state_mismatches_are_refused(tmp_path):
    model, opt = built(small_model()), fc.Adam()
    train_step(model, opt, 0)
    path = model.save(tmp_path / "adam", optimizer=opt)
    with raises_exactly(ValueError, f"path {path!r}: optimizer must be a Adam (the state saved is "
                                    "its); got Sgd"):
        small_model().load(path, optimizer=fc.Sgd())
    plain = built(small_model()).save(tmp_path / "plain")
    with raises_exactly(ValueError, f"path {plain!r} holds no optimiser state (it was saved "
                                    "without optimizer=); got optimizer=Adam: pass optimizer=None "
                                    "to load the parameters only"):
        small_model().load(plain, optimizer=fc.Adam())
    sgd_path = small_model()
    built(sgd_path)
    sgd = fc.Sgd(momentum=0.9)
    train_step(sgd_path, sgd, 0)
    path = sgd_path.save(tmp_path / "sgd", optimizer=sgd)
    target = small_model()
    with raises_exactly(ValueError, f"path {path!r}: the optimiser state of l0.w must have entries "
                                    "[] for this Sgd; got ['velocity']"):
        target.load(path, optimizer=fc.Sgd(momentum=0.0))
    assert not list(target.parameters())  # refused before anything changed
    with raises_exactly(TypeError, "optimizer must be None or a fastconv optimiser (fc.Sgd, "
                                   "fc.Adam); got str 'adam'"):
        model.save(tmp_path / "x", optimizer="adam")


def test_load_bumps_versions_and_keeps_existing_arrays(tmp_path):
    model = built(small_model())
    path = model.save(tmp_path / "m")
    w = model[0].params.w
    before, array = w._version, w._value
    model.load(path)
    assert w._version == before + 1 and model[0].params.w is w and w._value is array
