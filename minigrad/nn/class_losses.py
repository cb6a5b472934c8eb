"""The class-axis losses: ``cross_entropy`` (fused log-softmax + NLL, index or probability targets)
and ``nll_loss``, with PyTorch's conventions.

The class axis is axis 1 (``(N, C)``, ``(C,)`` or ``(N, C, d1, ...)`` logits with ``(N,)``, ``()`` or
``(N, d1, ...)`` integer targets), ``reduction`` is ``"mean"`` (default), ``"sum"`` or ``"none"``, and
``ignore_index`` targets contribute neither loss nor gradient (``"mean"`` divides by the weight of the
non-ignored targets only). Each loss is one op whose derivative is in its docstring.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..function import Function
from ..ops.broadcast import ShapeError, describe
from ..tensor import Tensor
from . import _args as A

__all__ = ["cross_entropy", "nll_loss"]


def _class_last(x: np.ndarray) -> np.ndarray:
    """(N, C, d1, ...) -> (N*d1*..., C); (N, C) and (C,) as (N, C) and (1, C)."""
    if x.ndim == 1:
        return x[None, :]
    if x.ndim == 2:
        return x
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _class_back(g2: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if len(shape) <= 2:
        return g2.reshape(shape)
    moved = (shape[0], *shape[2:], shape[1])
    return np.moveaxis(g2.reshape(moved), -1, 1)


def _row_weights(t: np.ndarray, valid: np.ndarray, weight: np.ndarray | None, dt: np.dtype) -> np.ndarray:
    w = valid.astype(dt) if weight is None else np.where(valid, weight[t], 0).astype(dt)
    return w


def _loss_output(ctx: Any, losses: np.ndarray, w: np.ndarray, reduction: str,
                 tshape: tuple[int, ...]) -> np.ndarray:
    ctx.reduction, ctx.tshape = reduction, tshape
    if reduction == "none":
        return losses.reshape(tshape)
    total = losses.sum(dtype=losses.dtype)
    if reduction == "sum":
        return np.asarray(total)
    ctx.denom = denom = w.sum(dtype=losses.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(total / denom)  # 0/0 = nan when every target is ignored (as in PyTorch)


def _row_scale(ctx: Any, g: np.ndarray, w: np.ndarray) -> np.ndarray:
    """dL/dloss_i for each row: w_i * g (sum), w_i * g / sum(w) (mean), w_i * g_i (none)."""
    if ctx.reduction == "none":
        return w * g.reshape(-1)
    if ctx.reduction == "sum":
        return w * g
    if ctx.denom == 0:
        return np.zeros_like(w)  # no target counts, so no gradient flows
    return w * (g / ctx.denom)


def _log_softmax_rows(x2: np.ndarray) -> np.ndarray:
    """log softmax over axis 1 of a 2-D array, shifted by the row max (|x| = 1000 is exact)."""
    m = x2.max(axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(x2.dtype, copy=False)
    shifted = x2 - m
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class CrossEntropy(Function):
    """Fused log-softmax + negative log-likelihood over the class axis, with label smoothing e.
    Per row i with target t_i, p = softmax(x_i), class weights w (all 1 by default), W = sum_k w_k:

        loss_i = (1 - e) w_{t_i} (-log p_{t_i}) + (e / C) sum_j w_j (-log p_j)     (0 for ignored rows)
        dloss_i/dx_ij = (1 - e) w_{t_i} (p_j - [j == t_i]) + (e / C) (W p_j - w_j)

    (for e = 0: w_{t_i} (softmax - onehot)), reduced by sum, mean (divided by sum_i w_{t_i} over
    non-ignored rows, as in PyTorch) or none."""

    name = "cross_entropy"

    @staticmethod
    def forward(ctx, x, *, target, weight, ignore_index, reduction, smoothing=0.0):
        x2 = _class_last(x)
        t = target.reshape(-1)
        valid = t != ignore_index
        ts = np.where(valid, t, 0)
        logp = _log_softmax_rows(x2)
        w = _row_weights(ts, valid, weight, x.dtype)
        picked = logp[np.arange(len(ts)), ts]
        losses = np.where(w != 0, -picked * w, 0).astype(x.dtype, copy=False)
        if smoothing:
            wc = np.ones(x2.shape[1], x.dtype) if weight is None else weight
            smooth = np.where(valid, -(logp * wc).sum(axis=1), 0)
            losses = ((1 - smoothing) * losses + (smoothing / x2.shape[1]) * smooth).astype(x.dtype)
            ctx.wc, ctx.valid = wc, valid
        ctx.logp, ctx.ts, ctx.w, ctx.xshape, ctx.smoothing = logp, ts, w, x.shape, smoothing
        return _loss_output(ctx, losses, w, reduction, target.shape)

    @staticmethod
    def backward(ctx, g):
        e = ctx.smoothing
        r = _row_scale(ctx, g, np.ones_like(ctx.w))  # dL/dloss_i
        gx = np.exp(ctx.logp)
        gx[np.arange(len(ctx.ts)), ctx.ts] -= 1
        gx *= (ctx.w * (1 - e) * r)[:, None]
        if e:
            C = ctx.logp.shape[1]
            p = np.exp(ctx.logp)
            gx += (e / C) * (ctx.valid * r)[:, None] * (ctx.wc.sum() * p - ctx.wc)
        else:
            gx[ctx.w == 0] = 0  # ignored rows: exactly +0 (not -0 from (p - 1) * 0)
        return _class_back(gx.astype(g.dtype, copy=False), ctx.xshape)


class SoftCrossEntropy(Function):
    """Cross-entropy against class probabilities y (same shape as x), smoothed y' = (1 - e) y + e / C,
    class weights w (all 1 by default); per row i with p = softmax(x_i):

        loss_i = -sum_j w_j y'_ij log p_j
        dloss_i/dx_ij = p_j sum_k w_k y'_ik - w_j y'_ij,      dloss_i/dy_ij = -(1 - e) w_j log p_j

    reduced by sum, mean (divided by the number of rows, as in PyTorch) or none."""

    name = "cross_entropy"

    @staticmethod
    def forward(ctx, x, y, *, weight, smoothing, reduction):
        x2, y2 = _class_last(x), _class_last(y)
        C = x2.shape[1]
        logp = _log_softmax_rows(x2)
        wc = np.ones(C, x.dtype) if weight is None else weight
        wy = ((1 - smoothing) * y2 + smoothing / C) * wc
        losses = -(wy * logp).sum(axis=1)
        ctx.logp, ctx.wy, ctx.wc, ctx.e, ctx.xshape = logp, wy, wc, smoothing, x.shape
        ctx.reduction, ctx.n = reduction, len(losses)
        if reduction == "none":
            return losses.reshape(() if x.ndim == 1 else (x.shape[0], *x.shape[2:])).astype(x.dtype)
        total = losses.sum(dtype=x.dtype)
        if reduction == "sum":
            return np.asarray(total)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(total / x.dtype.type(len(losses)))

    @staticmethod
    def backward(ctx, g):
        if ctx.reduction == "none":
            r = g.reshape(-1)
        elif ctx.reduction == "sum":
            r = np.full(ctx.n, g)
        else:
            r = np.full(ctx.n, g / max(ctx.n, 1))
        nx, ny = ctx.needs_input_grad
        gx = gy = None
        if nx:
            p = np.exp(ctx.logp)
            gx = _class_back((r[:, None] * (p * ctx.wy.sum(axis=1, keepdims=True) - ctx.wy)).astype(g.dtype),
                             ctx.xshape)
        if ny:
            gy = _class_back((r[:, None] * (-(1 - ctx.e) * ctx.wc * ctx.logp)).astype(g.dtype), ctx.xshape)
        return gx, gy


class NLLLoss(Function):
    """Negative log-likelihood of log-probabilities x, per row i with target t_i:

        loss_i = -w_{t_i} x_{i t_i}   (0 for ignored rows);   dloss_i/dx_ij = -w_{t_i} [j == t_i]"""

    name = "nll_loss"

    @staticmethod
    def forward(ctx, x, *, target, weight, ignore_index, reduction):
        x2 = _class_last(x)
        t = target.reshape(-1)
        valid = t != ignore_index
        ts = np.where(valid, t, 0)
        w = _row_weights(ts, valid, weight, x.dtype)
        picked = x2[np.arange(len(ts)), ts]
        losses = np.where(w != 0, -picked * w, 0).astype(x.dtype, copy=False)
        ctx.ts, ctx.w, ctx.xshape, ctx.c = ts, w, x.shape, x2.shape
        return _loss_output(ctx, losses, w, reduction, target.shape)

    @staticmethod
    def backward(ctx, g):
        scale = _row_scale(ctx, g, ctx.w)
        gx = np.zeros(ctx.c, g.dtype)
        gx[np.arange(len(ctx.ts)), ctx.ts] = -scale
        return _class_back(gx, ctx.xshape)


def _class_loss_args(fn: str, input: Any, target: Any, weight: Any, ignore_index: int,
                     reduction: str) -> tuple[Tensor, np.ndarray, np.ndarray | None]:
    A.check_reduction(fn, reduction)
    x = A.float_input(input, fn)
    t = A.indices(target, fn, "target")
    if x.ndim == 0:
        raise ShapeError(f"{fn}: input must have a class axis, got a scalar")
    expected = () if x.ndim == 1 else (x.shape[0], *x.shape[2:])
    if t.shape != expected:
        hint = ""
        if x.ndim >= 3 and t.shape == x.shape[:-1]:
            hint = (" (the class axis is axis 1, as in PyTorch; for (..., C) logits use "
                    "input.reshape(-1, C) and target.reshape(-1))")
        raise ShapeError(f"{fn}: input {describe(x)} needs target of shape {expected}, got {t.shape}{hint}")
    C = x.shape[0] if x.ndim == 1 else x.shape[1]
    A.check_indices(fn, t, C, "target", ignore=ignore_index)
    return x, t, _class_weights(fn, weight, C, x.dtype)


def _class_weights(fn: str, weight: Any, C: int, dt: np.dtype) -> np.ndarray | None:
    if weight is None:
        return None
    w = np.asarray(weight.data if isinstance(weight, Tensor) else weight)
    if w.shape != (C,):
        raise ShapeError(f"{fn}: weight must have shape ({C},) (one per class), got {w.shape}")
    return w.astype(dt)


def cross_entropy(input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy from unnormalised logits (PyTorch's ``cross_entropy``).

    input (N, C), (C,) or (N, C, d1, ...) with the class axis 1. ``target`` is either integer class
    indices (N,), () or (N, d1, ...) with values in [0, C) or ``ignore_index``, or float class
    probabilities of the input's shape (which may require grad). Optional per-class ``weight`` (C,)
    and ``label_smoothing`` e in [0, 1] (targets become (1 - e) target + e / C). With index targets
    ``"mean"`` divides by the summed weight of non-ignored targets (nan if there are none, and no
    gradient flows); with probabilities by the number of rows."""
    fn = "cross_entropy"
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{fn}: label_smoothing must be in [0, 1], got {label_smoothing}")
    tdata = target.data if isinstance(target, Tensor) else np.asarray(target)
    if tdata.dtype.kind == "f":
        A.check_reduction(fn, reduction)
        x = A.float_input(input, fn)
        y = A.match_dtype(target, x, fn)
        if y.shape != x.shape or x.ndim == 0:
            raise ShapeError(f"{fn}: probability targets {describe(y)} must have the input's shape "
                             f"{describe(x)} (for class indices pass an integer array)")
        C = x.shape[0] if x.ndim == 1 else x.shape[1]
        return SoftCrossEntropy.apply(x, y, weight=_class_weights(fn, weight, C, x.dtype),
                                      smoothing=float(label_smoothing), reduction=reduction)
    x, t, w = _class_loss_args(fn, input, target, weight, ignore_index, reduction)
    return CrossEntropy.apply(x, target=t, weight=w, ignore_index=ignore_index, reduction=reduction,
                              smoothing=float(label_smoothing))


def nll_loss(input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities (e.g. ``log_softmax`` output); same shapes and
    options as ``cross_entropy``. ``nll_loss(log_softmax(x, 1), t) == cross_entropy(x, t)``."""
    x, t, w = _class_loss_args("nll_loss", input, target, weight, ignore_index, reduction)
    return NLLLoss.apply(x, target=t, weight=w, ignore_index=ignore_index, reduction=reduction)
