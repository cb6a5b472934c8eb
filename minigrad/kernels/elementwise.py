"""Forward kernels of the scalar functions NumPy lacks, on flat (1-D, contiguous) arrays of one float
dtype, writing into ``out``: the sigmoid and softplus, in one pass without overflow. (Derivatives are
not here: every op's derivative is its formula in ``minigrad.ops``.) No ``fastmath``: NaN and inf
propagate as in NumPy.
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


def _softplus_forward(x, out):
    """y = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))."""
    for i in range(x.size):
        v = x[i]
        out[i] = max(v, 0.0) + math.log1p(math.exp(-abs(v)))


__getattr__ = lazy_kernels(globals())
