"""Norms and moments: ``norm``, ``var``, ``std`` (PyTorch's names and defaults)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..function import Function
from ..tensor import Tensor
from . import reduction as R
from .args import dim_arg, keepdim_arg
from .reduction import Axis, amax, expand_back, mean, normalize_axis


class Norm2(Function):
    """y = sqrt(sum x^2) over the axes;  dL/dx = g x / y, and 0 where y = 0 (the subgradient PyTorch
    uses, so the norm of a zero vector does not give NaN)."""

    name = "norm"

    @staticmethod
    def forward(ctx, x, *, axes, keepdims):
        y = np.sqrt(np.sum(x * x, axis=axes, keepdims=True))
        ctx.x, ctx.y, ctx.axes, ctx.keepdims = x, y, axes, keepdims
        return y if keepdims else np.squeeze(y, axis=axes)

    @staticmethod
    def backward(ctx, g):
        y = ctx.y
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(y > 0, expand_back(g, ctx.axes, ctx.keepdims) / y, 0)
        return (ctx.x * scale).astype(g.dtype, copy=False)


def norm(x: Tensor, p: Any = "fro", dim: Axis = None, keepdim: bool = False, *, axis: Axis = None,
         keepdims: bool | None = None) -> Tensor:
    """The 2-norm (``p=2`` or ``"fro"``), 1-norm or max-norm (``p=inf``) over ``dim`` (all by default)."""
    d = normalize_axis(dim_arg("norm", dim, axis), x.ndim, "norm")
    kd = keepdim_arg("norm", keepdim, keepdims)
    if p in (2, "fro"):
        return Norm2.apply(x, axes=d, keepdims=kd)
    if p == 1:
        return R.sum(abs(x), d, kd)
    if p in (np.inf, "inf"):
        return amax(abs(x), d, kd)
    raise ValueError(f"norm: p must be 1, 2, 'fro' or inf, got {p!r}")


def var(x: Tensor, dim: Axis = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: int | None = None, axis: Axis = None, keepdims: bool | None = None) -> Tensor:
    """Variance ``sum (x - mean)^2 / (n - correction)``; ``correction`` 1 by default (PyTorch's
    unbiased estimate), ``unbiased=False`` means 0."""
    if unbiased is not None and correction is not None:
        raise TypeError("var: pass unbiased= or correction=, not both")
    c = (1 if unbiased in (None, True) else 0) if correction is None else int(correction)
    d = normalize_axis(dim_arg("var", dim, axis), x.ndim, "var")
    kd = keepdim_arg("var", keepdim, keepdims)
    n = math.prod(x.shape[a] for a in d) if d else 1
    dev = x - mean(x, d, True)
    return R.sum(dev * dev, d, kd) / max(n - c, 0)


def std(x: Tensor, dim: Axis = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: int | None = None, axis: Axis = None, keepdims: bool | None = None) -> Tensor:
    """Standard deviation ``sqrt(var)`` (same arguments as ``var``)."""
    return var(x, dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims).sqrt()
