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
from fastconv import _train_data, ops
from fastconv._cli import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, PROG, CommandError,
                           build_parser, error_line, note)
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
        if device == "cuda":
            self._images = fc.to_device(np.ascontiguousarray(images, np.float32))
            self._labels = fc.to_device(np.asarray(labels, np.int64))
        else:
            labels = np.asarray(labels)
            self._images = np.ascontiguousarray(images)
            self._labels = labels.astype(np.int64) if labels.dtype.kind in "iu" else labels
            self._labels = np.ascontiguousarray(self._labels)

    def batch(self, idx: np.ndarray):
        return ops.gather_batch(self._images, idx), ops.gather_batch(self._labels, idx)


def evaluate(model, data: Dataset, batch_size: int = 1000) -> tuple[float, float]:
    """(mean loss, accuracy) with dropout off; the model is switched back afterwards. Correct
    predictions are counted where the data lives: only the count comes back from a GPU."""
    model.set_models(inference=True)
    try:
        total_loss, correct = 0.0, 0
        for start in range(0, data.count, batch_size):
            idx = np.arange(start, min(start + batch_size, data.count))
            x, t = data.batch(idx)
            z = model(x)
            total_loss += float(fc.softmax_cross_entropy(z, t)) * len(idx)
            correct += int(fc.to_host(ops.accuracy_count(z._value, t)))
    finally:
        model.set_models(inference=False)
    return total_loss / data.count, correct / data.count


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def train_epoch(model, opt, data: Dataset, batch_size, rng, desc, stop=None,
                bar: bool = False) -> tuple[float, int, bool]:
    """One pass in a fresh random order, dropping the last partial batch as the tutorial does.
    Returns (mean loss, images seen, finished): finished is False when `stop.requested` ended
    the epoch early. With bar, a tqdm bar on stderr shows the live loss."""
    order = rng.permutation(data.count)
    steps = data.count // batch_size
    progress = None
    if bar:
        from tqdm import tqdm

        progress = tqdm(total=steps, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True)
    total, done = 0.0, 0
    try:
        for j in range(steps):
            x, t = data.batch(order[j * batch_size:(j + 1) * batch_size])
            with model.train():
                loss = fc.softmax_cross_entropy(model(x), t)
            loss.grad().update(opt)
            value = float(loss)
            total, done = total + value, done + 1
            if progress is not None:
                progress.set_description(f"{desc} train loss:{value:6.4f}", refresh=False)
                progress.update()
            if stop is not None and stop.requested:
                break
    finally:
        if progress is not None:
            progress.close()
    return total / max(done, 1), done * batch_size, done == steps


def parse_args(argv=None):
    return build_parser("Train the ReNom tutorial's CNN on MNIST.").parse_args(argv)


def main(argv=None) -> int:
    """The command; returns the exit status (see --help's last lines)."""
    args = parse_args(argv)
    try:
        return _run(args)
    except CommandError as e:
        print(error_line(str(e)), file=sys.stderr)
        return EXIT_FAILED
    except OSError as e:  # writing --out (a full disk, a read-only folder)
        where = f": {e.filename}" if e.filename else ""
        print(error_line(f"{e.strerror or e}{where}"), file=sys.stderr)
        return EXIT_FAILED
    except MemoryError as e:
        print(error_line(f"out of memory ({e}); a smaller --batch-size needs less"),
              file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:  # outside the training loop, or a second Ctrl-C
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run(args) -> int:
    if args.threads is not None:
        fc.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.resume is not None:
        check_readable(args.resume)
    data = _train_data.load(args.data, args.seed, args.limit_train, args.limit_test)
    _train_data.check(data, args.batch_size)
    print(f"data: {data.source}: {len(data.train_images)} train, {len(data.test_images)} "
          f"validation images")
    print(f"device: {device}, threads: {fc.get_num_threads()}, optimizer: {args.optimizer}",
          flush=True)

    np.random.seed(args.seed)  # initial weights and dropout seeds
    rng = np.random.default_rng(args.seed)  # batch order
    train_set = Dataset(data.train_images, data.train_labels, device)
    test_set = Dataset(data.test_images, data.test_labels, device)
    model, opt = tutorial_cnn(), make_optimizer(args.optimizer, args.lr)
    settings = {"optimizer": args.optimizer, "lr": opt.lr, "batch_size": args.batch_size,
                "seed": args.seed, "data": data.source}
    first, history, finished_weights = 0, [], None
    if args.resume is not None:
        first, history, differs = resume(args.resume, model, opt, rng, settings, args.epochs)
        for difference in differs:
            note(f"warning: {difference}; the run will differ from an uninterrupted one")
        print(f"resumed from {args.resume} after epoch {first - 1:03d}", flush=True)
        finished_weights = snapshot(model)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise CommandError(f"--out {args.out}: a file, not a folder")
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        raise CommandError(f"--out {args.out}: cannot create the folder "
                           f"({e.strerror or e})") from None

    seen, train_seconds, complete = 0, 0.0, True
    bar = _stderr_is_terminal()
    with StopOnInterrupt() as stop:
        for epoch in range(first, args.epochs):
            start = time.perf_counter()
            train_loss, count, complete = train_epoch(model, opt, train_set, args.batch_size,
                                                      rng, f"epoch {epoch:03d}", stop, bar)
            if not complete:
                break
            seconds = time.perf_counter() - start
            seen, train_seconds = seen + count, train_seconds + seconds
            val_loss, val_acc = evaluate(model, test_set)
            history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                            "val_accuracy": val_acc, "seconds": seconds,
                            "images_per_second": count / seconds})
            print(f"epoch {epoch:03d} avg loss:{train_loss:6.4f} val loss:{val_loss:6.4f} "
                  f"val accuracy:{val_acc:.4f} ({seconds:.1f} s)", flush=True)
            finished_weights = snapshot(model)
            if args.checkpoint_every and (epoch + 1) % args.checkpoint_every == 0:
                path = save_checkpoint(model, opt, args.out, history, rng, settings)
                print(f"checkpoint: {path}", flush=True)
            if stop.requested:
                break

    if finished_weights is None:
        note("interrupted during the first epoch; nothing to save")
        return EXIT_INTERRUPTED
    if not complete:
        restore(model, finished_weights)  # the outputs describe the finished epochs only
    model.save(os.path.join(args.out, "model.npz"))
    write_metrics(history, args.out)
    write_pictures(model, history, data.test_images, args.out)
    speed = f"training speed: {seen / train_seconds:.0f} images/s; " if seen else ""
    print(f"final validation accuracy: {history[-1]['val_accuracy']:.4f}; {speed}"
          f"outputs in {args.out}/", flush=True)
    if stop.requested:
        note(f"interrupted: saved the {len(history)} finished epoch(s) in {args.out}/")
        return EXIT_INTERRUPTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
