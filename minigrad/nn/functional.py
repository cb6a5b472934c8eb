"""Stateless layers and losses: ``linear``, ``embedding``, ``dropout``, ``softmax``/``log_softmax``,
``mse_loss``, ``cross_entropy``, ``nll_loss``, ``binary_cross_entropy_with_logits``, ``one_hot``.

Losses follow PyTorch's conventions: the class axis is axis 1 (``(N, C)``, ``(C,)`` or
``(N, C, d1, ...)`` logits with ``(N,)``, ``()`` or ``(N, d1, ...)`` integer targets), ``reduction`` is
``"mean"`` (default), ``"sum"`` or ``"none"``, and ``ignore_index`` targets contribute neither loss nor
gradient (``"mean"`` divides by the weight of the non-ignored targets only). The losses that need it
are single fused ops whose derivatives are in their docstrings.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes, ops
from ..creation import default_rng
from ..function import Function
from ..ops.broadcast import ShapeError, describe, lift
from ..tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")

__all__ = [
    "binary_cross_entropy_with_logits", "cross_entropy", "dropout", "embedding", "linear",
    "log_softmax", "mse_loss", "nll_loss", "one_hot", "relu", "sigmoid", "softmax", "tanh",
]


# ---------------------------------------------------------------------------- helpers
def _as_tensor(x: Any, fn: str, what: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (np.ndarray, np.generic, list, tuple, int, float)):
        return Tensor(x)
    raise TypeError(f"{fn}: {what} must be a Tensor or array, got {type(x).__name__}")


def _check_reduction(fn: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _reduce(x: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    return x


def _float_input(x: Any, fn: str, what: str = "input") -> Tensor:
    x = _as_tensor(x, fn, what)
    if not dtypes.is_float(x.dtype):
        raise TypeError(f"{fn}: {what} must be float32 or float64, got {x.dtype}")
    return x


def _match_dtype(y: Any, x: Tensor, fn: str, what: str = "target") -> Tensor:
    """``y`` as a Tensor of ``x``'s float dtype (a constant target is cast; a differentiable one must
    already match)."""
    y = lift(y, x)
    if y.dtype != x.dtype:
        if y.requires_grad:
            raise TypeError(f"{fn}: input is {x.dtype} but {what} is {y.dtype} (and requires grad); "
                            "cast one of them")
        y = Tensor(y.data.astype(x.dtype))
    return y


# ---------------------------------------------------------------------------- layers
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b, with W of shape (out_features, in_features) and b of shape (out_features,)."""
    if weight.ndim != 2:
        raise ShapeError(f"linear: weight must be 2-D (out_features, in_features), got {weight.shape}")
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"linear: input {describe(x)} does not end in in_features={weight.shape[1]} "
                         f"(weight {describe(weight)})")
    y = ops.matmul(x, weight.T)
    if bias is not None:
        if bias.shape != (weight.shape[0],):
            raise ShapeError(f"linear: bias has shape {bias.shape}, expected ({weight.shape[0]},)")
        y = y + bias
    return y


def _check_indices(fn: str, idx: np.ndarray, n: int, what: str, ignore: int | None = None) -> None:
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{fn}: {what} must be an integer array, got dtype {idx.dtype}")
    valid = idx if ignore is None else idx[idx != ignore]
    if valid.size and (valid.min() < 0 or valid.max() >= n):
        bad = valid[(valid < 0) | (valid >= n)][0]
        raise IndexError(f"{fn}: {what} contains {int(bad)}, outside [0, {n})"
                         + (f" (ignore_index={ignore})" if ignore is not None else ""))


