"""Matrix products (NumPy's BLAS does the arithmetic)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..function import Function
from ..tensor import Tensor
from .broadcast import ShapeError, describe, lift, unbroadcast


class MatMul(Function):
    """C = A @ B (1-D, 2-D or batched, NumPy's rules);  dL/dA = G @ B^T,  dL/dB = A^T @ G,
    with 1-D operands promoted to matrices and batch axes unbroadcast."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.a, ctx.b = a, b
        return np.matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.a, ctx.b
        na, nb = ctx.needs_input_grad
        if a.ndim == 2 and b.ndim == 2:
            return (g @ b.T if na else None), (a.T @ g if nb else None)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if b.ndim == 1:  # restore the dropped column axis first (g may be 0-d when both are 1-D)
            g2 = g2[..., None]
        if a.ndim == 1:
            g2 = g2[..., None, :]
        ga = gb = None
        if na:
            ga = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if nb:
            gb = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return ga, gb


def matmul(a: Any, b: Any) -> Tensor:
    """``a @ b``; shapes are checked first and a mismatch names both shapes and dtypes."""
    a = lift(a, b if isinstance(b, Tensor) else None)
    b = lift(b, a)
    sa, sb = a.shape, b.shape
    if not sa or not sb:
        raise ShapeError(f"matmul: operands must be at least 1-D, got {describe(a, b)}")
    ka = sa[-1]
    kb = sb[0] if len(sb) == 1 else sb[-2]
    if ka != kb:
        raise ShapeError(f"matmul: shapes {describe(a, b)} are not aligned: {ka} (last dim of a) != "
                         f"{kb} ({'dim 0' if len(sb) == 1 else 'second-to-last dim'} of b)")
    if len(sa) > 2 or len(sb) > 2:
        try:
            np.broadcast_shapes(sa[:-2], sb[:-2])
        except ValueError:
            raise ShapeError(f"matmul: batch dimensions of {describe(a, b)} do not broadcast") from None
    return MatMul.apply(a, b)


def dot(a: Any, b: Any) -> Tensor:
    return matmul(a, b)


def mm(a: Tensor, b: Tensor) -> Tensor:
    """PyTorch's ``mm``: the product of two matrices (2-D only)."""
    if a.ndim != 2 or b.ndim != 2:
        raise ShapeError(f"mm: expects two matrices, got {describe(a, b)}")
    return matmul(a, b)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    """PyTorch's ``bmm``: a batch of matrix products, (B, n, m) @ (B, m, p) -> (B, n, p)."""
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise ShapeError(f"bmm: expects two 3-D tensors with the same batch size, got {describe(a, b)}")
    return matmul(a, b)
