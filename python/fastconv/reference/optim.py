"""Reference SGD and Adam: the formulas of fastconv.ops.optim, line by line, updating in place.

Arithmetic runs in the arrays' dtype (numpy 2 keeps float32 when combined with Python floats);
scalars such as 1 - beta1**step are Python floats (double), as in the kernels.
"""
import numpy as np

__all__ = ["sgd_update", "adam_update", "adam_bias_corrections"]


def sgd_update(param, grad, velocity=None, lr=0.01, momentum=0.0, nesterov=False,
               weight_decay=0.0):
    """One SGD step on param in place (any shape): weight decay added to grad, then momentum
    (velocity updated in place, Nesterov optional) and param -= lr * step."""
    g = grad + weight_decay * param
    if momentum:
        velocity[...] = momentum * velocity + g
        step = g + momentum * velocity if nesterov else velocity
    else:
        step = g
    param -= lr * step


def adam_update(param, grad, m, v, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                weight_decay=0.0):
    """One Adam step on param in place (any shape): moments m and v updated in place, bias-
    corrected with `step` (counted from 1); weight decay added to grad first."""
    g = grad + weight_decay * param
    m[...] = beta1 * m + (1 - beta1) * g
    v[...] = beta2 * v + (1 - beta2) * (g * g)
    m_hat = m / (1 - beta1**step)
    v_hat = v / (1 - beta2**step)
    param -= lr * m_hat / (np.sqrt(v_hat) + eps)


def adam_bias_corrections(steps, beta1=0.9, beta2=0.999):
    """Rows (1 - beta1**step, 1 - beta2**step), one per step, in double: shape (len(steps), 2)."""
    return np.array([[1 - beta1**t, 1 - beta2**t] for t in steps], np.float64).reshape(-1, 2)
