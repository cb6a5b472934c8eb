"""Reductions along axes: sum, mean, max, min, logsumexp, and the softmax family.

``axis`` is an int, a tuple of ints or None (all axes); ``keepdims`` as in NumPy. The backward of a
reduction broadcasts ``g`` back over the reduced axes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..function import Function
from ..tensor import Tensor
from .broadcast import ShapeError

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
    return g if keepdims or not axes else np.expand_dims(g, axes)


class Sum(Function):
    """y = sum_i x_i over the axes;  dL/dx = g broadcast back over them."""

    @staticmethod
    def forward(ctx, x, *, axes, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        return np.asarray(np.sum(x, axis=axes, keepdims=keepdims))

    @staticmethod
    def backward(ctx, g):
        return np.broadcast_to(expand_back(g, ctx.axes, ctx.keepdims), ctx.shape)


class Mean(Function):
    """y = (1/n) sum_i x_i;  dL/dx = g / n broadcast back."""

    @staticmethod
    def forward(ctx, x, *, axes, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        ctx.n = int(np.prod([x.shape[a] for a in axes])) if axes else 1
        return np.asarray(np.mean(x, axis=axes, keepdims=keepdims))

    @staticmethod
    def backward(ctx, g):
        return np.broadcast_to(expand_back(g, ctx.axes, ctx.keepdims) / g.dtype.type(ctx.n), ctx.shape)


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
    def forward(ctx, x, *, fn, axis):
        return np.asarray(fn(x, axis=axis))


def _reduce(cls: type[Function], x: Tensor, axis: Axis, keepdims: bool) -> Tensor:
    return cls.apply(x, axes=normalize_axis(axis, x.ndim, cls.name or cls.__name__.lower()),
                     keepdims=keepdims)


def sum(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return _reduce(Sum, x, axis, keepdims)


def mean(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return _reduce(Mean, x, axis, keepdims)


def max(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over axes; where several entries tie, each gets an equal share of the gradient."""
    return _reduce(Max, x, axis, keepdims)


def min(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Minimum over axes; where several entries tie, each gets an equal share of the gradient."""
    return _reduce(Min, x, axis, keepdims)


def logsumexp(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return _reduce(LogSumExp, x, axis, keepdims)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return Softmax.apply(x, axis=normalize_axis(axis, x.ndim, "softmax")[0])


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return LogSoftmax.apply(x, axis=normalize_axis(axis, x.ndim, "log_softmax")[0])


def argmax(x: Tensor, axis: int | None = None) -> Tensor:
    return ArgReduce.apply(x, fn=np.argmax, axis=axis)


def argmin(x: Tensor, axis: int | None = None) -> Tensor:
    return ArgReduce.apply(x, fn=np.argmin, axis=axis)


amax, amin = max, min
