"""Reference conv2d (cross-correlation, NCHW): a zero-padded input and one strided slice per kernel
tap. Readable, vectorised over the batch; the oracle for the kernels."""
import numpy as np

__all__ = ["conv2d_forward", "conv2d_backward"]


def _pair(v):
    return (v, v) if np.isscalar(v) else tuple(v)


def _geometry(x, w, stride, padding, dilation):
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    _, _, h, wd = x.shape
    _, _, kh, kw = w.shape
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"output size ({oh}, {ow}) < 1")
    return sh, sw, ph, pw, dh, dw, oh, ow


def _tap(ki, kj, sh, sw, dh, dw, oh, ow):
    """The slice of the padded input that kernel tap (ki, kj) reads for every output position."""
    return (slice(None), slice(None),
            slice(ki * dh, ki * dh + sh * (oh - 1) + 1, sh),
            slice(kj * dw, kj * dw + sw * (ow - 1) + 1, sw))


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1, relu=False):
    """y (N, K, OH, OW) = cross-correlation of x (N, C, H, W) with w (K, C, KH, KW), plus
    b (K,) if given, then max(y, 0) if relu; stride, padding, dilation: an int or a pair."""
    sh, sw, ph, pw, dh, dw, oh, ow = _geometry(x, w, stride, padding, dilation)
    k, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((x.shape[0], k, oh, ow), dtype=x.dtype)
    for ki in range(kh):
        for kj in range(kw):
            patch = xp[_tap(ki, kj, sh, sw, dh, dw, oh, ow)]           # (N, C, OH, OW)
            y += np.einsum("nchw,kc->nkhw", patch, w[:, :, ki, kj])
    if b is not None:
        y += np.reshape(b, (1, k, 1, 1))
    return np.where(y < 0, np.zeros_like(y), y) if relu else y


def conv2d_backward(x, w, dy, stride=1, padding=0, dilation=1, need_dx=True, need_db=True,
                    relu_y=None):
    """(dx (N, C, H, W) or None, dw (K, C, KH, KW), db (K,) or None) from dy (N, K, OH, OW);
    dy is first masked by relu_y > 0 when the forward pass fused a ReLU with output relu_y."""
    if relu_y is not None:  # the fused ReLU's gradient: dy only where its output was positive
        dy = np.where(relu_y > 0, dy, np.zeros_like(dy))
    sh, sw, ph, pw, dh, dw, oh, ow = _geometry(x, w, stride, padding, dilation)
    _, _, kh, kw = w.shape
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp = np.zeros_like(xp)
    dwt = np.zeros_like(w)
    for ki in range(kh):
        for kj in range(kw):
            tap = _tap(ki, kj, sh, sw, dh, dw, oh, ow)
            dwt[:, :, ki, kj] = np.einsum("nkhw,nchw->kc", dy, xp[tap])
            dxp[tap] += np.einsum("nkhw,kc->nchw", dy, w[:, :, ki, kj])
    dx = dxp[:, :, ph:ph + h, pw:pw + wd].copy() if need_dx else None
    db = dy.sum(axis=(0, 2, 3)) if need_db else None
    return dx, dwt, db
