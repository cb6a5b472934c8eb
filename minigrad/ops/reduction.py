"""Reductions along axes: sum, mean, max, min, logsumexp, and the softmax family.

``dim`` (or ``axis``) is an int, a tuple of ints or None (all axes); ``keepdim`` (or
``keepdims``). The backward of a
reduction broadcasts ``g`` back over the reduced axes.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from ..function import Function
from ..tensor import Tensor
from .args import dim_arg, keepdim_arg
from .broadcast import ShapeError, broadcast_view
from .indexing import gather

Axis = int | tuple[int, ...] | None


def normalize_axis(axis: Axis, ndim: int, op: str) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ShapeError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"{op}: repeated axis in {axis} for a tensor with {ndim} dimensions")
    return tuple(out)


def expand_back(g: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """Reinsert reduced axes of size 1 (when keepdims was False) so ``g`` broadcasts against the input."""
    if keepdims or not axes:
        return g
    shape = list(g.shape)
    for a in sorted(axes):  # normalised axes of the input: np.expand_dims's result, without its cost
        shape.insert(a, 1)
    return g.reshape(shape)


class Sum(Function):
    """y = sum_i x_i over the axes;  dL/dx = g broadcast back over them."""

    @staticmethod
    def forward(ctx, x, *, axes, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        return np.asarray(np.sum(x, axis=axes, keepdims=keepdims))

    @staticmethod
    def backward(ctx, g):
        return broadcast_view(expand_back(g, ctx.axes, ctx.keepdims), ctx.shape)


class Mean(Function):
    """y = (1/n) sum_i x_i;  dL/dx = g / n broadcast back."""

    @staticmethod
    def forward(ctx, x, *, axes, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        ctx.n = n = math.prod(x.shape[a] for a in axes) if axes else 1
        if x.dtype.kind != "f" or not n:
            return np.asarray(np.mean(x, axis=axes, keepdims=keepdims))
        # np.mean's own steps for float32/64 (sum, then divide by the count as intp), without its
        # Python-level wrapper (~5 us, a tenth of a tiny train step's loss)
        y = np.add.reduce(x, axis=axes, keepdims=keepdims)
        if type(y) is np.ndarray:
            return np.true_divide(y, np.intp(n), out=y, casting="unsafe")
        return np.asarray(y.dtype.type(y / np.intp(n)))

    @staticmethod
    def backward(ctx, g):
        return broadcast_view(expand_back(g, ctx.axes, ctx.keepdims) / g.dtype.type(ctx.n), ctx.shape)


class _Extremum(Function):
    """y = max/min x over the axes;  dL/dx_i = g * [x_i == y] / (number of ties): ties share evenly
    (the convention of HIPS autograd and JAX's ``jnp.max``)."""

    reduce: Any = None

    @classmethod
    def forward(cls, ctx, x, *, axes, keepdims):
        if any(x.shape[a] == 0 for a in axes):
            raise ShapeError(f"{cls.name}: reduction over an empty axis of a tensor of shape {x.shape}")
        y = cls.reduce(x, axis=axes, keepdims=True)
        ctx.x, ctx.y, ctx.axes, ctx.keepdims = x, y, axes, keepdims
        return np.asarray(y if keepdims else np.squeeze(y, axis=axes))

    @staticmethod
    def backward(ctx, g):
        mask = ctx.x == ctx.y
        count = mask.sum(axis=ctx.axes, keepdims=True)
        return (expand_back(g, ctx.axes, ctx.keepdims) * mask / count).astype(g.dtype, copy=False)


class Max(_Extremum):
    __doc__ = _Extremum.__doc__
    name = "max"
    reduce = staticmethod(np.max)


class Min(_Extremum):
    __doc__ = _Extremum.__doc__
    name = "min"
    reduce = staticmethod(np.min)


def _lse(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """log sum exp x over axes (keepdims), shifted by the max so |x| = 1000 does not overflow."""
    m = np.max(x, axis=axes, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(x.dtype, copy=False)
    with np.errstate(divide="ignore"):
        return m + np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True))


class LogSumExp(Function):
    """y = log sum_i e^{x_i};  dL/dx = g * softmax(x)."""

    @staticmethod
    def forward(ctx, x, *, axes, keepdims):
        y = _lse(x, axes)
        ctx.x, ctx.y, ctx.axes, ctx.keepdims = x, y, axes, keepdims
        return y if keepdims else np.squeeze(y, axis=axes)

    @staticmethod
    def backward(ctx, g):
        return expand_back(g, ctx.axes, ctx.keepdims) * np.exp(ctx.x - ctx.y)


class Softmax(Function):
    """y_i = e^{x_i} / sum_j e^{x_j};  dL/dx = y * (g - sum_j g_j y_j)."""

    @staticmethod
    def forward(ctx, x, *, axis):
        y = np.exp(x - _lse(x, (axis,)))
        ctx.y, ctx.axis = y, axis
        return y

    @staticmethod
    def backward(ctx, g):
        y = ctx.y
        return y * (g - np.sum(g * y, axis=ctx.axis, keepdims=True))


class LogSoftmax(Function):
    """y_i = x_i - log sum_j e^{x_j};  dL/dx = g - softmax(x) * sum_j g_j."""

    @staticmethod
    def forward(ctx, x, *, axis):
        y = x - _lse(x, (axis,))
        ctx.y, ctx.axis = y, axis
        return y

    @staticmethod
    def backward(ctx, g):
        return g - np.exp(ctx.y) * np.sum(g, axis=ctx.axis, keepdims=True)


class ArgReduce(Function):
    """Index of the max/min along an axis (int64, no gradient)."""

    differentiable = False

    @staticmethod
    def forward(ctx, x, *, fn, axis, keepdims=False):
        return np.asarray(fn(x, axis=axis, keepdims=keepdims)).astype(np.int64, copy=False)


def _reduce(cls: type[Function], x: Tensor, axis: Axis, keepdims: bool) -> Tensor:
    return cls.apply(x, axes=normalize_axis(axis, x.ndim, cls.name or cls.__name__.lower()),
                     keepdims=keepdims)


class MaxMin(NamedTuple):
    """What ``max(x, dim)`` / ``min(x, dim)`` return, as ``torch.return_types.max``."""

    values: Tensor
    indices: Tensor


def sum(x: Tensor, dim: Axis = None, keepdim: bool = False, *, axis: Axis = None,  # noqa: A001
        keepdims: bool | None = None) -> Tensor:
    """Sum over ``dim`` (an int, a tuple, or None for all)."""
    return _reduce(Sum, x, dim_arg("sum", dim, axis), keepdim_arg("sum", keepdim, keepdims))


def mean(x: Tensor, dim: Axis = None, keepdim: bool = False, *, axis: Axis = None,
         keepdims: bool | None = None) -> Tensor:
    return _reduce(Mean, x, dim_arg("mean", dim, axis), keepdim_arg("mean", keepdim, keepdims))


def amax(x: Tensor, dim: Axis = None, keepdim: bool = False, *, axis: Axis = None,
         keepdims: bool | None = None) -> Tensor:
    """Maximum over axes; where several entries tie, each gets an equal share of the gradient."""
    return _reduce(Max, x, dim_arg("amax", dim, axis), keepdim_arg("amax", keepdim, keepdims))


def amin(x: Tensor, dim: Axis = None, keepdim: bool = False, *, axis: Axis = None,
         keepdims: bool | None = None) -> Tensor:
    """Minimum over axes; where several entries tie, each gets an equal share of the gradient."""
    return _reduce(Min, x, dim_arg("amin", dim, axis), keepdim_arg("amin", keepdim, keepdims))


def _extremum(op: str, pick: Any, whole: Any, x: Tensor, dim: Any, keepdim: bool) -> Tensor | MaxMin:
    if dim is None:
        return whole(x)
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: dim must be one int (for several axes use a{op}), got {dim!r}")
    d = normalize_axis(dim, x.ndim, op)[0]
    idx = ArgReduce.apply(x, fn=pick, axis=d, keepdims=True)
    values = gather(x, d, idx)
    if not keepdim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return MaxMin(values, idx)


def max(x: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None,  # noqa: A001
        keepdims: bool | None = None) -> Tensor | MaxMin:
    """PyTorch's ``max``: without ``dim`` the largest entry (ties share the gradient, like ``amax``);
    with ``dim`` the named tuple ``(values, indices)``, the gradient going to the returned index."""
    return _extremum("max", np.argmax, lambda t: _reduce(Max, t, None, False), x,
                     dim_arg("max", dim, axis), keepdim_arg("max", keepdim, keepdims))


def min(x: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None,  # noqa: A001
        keepdims: bool | None = None) -> Tensor | MaxMin:
    """PyTorch's ``min`` (see ``max``)."""
    return _extremum("min", np.argmin, lambda t: _reduce(Min, t, None, False), x,
                     dim_arg("min", dim, axis), keepdim_arg("min", keepdim, keepdims))


def logsumexp(x: Tensor, dim: Axis = None, keepdim: bool = False, *, axis: Axis = None,
              keepdims: bool | None = None) -> Tensor:
    return _reduce(LogSumExp, x, dim_arg("logsumexp", dim, axis),
                   keepdim_arg("logsumexp", keepdim, keepdims))


def softmax(x: Tensor, dim: int = -1, *, axis: int | None = None) -> Tensor:
    return Softmax.apply(x, axis=normalize_axis(dim if axis is None else axis, x.ndim, "softmax")[0])


def log_softmax(x: Tensor, dim: int = -1, *, axis: int | None = None) -> Tensor:
    return LogSoftmax.apply(x, axis=normalize_axis(dim if axis is None else axis, x.ndim,
                                                   "log_softmax")[0])


def argmax(x: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None,
           keepdims: bool | None = None) -> Tensor:
    """Index of the largest entry (of the flattened tensor when ``dim`` is None), int64."""
    return ArgReduce.apply(x, fn=np.argmax, axis=dim_arg("argmax", dim, axis),
                           keepdims=keepdim_arg("argmax", keepdim, keepdims))


def argmin(x: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None,
           keepdims: bool | None = None) -> Tensor:
    return ArgReduce.apply(x, fn=np.argmin, axis=dim_arg("argmin", dim, axis),
                           keepdims=keepdim_arg("argmin", keepdim, keepdims))


class CumSum(Function):
    """y_i = sum_{j <= i} x_j along an axis;  dL/dx_j = sum_{i >= j} g_i (a reversed cumulative sum)."""

    name = "cumsum"

    @staticmethod
    def forward(ctx, x, *, axis):
        ctx.axis = axis
        return np.cumsum(x, axis=axis)

    @staticmethod
    def backward(ctx, g):
        a = ctx.axis
        return np.flip(np.cumsum(np.flip(g, a), axis=a), a)


def cumsum(x: Tensor, dim: int, *, axis: int | None = None) -> Tensor:
    """Cumulative sum along ``dim``."""
    return CumSum.apply(x, axis=normalize_axis(dim if axis is None else axis, x.ndim, "cumsum")[0])
