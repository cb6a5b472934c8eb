"""Elementwise functions: exp, log, sqrt, abs, tanh, sigmoid, relu, softplus, maximum, minimum, clip,
where, comparisons and dtype casts. Each pointwise op is its scalar formulas (``ops.pointwise``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from ..function import Function
from ..tensor import Tensor
from .broadcast import ShapeError, binary, describe, lift
from .pointwise import Pointwise


class Exp(Pointwise):
    """y = e^x;  dL/dx = g * y."""

    out = "exp(x)"
    grads = ("g * out",)


class Log(Pointwise):
    """y = ln x;  dL/dx = g / x."""

    out = "log(x)"
    grads = ("g / x",)


class Sin(Pointwise):
    """y = sin x;  dL/dx = g cos x."""

    out = "sin(x)"
    grads = ("g * cos(x)",)


class Cos(Pointwise):
    """y = cos x;  dL/dx = -g sin x."""

    out = "cos(x)"
    grads = ("-g * sin(x)",)


class Sqrt(Pointwise):
    """y = sqrt(x);  dL/dx = g / (2 y)."""

    out = "sqrt(x)"
    grads = ("g / (2 * out)",)


class Abs(Pointwise):
    """y = |x|;  dL/dx = g * sign(x), with abs'(0) = 0 (as in PyTorch, JAX and autograd)."""

    out = "abs(x)"
    grads = ("g * sign(x)",)


class Tanh(Pointwise):
    """y = tanh x;  dL/dx = g * (1 - y^2)."""

    out = "tanh(x)"
    grads = ("g * (1 - out * out)",)


class Sigmoid(Pointwise):
    """y = 1 / (1 + e^-x) (never overflowing);  dL/dx = g * y * (1 - y)."""

    out = "sigmoid(x)"
    grads = ("g * out * (1 - out)",)


class Relu(Pointwise):
    """y = max(x, 0);  dL/dx = g * [x > 0], with relu'(0) = 0."""

    out = "maximum(x, 0)"
    grads = ("where(x > 0, g, 0)",)


class Softplus(Pointwise):
    """y = log(1 + e^x) = max(x, 0) + log1p(e^-|x|);  dL/dx = g * sigmoid(x)."""

    out = "softplus(x)"
    grads = ("g * sigmoid(x)",)


class Clip(Pointwise):
    """y = min(max(x, lo), hi);  dL/dx = g * [lo <= x <= hi] (the boundary passes the gradient)."""

    params = ("lo", "hi")
    out = "minimum(maximum(x, lo), hi)"
    grads = ("where((x >= lo) & (x <= hi), g, 0)",)


class Maximum(Pointwise):
    """z = max(x, y);  dL/dx = g * ([x > y] + [x == y] / 2): ties split the gradient evenly."""

    args = ("x", "y")
    out = "maximum(x, y)"
    grads = ("g * where(x > y, 1, where(x == y, 0.5, 0))", "g * where(y > x, 1, where(x == y, 0.5, 0))")


class Minimum(Pointwise):
    """z = min(x, y);  dL/dx = g * ([x < y] + [x == y] / 2): ties split the gradient evenly."""

    args = ("x", "y")
    out = "minimum(x, y)"
    grads = ("g * where(x < y, 1, where(x == y, 0.5, 0))", "g * where(y < x, 1, where(x == y, 0.5, 0))")


class Where(Pointwise):
    """z = c ? x : y (c carries no gradient);  dL/dx = g * c,  dL/dy = g * (1 - c)."""

    args = ("c", "x", "y")
    out = "where(c, x, y)"
    grads = (None, "where(c, g, 0)", "where(c, 0, g)")


class AsType(Function):
    """y = x cast to another float dtype;  dL/dx = g cast back."""

    name = "astype"

    @staticmethod
    def forward(ctx, x, *, dtype):
        ctx.src = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.src)


class Clone(Function):
    """y = a copy of x (its own memory);  dL/dx = g."""

    name = "clone"

    @staticmethod
    def forward(ctx, x):
        return np.array(x, copy=True)

    @staticmethod
    def backward(ctx, g):
        return g


