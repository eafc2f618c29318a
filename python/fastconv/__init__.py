"""fastconv: small, fast, readable C++/CUDA kernels for training convolutional networks."""
from . import ops, reference
from ._runtime import build_info, cuda_available, cuda_status, get_num_threads, set_num_threads

__version__ = build_info()["version"]

__all__ = [
    "build_info",
    "cuda_available",
    "cuda_status",
    "get_num_threads",
    "set_num_threads",
    "ops",
    "reference",
]
