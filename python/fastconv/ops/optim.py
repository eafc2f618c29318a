"""In-place parameter updates: SGD (momentum, Nesterov, weight decay) and Adam.

All arrays share one shape (any) and dtype; param and the optimiser state (velocity, m, v) are
updated in place and must be writeable, C-contiguous arrays. Each element's update is independent,
so results do not depend on the thread count.

The *_multi functions update many parameters in one call (on the GPU, one kernel launch per 32
parameters), each exactly as the single-tensor function would, bit for bit. Their arrays come in
lists of one entry per parameter, all on one backend (numpy, or device arrays) and of one dtype;
empty lists are a no-op. Errors name the list and the index ("grads[3] must have the shape of
params[3] (2, 3); got (3, 2)"), and every check runs before any array is written.

No two arrays of a call may share memory (a ValueError names the pair), since one's update would
feed another's; the one exception is grad being param itself, which is well defined (each element
reads its gradient before its update writes it). Arrays of any other dtype than float32/float64,
integers included, are a TypeError: this layer does not cast.
"""
from __future__ import annotations

from .._native import C
from ._args import backend

__all__ = ["sgd_update", "adam_update", "sgd_update_multi", "adam_update_multi",
           "adam_bias_corrections"]


def sgd_update(param, grad, velocity=None, lr=0.01, momentum=0.0, nesterov=False,
               weight_decay=0.0) -> None:
    """One SGD step, in place:

        g = grad + weight_decay * param
        if momentum:  v = momentum * v + g;  step = g + momentum * v if nesterov else v
        else:         step = g
        param -= lr * step

    velocity (v) is required when momentum != 0 (start it at zeros); nesterov needs momentum > 0.
    """
    backend(param, "param").sgd_update(param, grad, velocity, lr, momentum, nesterov,
                                       weight_decay)


def adam_update(param, grad, m, v, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                weight_decay=0.0) -> None:
    """One Adam step, in place; step is the 1-based count of this update (int >= 1):

        g = grad + weight_decay * param
        m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g**2
        param -= lr * (m / (1 - beta1**step)) / (sqrt(v / (1 - beta2**step)) + eps)

    m and v start at zeros.
    """
    backend(param, "param").adam_update(param, grad, m, v, step, lr, beta1, beta2, eps,
                                        weight_decay)


def _multi_backend(params):
    """The kernel module for params[0]; the CPU's (which checks the lists) for anything else."""
    if isinstance(params, (list, tuple)) and params:
        return backend(params[0], "params[0]")
    return C


def sgd_update_multi(params, grads, velocities=None, lr=0.01, momentum=0.0, nesterov=False,
                     weight_decays=None) -> None:
    """sgd_update on each parameter in turn, in one call: params, grads (and velocities, required
    when momentum != 0) are lists of one array per parameter; weight_decays is a list of one
    float per parameter (None: 0 for all). lr, momentum and nesterov are shared."""
    _multi_backend(params).sgd_update_multi(params, grads, velocities, lr, momentum, nesterov,
                                            weight_decays)


def adam_update_multi(params, grads, ms, vs, steps, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                      weight_decays=None, corrections=None) -> None:
    """adam_update on each parameter in turn, in one call: params, grads, ms, vs are lists of one
    array per parameter, steps a list of their 1-based step counts (ints >= 1), weight_decays a
    list of one float per parameter (None: 0 for all). lr, beta1, beta2 and eps are shared.

    corrections (GPU only; None elsewhere, and by default) is a float32 device array of shape
    (len(params), 2) whose row i holds parameter i's bias corrections (1 - beta1**t, 1 - beta2**t)
    as adam_bias_corrections makes them. The kernel reads them from device memory when it runs,
    in place of forming them from steps on the host (steps are still checked, not used for them),
    so a launch captured in a CUDA graph follows the values written there before each replay.
    The values are taken as they are (nothing on the device is checked); with the rows of
    adam_bias_corrections(steps, beta1, beta2) the update equals the call without corrections
    bit for bit. It must not share memory with any param, m or v (a ValueError names the pair).
    """
    _multi_backend(params).adam_update_multi(params, grads, ms, vs, steps, lr, beta1, beta2, eps,
                                             weight_decays, corrections)


def adam_bias_corrections(steps, beta1=0.9, beta2=0.999):
    """Adam's bias corrections for each step count: a float32 numpy array of shape
    (len(steps), 2) with row i = (1 - beta1**steps[i], 1 - beta2**steps[i]), each formed in double
    and rounded once to float32 by the same C++ code as the updates' own, so the rows are bit for
    bit what adam_update_multi forms from steps (what its `corrections` expects). steps is a list
    or tuple of ints >= 1; beta1, beta2 in [0, 1), checked as adam_update checks them."""
    return C.adam_bias_corrections(steps, beta1, beta2)
