"""`python -m fastconv.train` (or `fastconv-train`): train the ReNom tutorial's CNN on MNIST.

Shows a progress bar per epoch with the live train loss, the validation loss and accuracy at each
epoch's end, and writes the weights, the metrics and pictures of what was learned into --out.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

import fastconv as fc
from fastconv import _train_data, _train_dist, distributed, ops
from fastconv.distributed import _sharding
from fastconv._cli import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, PROG, CommandError,
                           build_parser, error_line, note, say, set_quiet)
from fastconv._sigint import StopOnInterrupt
from fastconv._train_outputs import (check_readable, restore, resume, save_checkpoint, snapshot,
                                     write_metrics, write_pictures)


def tutorial_cnn() -> fc.Sequential:
    """The tutorial's network, with the ReLUs it implies."""
    return fc.Sequential([
        fc.Conv2d(channel=32, filter=3, padding=1), fc.Relu(),
        fc.Conv2d(channel=64, filter=3, padding=1), fc.Relu(),
        fc.MaxPool2d(filter=2, stride=2), fc.Dropout(0.5),
        fc.Flatten(), fc.Dense(128), fc.Relu(), fc.Dense(10),
    ])


def make_optimizer(name: str, lr: float | None):
    if name == "adam":
        return fc.Adam(lr=1e-3 if lr is None else lr)
    if name == "sgd":
        return fc.Sgd(lr=0.01 if lr is None else lr, momentum=0.9, nesterov=True)
    raise ValueError(f"--optimizer must be adam or sgd; got {name!r}")


def resolve_device(device: str) -> str:
    """cpu, or cuda where it is usable: --device cuda without a GPU is an error, auto says that it
    falls back."""
    if device == "cpu" or (device == "auto" and not fc.cuda_available()):
        if device == "auto":
            note(f"device: training on the CPU; CUDA: {fc.cuda_status()}")
        fc.set_cuda_active(False)
        return "cpu"
    if device != "cuda" and device != "auto":
        raise ValueError(f"--device must be cpu, cuda or auto; got {device!r}")
    if not fc.cuda_available():
        raise CommandError(f"--device cuda: {fc.cuda_status()}")
    fc.set_cuda_active(True)
    return "cuda"


