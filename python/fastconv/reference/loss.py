"""Reference softmax cross-entropy, in the same logsumexp form as the kernels."""
import numpy as np

__all__ = [
    "softmax_cross_entropy_forward",
    "softmax_cross_entropy_backward",
    "softmax_cross_entropy_forward_backward",
]


def _dense_targets(z, t):
    t = np.asarray(t)
    if t.ndim == 1:
        if t.dtype.kind not in "iu":
            raise TypeError("t must hold integer labels when it is (N,)")
        onehot = np.zeros_like(z)
        onehot[np.arange(z.shape[0]), t] = 1
        return onehot
    return t.astype(z.dtype)


def softmax_cross_entropy_forward(z, t):
    """The mean over rows of the cross-entropy of softmax(z) for z (N, classes) against t:
    (N,) integer labels or (N, classes) target weights; a scalar array in z's dtype."""
    t = _dense_targets(z, t)
    m = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    # Zero weights contribute nothing, even where m - z is inf (a -inf logit off the target).
    with np.errstate(invalid="ignore"):
        terms = np.where(t == 0, 0, t * ((m - z) + lse))
    return np.asarray(terms.sum(axis=1).mean(), dtype=z.dtype)


def softmax_cross_entropy_backward(z, t, dloss=1.0):
    """dz (N, classes) = dloss * (sum(t) * softmax(z) - t) / N per row, for the same z and t
    as the forward pass."""
    t = _dense_targets(z, t)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    softmax = e / e.sum(axis=1, keepdims=True)
    return (t.sum(axis=1, keepdims=True) * softmax - t) * (dloss / z.shape[0])


def softmax_cross_entropy_forward_backward(z, t, dloss=1.0):
    """(forward, backward) of the same z and t."""
    return softmax_cross_entropy_forward(z, t), softmax_cross_entropy_backward(z, t, dloss)
