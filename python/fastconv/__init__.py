"""fastconv: small, fast, readable C++/CUDA kernels for training convolutional networks.

The API follows ReNom's: `fc.Sequential([fc.Conv2d(...), ...])`, `with model.train():`,
`loss.grad().update(fc.Sgd(...))`.
"""
from . import _native, datasets, ops, reference, viz
from ._runtime import (
    build_info,
    conv_algorithm,
    conv_autotune,
    cuda_available,
    cuda_status,
    gemm_epilogues,
    get_num_threads,
    is_cuda_active,
    set_conv_algorithm,
    set_conv_autotune,
    set_cuda_active,
    set_gemm_epilogues,
    set_num_threads,
    set_tf32,
    tf32,
)
from .device import is_device_array, synchronize, to_device, to_host
from .graphs import GraphStep, graph_step
from .autograd import Grads, Node, Variable
from .functional import (
    average_pool2d,
    conv2d,
    conv2d_relu_max_pool2d,
    dense,
    dropout,
    flatten,
    max_pool2d,
    relu,
    softmax_cross_entropy,
)
from .initializers import Gaussian, GlorotNormal, GlorotUniform, HeNormal
from .layers import (
    AveragePool2d,
    Conv2d,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool2d,
    Relu,
)
from .optimizers import Adam, Sgd
from .sequential import Sequential

__version__ = _native.C.build_info()["version"]
