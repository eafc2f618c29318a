"""The training loop's data ops on the GPU (gather_batch, argmax, accuracy_count) against numpy
and their CPU twins (marked `cuda`: skipped with the reason where no GPU is usable), with the
device-side index check's whole message. Outputs are poisoned (NaN) first on both backends."""
from __future__ import annotations

import numpy as np
import pytest

import fastconv as fc
import fastconv.ops as ops
from fastconv._native import CUDA
from helpers import dev, host, raises_exactly, rand

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("poison_gpu_outputs")]


def test_gather_batch_argmax_accuracy():
    rng = np.random.default_rng(0)
    data = rand(rng, 50, 1, 4, 4).astype(np.float32)
    labels = rng.integers(0, 10, size=50).astype(np.int64)
    idx = rng.permutation(50)[:17]
    gd, gl = dev(data), dev(labels)
    np.testing.assert_array_equal(host(CUDA.gather_batch(gd, idx)), data[idx])
    np.testing.assert_array_equal(host(CUDA.gather_batch(gl, dev(idx.astype(np.int64)))),
                                  labels[idx])
    with raises_exactly(ValueError, "indices must be in [0, 50) (data's rows); got 50 at position 1"):
        CUDA.gather_batch(gd, np.array([0, 50]))
    # device indices: the kernel flags the position and the call returns without waiting; the
    # next check point (here check_errors) fetches the one value for the message, once
    CUDA.gather_batch(gd, dev(np.array([3, -1, 70], np.int64)))
    with raises_exactly(ValueError, "indices must be in [0, 50) (data's rows); got -1 at position 1"):
        CUDA.check_errors()
    CUDA.check_errors()  # reported and forgotten
    # a view of the dataset's rows is a dataset too
    np.testing.assert_array_equal(host(CUDA.gather_batch(gd[10:20], np.array([9, 0]))),
                                  data[10:20][[9, 0]])
    z = rand(rng, 17, 10).astype(np.float32)
    np.testing.assert_array_equal(host(CUDA.argmax(dev(z))), z.argmax(axis=1))
    hits = int((z.argmax(axis=1) == labels[idx]).sum())
    assert int(host(CUDA.accuracy_count(dev(z), dev(labels[idx])))) == hits
    onehot = np.eye(10, dtype=np.float32)[labels[idx]]
    assert int(host(CUDA.accuracy_count(dev(z), dev(onehot)))) == hits


def test_data_ops_on_the_gpu_match_the_cpu():
    # Through fastconv.ops, which picks the backend by where the arrays live.
    rng = np.random.default_rng(3)
    data, labels = rand(rng, 40, 1, 5, 5, dtype=np.float32), rng.integers(0, 10, size=40)
    idx = rng.permutation(40)[:16]
    for a in (data, labels):
        np.testing.assert_array_equal(host(ops.gather_batch(dev(a), idx)),
                                      ops.gather_batch(a, idx))
    z = rand(rng, 40, 10, dtype=np.float32)
    for t in (labels, np.eye(10, dtype=np.float32)[labels]):
        assert int(host(ops.accuracy_count(dev(z), dev(t)))) == int(ops.accuracy_count(z, t))
    assert fc.cuda_available()
