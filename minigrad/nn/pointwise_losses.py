"""Elementwise losses: ``mse_loss``, ``l1_loss``, ``binary_cross_entropy`` (of probabilities) and
``binary_cross_entropy_with_logits``, with PyTorch's names, options and edge cases.

Input and target must have the same shape; ``reduction`` is ``"mean"`` (default), ``"sum"`` or
``"none"``. A target that requires grad gets its gradient too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _state
from ..function import Function
from ..ops.broadcast import ShapeError
from ..tensor import Tensor
from . import _args as A

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "l1_loss", "mse_loss"]

#: PyTorch's floor for log(p) in ``binary_cross_entropy`` and for p (1 - p) in its derivative.
LOG_FLOOR = -100.0
BCE_EPS = 1e-12


def _pair(fn: str, input: Any, target: Any, reduction: str) -> tuple[Tensor, Tensor]:
    A.check_reduction(fn, reduction)
    x = A.float_input(input, fn)
    y = A.match_dtype(target, x, fn)
    A.same_shape(fn, x, y)
    return x, y


def _weighted(fn: str, loss: Tensor, weight: Any, x: Tensor) -> Tensor:
    if weight is None:
        return loss
    wt = A.match_dtype(weight, x, fn, "weight")
    if not A.broadcasts_to(wt.shape, x.shape):
        raise ShapeError(f"{fn}: weight of shape {wt.shape} does not broadcast to the input {x.shape}")
    return loss * wt


class SquaredError(Function):
    """The summed or mean squared error as ONE node (as PyTorch's fused ``mse_loss``), n = x.size for
    the mean, 1 for the sum:

        loss = (1/n) sum_i (x_i - y_i)^2;   dloss/dx = 2 (x - y) g / n,   dloss/dy = -dloss/dx

    with the same bits as ``((x - y) * (x - y)).mean()`` (or ``.sum()``) and its backward. It saves
    d = x - y for the backward (one array of x's size, as the composite's saved d; recomputing it
    there cost a pass over x and y: ~20 us of a small RNN's train step) and squares it into a
    temporary."""

    name = "mse_loss"

    @staticmethod
    def forward(ctx, x, y, *, mean):
        d = ctx.d = np.subtract(x, y)
        ctx.n = d.size if mean else 1
        total = np.add.reduce(np.multiply(d, d), axis=None)
        if not mean:
            return np.asarray(total)
        if d.size == 0:  # 0/0 = nan, as the composite's mean (errstate costs ~1.7 us: only here)
            with np.errstate(invalid="ignore"):
                return np.asarray(total.dtype.type(total / np.intp(0)))
        return np.asarray(total.dtype.type(total / np.intp(d.size)))

    @staticmethod
    def backward(ctx, g):
        dx = np.multiply(ctx.d, g / g.dtype.type(ctx.n))
        dx += dx  # d s + d s, as the composite adds the two sides of d * d (2 (d s) rounds alike)
        return dx, (-dx if ctx.needs_input_grad[1] else None)


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """(x - y)^2 elementwise, reduced by ``reduction`` (one node for "mean" and "sum")."""
    x, y = _pair("mse_loss", input, target, reduction)
    if reduction != "none" and _state.tracer is None:  # a compiler's trace sees the primitive ops
        return SquaredError.apply(x, y, mean=reduction == "mean")
    d = x - y
    return A.reduce(d * d, reduction)


def l1_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """|x - y| elementwise, reduced by ``reduction``; d/dx = sign(x - y), 0 where x == y (PyTorch)."""
    x, y = _pair("l1_loss", input, target, reduction)
    return A.reduce((x - y).abs(), reduction)


class BinaryCrossEntropy(Function):
    """Binary cross-entropy of probabilities x in [0, 1] against targets y, with PyTorch's clamps
    (log terms floored at -100, so x = 0 or 1 gives a finite loss):

        loss = -(y max(log x, -100) + (1 - y) max(log(1 - x), -100))
        dloss/dx = (x - y) / max(x (1 - x), 1e-12)
        dloss/dy = max(log(1 - x), -100) - max(log x, -100)"""

    name = "binary_cross_entropy"

    @staticmethod
    def forward(ctx, x, y):
        with np.errstate(divide="ignore"):
            lx = np.maximum(np.log(x), LOG_FLOOR)
            l1x = np.maximum(np.log1p(-x), LOG_FLOOR)
        ctx.x, ctx.y, ctx.lx, ctx.l1x = x, y, lx, l1x
        return (-(y * lx + (1 - y) * l1x)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.x, ctx.y
        nx, ny = ctx.needs_input_grad
        gx = gy = None
        if nx:
            gx = (g * (x - y) / np.maximum(x * (1 - x), BCE_EPS)).astype(x.dtype, copy=False)
        if ny:
            gy = (g * (ctx.l1x - ctx.lx)).astype(y.dtype, copy=False)
        return gx, gy


def binary_cross_entropy(input: Tensor, target: Any, weight: Any = None,
                         reduction: str = "mean") -> Tensor:
    """-w [y log x + (1 - y) log(1 - x)] for probabilities x (e.g. a sigmoid's output), log terms
    floored at -100 as in PyTorch; ``weight`` broadcasts to the input. An x outside [0, 1] (or NaN) is a
    ``ValueError``. Prefer ``binary_cross_entropy_with_logits`` on logits: it is exact for any x."""
    fn = "binary_cross_entropy"
    x, y = _pair(fn, input, target, reduction)
    ok = (x.data >= 0) & (x.data <= 1)
    if not ok.all():
        bad = x.data[~ok].flat[0]
        raise ValueError(f"{fn}: every input must be a probability in [0, 1], got {bad} (for logits use "
                         "binary_cross_entropy_with_logits)")
    return A.reduce(_weighted(fn, BinaryCrossEntropy.apply(x, y), weight, x), reduction)


class BCEWithLogits(Function):
    """Binary cross-entropy of logits x against targets y in [0, 1], with positive-class weight p
    (l = 1 + (p - 1) y):

        loss = (1 - y) x + l * softplus(-x) = (1 - y) x - l min(x, 0) + l log(1 + e^{-|x|})
        dloss/dx = (1 - y) - l * sigmoid(-x)     (= sigmoid(x) - y when p = 1)
        dloss/dy = -x + (p - 1) * softplus(-x)

    written so that no exp overflows for any x."""

    name = "binary_cross_entropy_with_logits"

    @staticmethod
    def forward(ctx, x, y, *, pos_weight):
        lw = 1 if pos_weight is None else 1 + (pos_weight - 1) * y
        tail = np.log1p(np.exp(-np.abs(x)))  # softplus(-x) = max(-x, 0) + tail
        ctx.x, ctx.y, ctx.lw, ctx.pw = x, y, lw, pos_weight
        ctx.sp = np.maximum(-x, 0) + tail
        # the linear parts are combined first, so e.g. x = -30, y = 0 gives log1p(e^-30), not 0
        return ((1 - y) * x - lw * np.minimum(x, 0) + lw * tail).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.x, ctx.y
        nx, ny = ctx.needs_input_grad
        gx = gy = None
        if nx:
            sig_neg = np.exp(-np.logaddexp(0, x))  # sigmoid(-x)
            gx = (g * ((1 - y) - ctx.lw * sig_neg)).astype(x.dtype, copy=False)
        if ny:
            dy = -x if ctx.pw is None else -x + (ctx.pw - 1) * ctx.sp
            gy = (g * dy).astype(y.dtype, copy=False)
        return gx, gy


def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Any = None,
                                     reduction: str = "mean", pos_weight: Any = None) -> Tensor:
    """Stable sigmoid + binary cross-entropy: -[y log sigmoid(x) + (1-y) log(1 - sigmoid(x))], times
    the optional elementwise ``weight``; ``pos_weight`` (broadcast along the last axis) weights the
    positive term. input and target must have the same shape."""
    fn = "binary_cross_entropy_with_logits"
    x, y = _pair(fn, input, target, reduction)
    pw = None
    if pos_weight is not None:
        pw = np.asarray(pos_weight.data if isinstance(pos_weight, Tensor) else pos_weight, dtype=x.dtype)
        if not A.broadcasts_to(pw.shape, x.shape):
            raise ShapeError(f"{fn}: pos_weight of shape {pw.shape} does not broadcast to the input "
                             f"{x.shape}")
    return A.reduce(_weighted(fn, BCEWithLogits.apply(x, y, pos_weight=pw), weight, x), reduction)