class Dataset:
    """Images and labels where training runs. On the GPU the whole set is uploaded once and
    batches are gathered there, so a step sends only its indices down and nothing back but the
    loss that the progress bar shows. Integer labels are kept as int64 (what the ops take)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, device: str):
        self.count = len(images)
        self.labels = labels
        self.on_device = device == "cuda"
        if self.on_device:
            self._images = fc.to_device(np.ascontiguousarray(images, np.float32))
            self._labels = fc.to_device(np.asarray(labels, np.int64))
        else:
            labels = np.asarray(labels)
            self._images = np.ascontiguousarray(images)
            self._labels = labels.astype(np.int64) if labels.dtype.kind in "iu" else labels
            self._labels = np.ascontiguousarray(self._labels)

    def batch(self, idx):
        """(images, labels) of the rows `idx` (host indices, or device ones on the GPU)."""
        if self.on_device and not fc.is_device_array(idx):  # one upload for both gathers
            idx = fc.to_device(np.asarray(idx, np.int64))
        return ops.gather_batch(self._images, idx), ops.gather_batch(self._labels, idx)


def evaluate(model, data: Dataset, batch_size: int = 1000, world=None) -> tuple[float, float]:
    """(mean loss, accuracy) with dropout off; the model is switched back afterwards. Correct
    predictions are counted where the data lives: only the count comes back from a GPU, and each
    batch's loss and count are read after the last batch is queued, so the host waits for the
    device once, not twice a batch. With a world of several ranks each evaluates its own share
    and the sums are reduced."""
    share = (_sharding.contiguous_range(data.count, world.rank, world.size)
             if world is not None else range(data.count))
    model.set_models(inference=True)
    try:
        results = []  # (batch size, its mean loss, its correct count): arrays, unread
        for start in range(share.start, share.stop, batch_size):
            idx = np.arange(start, min(start + batch_size, share.stop))
            x, t = data.batch(idx)
            z = model(x)
            results.append((len(idx), fc.softmax_cross_entropy(z, t)._value,
                            ops.accuracy_count(z._value, t)))
        total_loss, correct = 0.0, 0
        for n, loss, count in results:
            total_loss += float(fc.to_host(loss)) * n
            correct += int(fc.to_host(count))
    finally:
        model.set_models(inference=False)
    if world is not None:
        total_loss, correct = distributed.reduce_sum([total_loss, correct])
    return float(total_loss) / data.count, float(correct) / data.count


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def make_step(model, opt, data: Dataset, world=None):
    """The training step on the batch of rows `idx` (int64): forward, backward, update. Returns
    the loss as an array, unread (reading it would make the host wait for the device)."""
    def step(idx):
        x, t = data.batch(idx)
        with model.train():
            loss = fc.softmax_cross_entropy(model(x), t)
        grads = loss.grad()
        if world is not None:
            grads = distributed.allreduce_gradients(grads)
        grads.update(opt)
        return loss._value  # the array alone, not the step's graph

    return step


def train_epoch(model, opt, data: Dataset, batch_size, rng, desc, stop=None,
                bar: bool = False, world=None, step=None) -> tuple[float, int, bool]:
    """One pass in a fresh random order, dropping the last partial batch as the tutorial does.
    Returns (mean loss, images seen, finished): finished is False when `stop.requested` ended
    the epoch early. With bar, a tqdm bar on stderr shows the live loss. With a world of several
    ranks (fastconv.distributed), each step takes this rank's slice of a global batch of
    batch_size x ranks and averages the gradients over the ranks; the loss and the count
    returned are this rank's. `step` (int64 indices -> loss array) replaces make_step's, e.g.
    by a fastconv.graph_step of it."""
    rank, ranks = (world.rank, world.size) if world is not None else (0, 1)
    order = rng.permutation(data.count)
    steps = _sharding.steps_per_epoch(data.count, batch_size, ranks)
    progress = None
    if bar:
        from tqdm import tqdm

        progress = tqdm(total=steps, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True)
    # On the GPU the host does not wait for each step's loss: the losses stay on the device and
    # are read every DISPLAY_EVERY steps for the bar and at the end (a data error that a kernel
    # found, such as a bad label, is raised there), so the host queues the next steps meanwhile.
    every = DISPLAY_EVERY if data.on_device else 1
    step = step if step is not None else make_step(model, opt, data, world)
    total, done, unread = 0.0, 0, []
    try:
        for j in range(steps):
            idx = _sharding.batch_indices(order, j, batch_size, rank, ranks)
            unread.append(step(np.asarray(idx, np.int64)))
            done += 1
            if len(unread) >= every or j == steps - 1:
                total = _read_losses(unread, total, progress, desc)
            if stop is not None and stop.requested:
                break
        total = _read_losses(unread, total, progress, desc)
    finally:
        if progress is not None:
            progress.close()
    return total / max(done, 1), done * batch_size, done == steps


# Steps between two reads of the losses on the GPU (each read waits for the device).
DISPLAY_EVERY = 20


def _read_losses(unread: list, total: float, progress, desc: str) -> float:
    """`total` plus the losses in `unread` (emptied), added one by one as they were made; the
    bar advances by as many steps and shows the last."""
    for loss in unread:
        value = float(fc.to_host(loss))
        total += value
    if progress is not None and unread:
        progress.set_description(f"{desc} train loss:{value:6.4f}", refresh=False)
        progress.update(len(unread))
    unread.clear()
    return total


def parse_args(argv=None):
    return build_parser("Train the ReNom tutorial's CNN on MNIST.").parse_args(argv)


def main(argv=None) -> int:
    """The command; returns the exit status (see --help's last lines)."""
    args = parse_args(argv)
    world = None
    autotune = fc.conv_autotune()
    try:
        world = _train_dist.join(args) if args.distributed else None
        if args.autotune:
            fc.set_conv_autotune(True)
        return _run(args, world)
    except _train_dist.AgreedError as e:  # found alike on every rank: rank 0 says it
        if world is None or world.rank == 0:
            print(error_line(str(e)), file=sys.stderr)
        return EXIT_FAILED
    except CommandError as e:
        return _train_dist.fail(world, error_line(str(e)), EXIT_FAILED)
    except OSError as e:  # writing --out (a full disk, a read-only folder)
        where = f": {e.filename}" if e.filename else ""
        return _train_dist.fail(world, error_line(f"{e.strerror or e}{where}"), EXIT_FAILED)
    except MemoryError as e:
        return _train_dist.fail(world, error_line(f"out of memory ({e}); a smaller "
                                                  "--batch-size needs less"), EXIT_FAILED)
    except KeyboardInterrupt:  # outside the training loop, or a second Ctrl-C
        return _train_dist.fail(world, f"{PROG}: interrupted", EXIT_INTERRUPTED)
    finally:
        fc.set_conv_autotune(autotune)  # main() may be called in a process that goes on


def _run(args, world) -> int:
    ranks = world.size if world is not None else 1
    set_quiet(ranks > 1 and world.rank != 0)  # rank 0 alone prints progress and notes
    if args.threads is not None:
        fc.set_num_threads(args.threads)
    elif world is not None and "OMP_NUM_THREADS" not in os.environ:
        fc.set_num_threads(distributed.default_threads())
    device = resolve_device(args.device)
    if args.resume is not None:
        check_readable(args.resume)
    with _train_dist.root_first(world):  # a download lands in the cache once
        data = _train_data.load(args.data, args.seed, args.limit_train, args.limit_test)
    _train_data.check(data, args.batch_size, ranks)
    if world is not None:
        _train_dist.agree(world, device, data)
    say(f"data: {data.source}: {len(data.train_images)} train, {len(data.test_images)} "
        f"validation images")
    say(f"device: {device}, threads: {fc.get_num_threads()}, optimizer: {args.optimizer}"
        + (f", ranks: {ranks}, global batch: {args.batch_size * ranks}" if world else ""))

    np.random.seed(args.seed)  # initial weights and dropout seeds
    rng = np.random.default_rng(args.seed)  # batch order
    train_set = Dataset(data.train_images, data.train_labels, device)
    test_set = Dataset(data.test_images, data.test_labels, device)
    model, opt = tutorial_cnn(), make_optimizer(args.optimizer, args.lr)
    settings = {"optimizer": args.optimizer, "lr": opt.lr, "batch_size": args.batch_size,
                "seed": args.seed, "data": data.source, "ranks": ranks}
    first, history, finished_weights = 0, [], None
    if args.resume is not None:
        first, history, differs = resume(args.resume, model, opt, rng, settings, args.epochs)
        for difference in differs:
            note(f"warning: {difference}; the run will differ from an uninterrupted one")
        say(f"resumed from {args.resume} after epoch {first - 1:03d}")
        finished_weights = snapshot(model)
    if world is not None:
        _train_dist.share_model(world, model, train_set)
    if ranks == 1 or world.rank == 0:
        _make_out(args.out)

    seen, train_seconds, complete = 0, 0.0, True
    shard = {"world": world} if world is not None else {}
    if device == "cuda" and ranks == 1 and not args.no_graph:
        # One captured CUDA graph replays each step (fastconv.graph_step); made once per run so
        # that its capture serves every epoch.
        shard["step"] = fc.graph_step(make_step(model, opt, train_set))
    bar = _stderr_is_terminal() and (ranks == 1 or world.rank == 0)
    # Several ranks cannot stop after different steps (the others would wait in the all-reduce):
    # there Ctrl-C ends the job, as mpiexec does anyway.
    with (StopOnInterrupt() if ranks == 1 else _train_dist.NoStop()) as stop:
        for epoch in range(first, args.epochs):
            if ranks > 1:
                np.random.seed([args.seed, world.rank, epoch])  # each rank its own dropout
            start = time.perf_counter()
            train_loss, count, complete = train_epoch(model, opt, train_set, args.batch_size,
                                                      rng, f"epoch {epoch:03d}", stop, bar,
                                                      **shard)
            if not complete:
                break
            if world is not None:
                train_loss, count = _train_dist.mean_loss(train_loss, count)
            seconds = time.perf_counter() - start
            seen, train_seconds = seen + count, train_seconds + seconds
            val_loss, val_acc = evaluate(model, test_set, world=world)
            history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                            "val_accuracy": val_acc, "seconds": seconds,
                            "images_per_second": count / seconds})
            say(f"epoch {epoch:03d} avg loss:{train_loss:6.4f} val loss:{val_loss:6.4f} "
                f"val accuracy:{val_acc:.4f} ({seconds:.1f} s)")
            finished_weights = snapshot(model)
            if (args.checkpoint_every and (epoch + 1) % args.checkpoint_every == 0
                    and (ranks == 1 or world.rank == 0)):
                path = save_checkpoint(model, opt, args.out, history, rng, settings)
                say(f"checkpoint: {path}")
            if stop.requested:
                break

    if finished_weights is None:
        note("interrupted during the first epoch; nothing to save")
        return EXIT_INTERRUPTED
    if ranks > 1 and world.rank != 0:
        return EXIT_OK  # rank 0 writes the outputs
    if not complete:
        restore(model, finished_weights)  # the outputs describe the finished epochs only
    model.save(os.path.join(args.out, "model.npz"))
    write_metrics(history, args.out)
    write_pictures(model, history, data.test_images, args.out)
    speed = f"training speed: {seen / train_seconds:.0f} images/s; " if seen else ""
    say(f"final validation accuracy: {history[-1]['val_accuracy']:.4f}; {speed}"
        f"outputs in {args.out}/")
    if stop.requested:
        note(f"interrupted: saved the {len(history)} finished epoch(s) in {args.out}/")
        return EXIT_INTERRUPTED
    return EXIT_OK


def _make_out(out: str) -> None:
    if os.path.exists(out) and not os.path.isdir(out):
        raise CommandError(f"--out {out}: a file, not a folder")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise CommandError(f"--out {out}: cannot create the folder "
                           f"({e.strerror or e})") from None


if __name__ == "__main__":
    sys.exit(main())
