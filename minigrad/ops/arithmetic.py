"""Broadcasting arithmetic: add, sub, mul, div, neg, power."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..function import Function
from ..tensor import Tensor
from .broadcast import binary, unbroadcast


class Add(Function):
    """z = x + y;  dL/dx = unbroadcast(g),  dL/dy = unbroadcast(g)."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.shapes = (x.shape, y.shape)
        return x + y

    @staticmethod
    def backward(ctx, g):
        sx, sy = ctx.shapes
        nx, ny = ctx.needs_input_grad
        return (unbroadcast(g, sx) if nx else None), (unbroadcast(g, sy) if ny else None)


class Sub(Function):
    """z = x - y;  dL/dx = g,  dL/dy = -g (each unbroadcast)."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.shapes = (x.shape, y.shape)
        return x - y

    @staticmethod
    def backward(ctx, g):
        sx, sy = ctx.shapes
        nx, ny = ctx.needs_input_grad
        return (unbroadcast(g, sx) if nx else None), (-unbroadcast(g, sy) if ny else None)


class Mul(Function):
    """z = x * y;  dL/dx = g * y,  dL/dy = g * x."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.x, ctx.y = x, y
        return x * y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.x, ctx.y
        nx, ny = ctx.needs_input_grad
        return (unbroadcast(g * y, x.shape) if nx else None), (unbroadcast(g * x, y.shape) if ny else None)


class Div(Function):
    """z = x / y;  dL/dx = g / y,  dL/dy = -g * x / y^2 = -g * z / y."""

    @staticmethod
    def forward(ctx, x, y):
        z = x / y
        ctx.x_shape, ctx.y, ctx.z = x.shape, y, z
        return z

    @staticmethod
    def backward(ctx, g):
        y, z = ctx.y, ctx.z
        nx, ny = ctx.needs_input_grad
        gx = unbroadcast(g / y, ctx.x_shape) if nx else None
        gy = unbroadcast(-g * z / y, y.shape) if ny else None
        return gx, gy


class Neg(Function):
    """z = -x;  dL/dx = -g."""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, g):
        return -g


class Pow(Function):
    """z = x ** y (both tensors);  dL/dx = g * y * x^(y-1) (0 where y = 0),  dL/dy = g * z * log(x)
    (taken as 0 where x <= 0)."""

    @staticmethod
    def forward(ctx, x, y):
        z = x ** y
        ctx.x, ctx.y, ctx.z = x, y, z
        return z

    @staticmethod
    def backward(ctx, g):
        x, y, z = ctx.x, ctx.y, ctx.z
        nx, ny = ctx.needs_input_grad
        if nx:
            with np.errstate(divide="ignore", invalid="ignore"):
                dx = np.where(y == 0, 0, y * x ** (y - 1))  # d(x^0)/dx = 0, also at x = 0
            gx = unbroadcast((g * dx).astype(g.dtype, copy=False), x.shape)
        else:
            gx = None
        if ny:
            with np.errstate(divide="ignore", invalid="ignore"):
                logx = np.where(x > 0, np.log(np.where(x > 0, x, 1)), 0)
            gy = unbroadcast(g * z * logx, y.shape)
        else:
            gy = None
        return gx, gy


class PowScalar(Function):
    """z = x ** p for a constant p;  dL/dx = g * p * x^(p-1)  (0 for p = 0, also at x = 0)."""

    name = "pow"

    @staticmethod
    def forward(ctx, x, *, p):
        ctx.x, ctx.p = x, p
        return x ** p

    @staticmethod
    def backward(ctx, g):
        x, p = ctx.x, ctx.p
        if p == 2:
            return g * (2 * x)
        if p == 0:  # x^0 = 1 is constant: 0 * x^-1 would give NaN at x = 0
            return np.zeros_like(g)
        return g * (p * x ** (p - 1))


def add(a: Any, b: Any) -> Tensor:
    """Elementwise ``a + b`` with NumPy broadcasting."""
    return binary(Add, a, b)


def sub(a: Any, b: Any) -> Tensor:
    """Elementwise ``a - b``."""
    return binary(Sub, a, b)


def mul(a: Any, b: Any) -> Tensor:
    """Elementwise ``a * b``."""
    return binary(Mul, a, b)


def div(a: Any, b: Any) -> Tensor:
    """Elementwise ``a / b``."""
    return binary(Div, a, b)


def neg(a: Tensor) -> Tensor:
    return Neg.apply(a)


def power(a: Any, b: Any) -> Tensor:
    """``a ** b``; a Python/NumPy scalar exponent is a constant (no gradient, cheaper backward)."""
    if isinstance(a, Tensor) and not isinstance(b, Tensor) and np.ndim(b) == 0:
        p = float(b)
        return PowScalar.apply(a, p=int(p) if p.is_integer() else a.data.dtype.type(p))
    return binary(Pow, a, b)


subtract, multiply, divide, negative, pow = sub, mul, div, neg, power  # noqa: A001  (NumPy names)
