"""Broadcasting arithmetic: add, sub, mul, div, neg, power."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor
from .broadcast import binary
from .pointwise import Pointwise


class Add(Pointwise):
    """z = x + y;  dL/dx = g,  dL/dy = g (each unbroadcast to its argument's shape)."""

    args = ("x", "y")
    out = "x + y"
    grads = ("g", "g")


class Sub(Pointwise):
    """z = x - y;  dL/dx = g,  dL/dy = -g."""

    args = ("x", "y")
    out = "x - y"
    grads = ("g", "-g")


class Mul(Pointwise):
    """z = x * y;  dL/dx = g * y,  dL/dy = g * x."""

    args = ("x", "y")
    out = "x * y"
    grads = ("g * y", "g * x")


class Div(Pointwise):
    """z = x / y;  dL/dx = g / y,  dL/dy = -g * x / y^2 = -g * z / y."""

    args = ("x", "y")
    out = "x / y"
    grads = ("g / y", "-g * out / y")


class Neg(Pointwise):
    """z = -x;  dL/dx = -g."""

    out = "-x"
    grads = ("-g",)


class Pow(Pointwise):
    """z = x ** y (both tensors);  dL/dx = g * y * x^(y-1) (0 where y = 0),  dL/dy = g * z * log(x)
    (taken as 0 where x <= 0)."""

    args = ("x", "y")
    out = "x ** y"
    grads = ("g * where(y == 0, 0, y * x ** (y - 1))", "g * out * where(x > 0, log(where(x > 0, x, 1)), 0)")
    quiet = True


class PowScalar(Pointwise):
    """z = x ** p for a constant p;  dL/dx = g * p * x^(p-1)  (0 for p = 0, also at x = 0)."""

    name = "pow"
    params = ("p",)
    out = "x ** p"
    grads = ("where(p == 0, 0, g * p * x ** (p - 1))",)
    quiet = True


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
