"""In-place parameter updates: SGD (momentum, Nesterov, weight decay) and Adam.

All arrays share one shape (any) and dtype; param and the optimiser state (velocity, m, v) are
updated in place and must be writeable, C-contiguous arrays. Each element's update is independent,
so results do not depend on the thread count.

No two arrays of a call may share memory (a ValueError names the pair), since one's update would
feed another's; the one exception is grad being param itself, which is well defined (each element
reads its gradient before its update writes it). Arrays of any other dtype than float32/float64,
integers included, are a TypeError: this layer does not cast.
"""
from __future__ import annotations

from ._args import backend

__all__ = ["sgd_update", "adam_update"]


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
