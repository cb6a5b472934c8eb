"""Indexing by index tensors: ``gather`` (PyTorch's ``torch.gather`` / NumPy's ``take_along_axis``),
``index_select``, and ``topk`` and ``sort``, whose values are a gather of the indices they pick."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..function import Function
from ..tensor import Tensor
from .broadcast import ShapeError, describe


class Gather(Function):
    """y = take_along_axis(x, index, axis);  dL/dx = zeros with g added at the gathered places
    (repeated indices add up)."""

    @staticmethod
    def forward(ctx, x, *, index, axis):
        ctx.shape, ctx.index, ctx.axis = x.shape, index, axis
        return np.take_along_axis(x, index, axis=axis)

    @staticmethod
    def backward(ctx, g):
        gx = np.zeros(ctx.shape, g.dtype)
        grid = list(np.indices(ctx.index.shape, sparse=True))
        grid[ctx.axis] = ctx.index
        np.add.at(gx, tuple(grid), g)
        return gx


def gather(x: Tensor, dim: int, index: Any) -> Tensor:
    """``out[i][j][k] = x[index[i][j][k]][j][k]`` for ``dim=0`` (and so on), as ``torch.gather``."""
    idx = np.asarray(index.data if isinstance(index, Tensor) else index)
    if idx.dtype.kind not in "iu" or idx.ndim != x.ndim:
        raise ShapeError(f"gather: index must be an integer array with {x.ndim} dimensions like "
                         f"{describe(x)}, got {idx.shape} [{idx.dtype}]")
    if not -x.ndim <= dim < x.ndim:
        raise ShapeError(f"gather: dim {dim} is out of range for {describe(x)}")
    n = x.shape[dim]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"gather: index out of range [{idx.min()}, {idx.max()}] for dim {dim} of "
                         f"{describe(x)}")
    return Gather.apply(x, index=idx % n if n else idx, axis=dim % x.ndim)


class TopK(NamedTuple):
    """What ``topk`` returns, as ``torch.return_types.topk``."""

    values: Tensor
    indices: Tensor


def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> TopK:
    """The ``k`` largest (or smallest) entries along ``dim`` and their indices; the values' gradient
    goes to those indices. Sorted from the largest (smallest) on; ties keep the lower index first."""
    if not -x.ndim <= dim < x.ndim:
        raise ShapeError(f"topk: dim {dim} is out of range for {describe(x)}")
    d = dim % x.ndim
    if not 0 <= k <= x.shape[d]:
        raise ShapeError(f"topk: k={k} is out of range for dim {dim} of size {x.shape[d]} ({describe(x)})")
    key = -x.data if largest else x.data
    idx = np.take(np.argsort(key, axis=d, kind="stable"), np.arange(k), axis=d).astype(np.int64)
    return TopK(gather(x, d, idx), Tensor(idx))


def sort(x: Tensor, dim: int = -1, descending: bool = False) -> TopK:
    """``(values, indices)`` sorted along ``dim`` (stable); the values' gradient goes to the indices."""
    if not -x.ndim <= dim < x.ndim:
        raise ShapeError(f"sort: dim {dim} is out of range for {describe(x)}")
    return topk(x, x.shape[dim % x.ndim], dim, largest=descending)


def index_select(x: Tensor, dim: int, index: Any) -> Tensor:
    """The entries of ``x`` at ``index`` (1-D ints) along ``dim``, as ``torch.index_select``; repeated
    indices add their gradients."""
    from .shape import getitem

    idx = np.asarray(index.data if isinstance(index, Tensor) else index)
    if idx.ndim != 1 or idx.dtype.kind not in "iu":
        raise ShapeError(f"index_select: index must be 1-D integers, got {idx.shape} [{idx.dtype}]")
    if not -x.ndim <= dim < x.ndim:
        raise ShapeError(f"index_select: dim {dim} is out of range for {describe(x)}")
    return getitem(x, (slice(None),) * (dim % x.ndim) + (idx,))
