"""Elementwise kernels on flat (1-D, contiguous) arrays of one float dtype, writing into ``out``.

Forward kernels compute a nonlinearity in one pass without overflow; backward kernels fuse the
vector-Jacobian product (e.g. ``g * y * (1 - y)`` for the sigmoid) into one pass with no temporaries.
No ``fastmath``: NaN and inf must propagate as in NumPy.
"""

from __future__ import annotations

import math

from ._jit import lazy_kernels


def _sigmoid_forward(x, out):
    """y = 1 / (1 + exp(-x)), evaluated as exp(x) / (1 + exp(x)) for x < 0 so nothing overflows."""
    for i in range(x.size):
        v = x[i]
        if v >= 0:
            out[i] = 1.0 / (1.0 + math.exp(-v))
        else:
            e = math.exp(v)
            out[i] = e / (1.0 + e)


def _sigmoid_backward(g, y, out):
    """dL/dx = g * y * (1 - y), from the saved output y."""
    for i in range(g.size):
        out[i] = g[i] * y[i] * (1.0 - y[i])


def _tanh_backward(g, y, out):
    """dL/dx = g * (1 - y^2), from the saved output y."""
    for i in range(g.size):
        out[i] = g[i] * (1.0 - y[i] * y[i])


def _relu_backward(g, x, out):
    """dL/dx = g * [x > 0]  (relu'(0) = 0)."""
    for i in range(g.size):
        out[i] = g[i] if x[i] > 0 else 0.0


def _softplus_forward(x, out):
    """y = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))."""
    for i in range(x.size):
        v = x[i]
        out[i] = max(v, 0.0) + math.log1p(math.exp(-abs(v)))


def _softplus_backward(g, x, out):
    """dL/dx = g * sigmoid(x)."""
    for i in range(g.size):
        v = x[i]
        if v >= 0:
            s = 1.0 / (1.0 + math.exp(-v))
        else:
            e = math.exp(v)
            s = e / (1.0 + e)
        out[i] = g[i] * s


def _abs_backward(g, x, out):
    """dL/dx = g * sign(x)  (abs'(0) = 0; a NaN x gives NaN, as NumPy's g * sign(x))."""
    for i in range(g.size):
        v = x[i]
        out[i] = g[i] if v > 0 else (-g[i] if v < 0 else g[i] * (0.0 * v))


def _clip_backward(g, x, lo, hi, out):
    """dL/dx = g where lo <= x <= hi, else 0 (the boundary passes the gradient, as in PyTorch)."""
    for i in range(g.size):
        v = x[i]
        out[i] = g[i] if (v >= lo and v <= hi) else 0.0


__getattr__ = lazy_kernels(globals())