def _indices(x: Any, fn: str, what: str) -> np.ndarray:
    arr = x.data if isinstance(x, Tensor) else np.asarray(x)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iu":
        raise TypeError(f"{fn}: {what} must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


class EmbeddingFn(Function):
    """y[..., :] = W[idx[...], :];  dL/dW[k] = sum over positions with idx == k of g (scatter-add),
    except row ``padding_idx`` which gets no gradient."""

    name = "embedding"

    @staticmethod
    def forward(ctx, w, *, idx, padding_idx):
        ctx.idx, ctx.shape, ctx.padding_idx = idx, w.shape, padding_idx
        return w[idx]

    @staticmethod
    def backward(ctx, g):
        gw = np.zeros(ctx.shape, g.dtype)
        np.add.at(gw, ctx.idx.reshape(-1), g.reshape(-1, ctx.shape[1]))
        if ctx.padding_idx is not None:
            gw[ctx.padding_idx] = 0
        return gw


def embedding(idx: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) picked by the integer array ``idx``;
    shape idx.shape + (dim,)."""
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be 2-D (num_embeddings, dim), got {weight.shape}")
    arr = _indices(idx, "embedding", "indices")
    _check_indices("embedding", arr, weight.shape[0], "indices")
    if padding_idx is not None:
        padding_idx = int(padding_idx) % weight.shape[0]
    return EmbeddingFn.apply(weight, idx=arr, padding_idx=padding_idx)


class DropoutFn(Function):
    """y = x * m / (1 - p) with a fixed 0/1 mask m;  dL/dx = g * m / (1 - p)."""

    name = "dropout"

    @staticmethod
    def forward(ctx, x, *, mask):
        ctx.mask = mask
        return x * mask

    @staticmethod
    def backward(ctx, g):
        return g * ctx.mask


def dropout(x: Tensor, p: float = 0.5, training: bool = True,
            rng: np.random.Generator | None = None) -> Tensor:
    """Zero each entry with probability ``p`` and scale the rest by 1/(1-p) (identity when not
    ``training`` or p == 0). The mask is drawn from ``rng`` (default: minigrad's global generator)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    x = _float_input(x, "dropout")
    rng = default_rng() if rng is None else rng
    keep = rng.random(x.shape) >= p
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    mask = (keep * scale).astype(x.dtype)
    return DropoutFn.apply(x, mask=mask)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """e^{x_i} / sum_j e^{x_j} along ``axis`` (shifted by the max: stable for |x| = 1000)."""
    return ops.softmax(x, axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """x_i - log sum_j e^{x_j} along ``axis`` (stable)."""
    return ops.log_softmax(x, axis)


def relu(x: Tensor) -> Tensor:
    return ops.relu(x)


def tanh(x: Tensor) -> Tensor:
    return ops.tanh(x)


def sigmoid(x: Tensor) -> Tensor:
    return ops.sigmoid(x)


def one_hot(idx: Any, num_classes: int = -1, dtype: dtypes.DTypeLike = "float32") -> Tensor:
    """``idx.shape + (num_classes,)`` array with a 1 at each index (no gradient). ``num_classes=-1``
    means ``max(idx) + 1``. Float32 by default (so it mixes with logits); PyTorch's is int64."""
    arr = _indices(idx, "one_hot", "indices")
    if num_classes == -1:
        num_classes = int(arr.max()) + 1 if arr.size else 0
    if num_classes < 0:
        raise ValueError(f"one_hot: num_classes must be >= 0 or -1, got {num_classes}")
    _check_indices("one_hot", arr, num_classes, "indices")
    out = np.zeros((*arr.shape, num_classes), dtypes.resolve(dtype))
    np.put_along_axis(out, arr[..., None], 1, axis=-1)
    return Tensor(out)


# ---------------------------------------------------------------------------- losses
def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002
    """(input - target)^2, reduced by ``reduction``. Shapes must be equal."""
    _check_reduction("mse_loss", reduction)
    x = _float_input(input, "mse_loss")
    y = _match_dtype(target, x, "mse_loss")
    if x.shape != y.shape:
        raise ShapeError(f"mse_loss: input {describe(x)} and target {describe(y)} must have the same shape")
    d = x - y
    return _reduce(d * d, reduction)


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


def _class_loss_args(fn: str, input: Any, target: Any, weight: Any, ignore_index: int,  # noqa: A002
                     reduction: str) -> tuple[Tensor, np.ndarray, np.ndarray | None]:
    _check_reduction(fn, reduction)
    x = _float_input(input, fn)
    t = _indices(target, fn, "target")
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
    _check_indices(fn, t, C, "target", ignore=ignore_index)
    return x, t, _class_weights(fn, weight, C, x.dtype)


def _class_weights(fn: str, weight: Any, C: int, dt: np.dtype) -> np.ndarray | None:
    if weight is None:
        return None
    w = np.asarray(weight.data if isinstance(weight, Tensor) else weight)
    if w.shape != (C,):
        raise ShapeError(f"{fn}: weight must have shape ({C},) (one per class), got {w.shape}")
    return w.astype(dt)


def cross_entropy(input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100,  # noqa: A002
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
        _check_reduction(fn, reduction)
        x = _float_input(input, fn)
        y = _match_dtype(target, x, fn)
        if y.shape != x.shape or x.ndim == 0:
            raise ShapeError(f"{fn}: probability targets {describe(y)} must have the input's shape "
                             f"{describe(x)} (for class indices pass an integer array)")
        C = x.shape[0] if x.ndim == 1 else x.shape[1]
        return SoftCrossEntropy.apply(x, y, weight=_class_weights(fn, weight, C, x.dtype),
                                      smoothing=float(label_smoothing), reduction=reduction)
    x, t, w = _class_loss_args(fn, input, target, weight, ignore_index, reduction)
    return CrossEntropy.apply(x, target=t, weight=w, ignore_index=ignore_index, reduction=reduction,
                              smoothing=float(label_smoothing))


def nll_loss(input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100,  # noqa: A002
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities (e.g. ``log_softmax`` output); same shapes and
    options as ``cross_entropy``. ``nll_loss(log_softmax(x, 1), t) == cross_entropy(x, t)``."""
    x, t, w = _class_loss_args("nll_loss", input, target, weight, ignore_index, reduction)
    return NLLLoss.apply(x, target=t, weight=w, ignore_index=ignore_index, reduction=reduction)


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


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Any = None,  # noqa: A002
                                     reduction: str = "mean", pos_weight: Any = None) -> Tensor:
    """Stable sigmoid + binary cross-entropy: -[y log sigmoid(x) + (1-y) log(1 - sigmoid(x))], times
    the optional elementwise ``weight``; ``pos_weight`` (broadcast along the last axis) weights the
    positive term. input and target must have the same shape."""
    fn = "binary_cross_entropy_with_logits"
    _check_reduction(fn, reduction)
    x = _float_input(input, fn)
    y = _match_dtype(target, x, fn)
    if x.shape != y.shape:
        raise ShapeError(f"{fn}: input {describe(x)} and target {describe(y)} must have the same shape")
    pw = None
    if pos_weight is not None:
        pw = np.asarray(pos_weight.data if isinstance(pos_weight, Tensor) else pos_weight, dtype=x.dtype)
        if not _broadcasts_to(pw.shape, x.shape):
            raise ShapeError(f"{fn}: pos_weight of shape {pw.shape} does not broadcast to the input "
                             f"{x.shape}")
    loss = BCEWithLogits.apply(x, y, pos_weight=pw)
    if weight is not None:
        wt = _match_dtype(weight, x, fn, "weight")
        if not _broadcasts_to(wt.shape, x.shape):
            raise ShapeError(f"{fn}: weight of shape {wt.shape} does not broadcast to the input "
                             f"{x.shape}")
        loss = loss * wt
    return _reduce(loss, reduction)
