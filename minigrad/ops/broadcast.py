"""The one place where broadcasting is undone, and where non-Tensor operands become Tensors."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor


class ShapeError(ValueError):
    """Shapes that an op cannot combine; the message names the op, the shapes and the dtypes."""


def describe(*ts: Tensor) -> str:
    return " and ".join(f"{t.shape} [{t.dtype}]" for t in ts)


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Reduce a gradient of the broadcast shape back to ``shape`` (the input's).

    If ``x`` of shape ``shape`` was broadcast to ``g.shape``, every copy of ``x_i`` contributed to the
    output, so ``dL/dx_i = sum over the copies of dL/dy``: sum the leading axes broadcasting added and
    the axes where ``shape`` has size 1.
    """
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


def broadcast_view(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``np.broadcast_to(g, shape)`` for a ``g`` of ``shape``'s rank (sizes 1 or equal): a read-only
    view with stride 0 along the broadcast axes, made directly (NumPy's own costs ~5 us in Python)."""
    if type(g) is not np.ndarray or g.ndim != len(shape) or not g.flags.c_contiguous:
        return np.broadcast_to(g, shape)
    strides = tuple(0 if n == 1 and s != 1 else st for n, s, st in zip(g.shape, shape, g.strides))
    if any(n != s and n != 1 for n, s in zip(g.shape, shape)):
        raise ValueError(f"broadcast_view: cannot broadcast {g.shape} to {shape}")
    v = np.ndarray(shape, g.dtype, g, 0, strides)
    v.flags.writeable = False
    return v


def lift(x: Any, like: Tensor | None = None) -> Tensor:
    """A Tensor for ``x``; constants take the float dtype of ``like`` (so float32 stays float32)."""
    if isinstance(x, Tensor):
        return x
    if like is not None and like.data.dtype.kind == "f" and not isinstance(x, bool):
        arr = np.asarray(x)
        if arr.dtype.kind in "fiub":
            return Tensor._make(arr.astype(like.data.dtype, copy=False), None, 0)
    return Tensor(x)


def binary(fn: Any, a: Any, b: Any, **params: Any) -> Tensor:
    """Apply a broadcasting binary op, turning NumPy's broadcast failure into a ``ShapeError``."""
    if not isinstance(a, Tensor):
        a = lift(a, b if isinstance(b, Tensor) else None)
    if not isinstance(b, Tensor):
        b = lift(b, a)
    try:
        return fn.apply(a, b, **params)
    except ValueError as exc:
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ShapeError(f"{fn.name or fn.__name__.lower()}: cannot broadcast shapes "
                             f"{describe(a, b)}") from None
        raise exc
