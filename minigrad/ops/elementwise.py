"""Elementwise functions: exp, log, sqrt, abs, tanh, sigmoid, relu, softplus, maximum, minimum, clip,
where, comparisons and dtype casts. Nonlinearities with a fused backward use the Numba kernels."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from ..function import Function
from ..kernels import elementwise as K
from ..tensor import Tensor
from .broadcast import ShapeError, binary, describe, lift, unbroadcast


def run(kernel: Any, x: np.ndarray, *more: Any) -> np.ndarray:
    """Call a flat elementwise kernel ``kernel(x, *more, out)`` on arrays of x's shape; arrays in
    ``more`` are flattened (``ravel`` is a view when contiguous), scalars passed as they are."""
    out = np.empty(x.shape, x.dtype)
    kernel(x.ravel(), *[m.ravel() if type(m) is np.ndarray else m for m in more], out.reshape(-1))
    return out


def run1(kernel: Any, x: np.ndarray) -> np.ndarray:
    """``run`` for one-array kernels (forward nonlinearities)."""
    if x.dtype.kind != "f":  # integer/bool input: compute in float64, as NumPy's ufuncs do
        x = x.astype(np.float64)
    out = np.empty(x.shape, x.dtype)
    kernel(x.ravel(), out.reshape(-1))
    return out


def run2(kernel: Any, g: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``run`` for the common backward ``kernel(g, saved, out)``; the result has the saved array's
    shape and dtype (``g`` always has them too: the engine casts gradients to the output's dtype)."""
    out = np.empty(s.shape, s.dtype)
    kernel(g.ravel(), s.ravel(), out.reshape(-1))
    return out


class Exp(Function):
    """y = e^x;  dL/dx = g * y."""

    @staticmethod
    def forward(ctx, x):
        ctx.y = y = np.exp(x)
        return y

    @staticmethod
    def backward(ctx, g):
        return g * ctx.y


class Log(Function):
    """y = ln x;  dL/dx = g / x."""

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.log(x)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.x


class Sin(Function):
    """y = sin x;  dL/dx = g cos x."""

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.sin(x)

    @staticmethod
    def backward(ctx, g):
        return g * np.cos(ctx.x)


class Cos(Function):
    """y = cos x;  dL/dx = -g sin x."""

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.cos(x)

    @staticmethod
    def backward(ctx, g):
        return -g * np.sin(ctx.x)


class Sqrt(Function):
    """y = sqrt(x);  dL/dx = g / (2 y)."""

    @staticmethod
    def forward(ctx, x):
        ctx.y = y = np.sqrt(x)
        return y

    @staticmethod
    def backward(ctx, g):
        return g / (2 * ctx.y)


class Abs(Function):
    """y = |x|;  dL/dx = g * sign(x), with abs'(0) = 0 (as in PyTorch, JAX and autograd)."""

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.abs(x)

    @staticmethod
    def backward(ctx, g):
        return run2(K.abs_backward, g, ctx.x)


class Tanh(Function):
    """y = tanh x;  dL/dx = g * (1 - y^2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.y = y = np.tanh(x)
        return y

    @staticmethod
    def backward(ctx, g):
        return run2(K.tanh_backward, g, ctx.y)


class Sigmoid(Function):
    """y = 1 / (1 + e^-x);  dL/dx = g * y * (1 - y)."""

    @staticmethod
    def forward(ctx, x):
        ctx.y = y = run1(K.sigmoid_forward, x)
        return y

    @staticmethod
    def backward(ctx, g):
        return run2(K.sigmoid_backward, g, ctx.y)


class Relu(Function):
    """y = max(x, 0);  dL/dx = g * [x > 0], with relu'(0) = 0."""

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return np.maximum(x, 0)

    @staticmethod
    def backward(ctx, g):
        return run2(K.relu_backward, g, ctx.x)


class Softplus(Function):
    """y = log(1 + e^x) (stable);  dL/dx = g * sigmoid(x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return run1(K.softplus_forward, x)

    @staticmethod
    def backward(ctx, g):
        return run2(K.softplus_backward, g, ctx.x)


class Clip(Function):
    """y = min(max(x, lo), hi);  dL/dx = g * [lo <= x <= hi]."""

    @staticmethod
    def forward(ctx, x, *, lo, hi):
        ctx.x, ctx.lo, ctx.hi = x, lo, hi
        return np.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, g):
        return run(K.clip_backward, g, ctx.x, ctx.lo, ctx.hi)


class Maximum(Function):
    """z = max(x, y);  dL/dx = g * ([x > y] + [x == y] / 2): ties split the gradient evenly."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.x, ctx.y = x, y
        return np.maximum(x, y)

    @staticmethod
    def backward(ctx, g):
        return _split_ties(ctx, g, np.greater)


class Minimum(Function):
    """z = min(x, y);  dL/dx = g * ([x < y] + [x == y] / 2): ties split the gradient evenly."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.x, ctx.y = x, y
        return np.minimum(x, y)

    @staticmethod
    def backward(ctx, g):
        return _split_ties(ctx, g, np.less)


def _split_ties(ctx: Any, g: np.ndarray, wins: Any) -> tuple:
    x, y = ctx.x, ctx.y
    wx = wins(x, y) + 0.5 * (x == y)
    nx, ny = ctx.needs_input_grad
    gx = unbroadcast((g * wx).astype(g.dtype, copy=False), x.shape) if nx else None
    gy = unbroadcast((g * (1 - wx)).astype(g.dtype, copy=False), y.shape) if ny else None
    return gx, gy


class Where(Function):
    """z = c ? x : y (c carries no gradient);  dL/dx = g * c,  dL/dy = g * (1 - c)."""

    @staticmethod
    def forward(ctx, c, x, y):
        ctx.c, ctx.sx, ctx.sy = c, x.shape, y.shape
        return np.where(c, x, y)

    @staticmethod
    def backward(ctx, g):
        c = ctx.c
        _, nx, ny = ctx.needs_input_grad
        zero = g.dtype.type(0)
        gx = unbroadcast(np.where(c, g, zero), ctx.sx) if nx else None
        gy = unbroadcast(np.where(c, zero, g), ctx.sy) if ny else None
        return None, gx, gy


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


def _compare(ufunc: Any, opname: str) -> Any:
    class Compare(Function):
        __doc__ = f"Elementwise ``{opname}`` as a bool tensor (no gradient)."
        name = opname
        differentiable = False

        @staticmethod
        def forward(ctx, x, y):
            return ufunc(x, y)

    Compare.__name__ = Compare.__qualname__ = opname.title().replace("_", "")

    def compare(a: Any, b: Any) -> Tensor:
        return binary(Compare, a, b)

    compare.__name__ = opname
    compare.__doc__ = Compare.__doc__
    return compare


less = _compare(np.less, "less")
less_equal = _compare(np.less_equal, "less_equal")
greater = _compare(np.greater, "greater")
greater_equal = _compare(np.greater_equal, "greater_equal")
equal = _compare(np.equal, "equal")
not_equal = _compare(np.not_equal, "not_equal")


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



def clamp(x: Tensor, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
    """PyTorch's name and keywords for ``clip``."""
    return clip(x, min, max)