def _compare(formula: str, opname: str) -> Any:
    class Compare(Pointwise):
        __doc__ = f"Elementwise ``{opname}`` as a bool tensor (no gradient)."
        name = opname
        differentiable = False
        args = ("x", "y")
        out = formula

    Compare.__name__ = Compare.__qualname__ = opname.title().replace("_", "")

    def compare(a: Any, b: Any) -> Tensor:
        return binary(Compare, a, b)

    compare.__name__ = opname
    compare.__doc__ = Compare.__doc__
    return compare


less = _compare("x < y", "less")
less_equal = _compare("x <= y", "less_equal")
greater = _compare("x > y", "greater")
greater_equal = _compare("x >= y", "greater_equal")
equal = _compare("x == y", "equal")
not_equal = _compare("x != y", "not_equal")


def exp(x: Tensor) -> Tensor:
    return Exp.apply(x)


def log(x: Tensor) -> Tensor:
    return Log.apply(x)


def sin(x: Tensor) -> Tensor:
    return Sin.apply(x)


def cos(x: Tensor) -> Tensor:
    return Cos.apply(x)


def sqrt(x: Tensor) -> Tensor:
    return Sqrt.apply(x)


def abs(x: Tensor) -> Tensor:  # noqa: A001
    return Abs.apply(x)


def tanh(x: Tensor) -> Tensor:
    return Tanh.apply(x)


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid.apply(x)


def relu(x: Tensor) -> Tensor:
    return Relu.apply(x)


def softplus(x: Tensor) -> Tensor:
    return Softplus.apply(x)


def maximum(a: Any, b: Any) -> Tensor:
    return binary(Maximum, a, b)


def minimum(a: Any, b: Any) -> Tensor:
    return binary(Minimum, a, b)


def clip(x: Tensor, lo: float | None = None, hi: float | None = None) -> Tensor:
    """Clamp to [lo, hi] (either may be None); the gradient passes where lo <= x <= hi."""
    if lo is None and hi is None:
        raise ValueError("clip: at least one of lo and hi must be given")
    return Clip.apply(x, lo=-np.inf if lo is None else float(lo), hi=np.inf if hi is None else float(hi))


def where(condition: Any, x: Any, y: Any) -> Tensor:
    """``x`` where ``condition`` else ``y`` (broadcasting); the condition gets no gradient."""
    c = condition if isinstance(condition, Tensor) else Tensor(np.asarray(condition, dtype=bool))
    like = x if isinstance(x, Tensor) else y if isinstance(y, Tensor) else None
    x, y = lift(x, like), lift(y, like)
    try:
        return Where.apply(c, x, y)
    except ValueError:
        raise ShapeError(f"where: cannot broadcast condition, x and y of shapes "
                         f"{c.shape} [{c.dtype}], {describe(x, y).replace(' and ', ', ')}") from None


def masked_fill(x: Tensor, mask: Any, value: float) -> Tensor:
    """``value`` where ``mask`` (broadcasting) else ``x``; the filled places get no gradient."""
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != bool:
        raise TypeError(f"masked_fill: mask must be bool, got {m.shape} [{m.dtype}]")
    return where(m, float(value) if dtypes.is_float(x.dtype) else value, x)


def clone(x: Tensor) -> Tensor:
    """A copy of ``x`` that the gradient flows through (``Tensor.clone``)."""
    return Clone.apply(x)


def astype(x: Tensor, dtype: dtypes.DTypeLike) -> Tensor:
    dt = dtypes.resolve(dtype)
    if dt == x.dtype:
        return x
    if not dtypes.is_float(dt) or not dtypes.is_float(x.dtype):
        return Tensor(x.data.astype(dt))  # to or from integers: no gradient flows (as in PyTorch)
    return AsType.apply(x, dtype=dt)



def clamp(x: Tensor, min: float | None = None, max: float | None = None) -> Tensor:
    """PyTorch's name and keywords for ``clip``."""
    return clip(x, min, max)
