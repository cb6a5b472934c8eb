"""Shape ops: reshape, transpose, broadcast_to, squeeze/expand_dims, getitem, concatenate, stack,
and split/chunk/unbind as ONE multi-output op."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..function import Function
from ..tensor import Tensor
from .args import dim_arg
from .broadcast import ShapeError, describe, lift, unbroadcast
from .reduction import normalize_axis


class Reshape(Function):
    """y = x viewed with a new shape;  dL/dx = g reshaped back."""

    view = True

    @staticmethod
    def forward(ctx, x, *, shape):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


class Transpose(Function):
    """y = x with axes permuted by p;  dL/dx = g permuted by p^{-1}."""

    view = True

    @staticmethod
    def forward(ctx, x, *, axes):
        ctx.axes = axes
        return np.transpose(x, axes)

    @staticmethod
    def backward(ctx, g):
        return np.transpose(g, None if ctx.axes is None else np.argsort(ctx.axes))


class BroadcastTo(Function):
    """y = x broadcast to a shape;  dL/dx = unbroadcast(g)."""

    view = True

    name = "expand"

    @staticmethod
    def forward(ctx, x, *, shape):
        ctx.shape = x.shape
        return np.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.shape)


def _has_advanced(idx: tuple) -> bool:
    return any(isinstance(i, (np.ndarray, list)) for i in idx)


class GetItem(Function):
    """y = x[idx];  dL/dx = zeros with g scattered to idx (accumulating repeated integer indices)."""

    view = True

    name = "getitem"

    @staticmethod
    def forward(ctx, x, *, idx):
        ctx.shape, ctx.dtype, ctx.idx = x.shape, x.dtype, idx
        return np.asarray(x[idx])

    @staticmethod
    def backward(ctx, g):
        gx = np.zeros(ctx.shape, ctx.dtype)
        if _has_advanced(ctx.idx):
            np.add.at(gx, ctx.idx, g)
        else:
            gx[ctx.idx] = g
        return gx


class Concatenate(Function):
    """y = [x_1, ..., x_n] joined along an axis;  dL/dx_k = the k-th slab of g."""

    @staticmethod
    def forward(ctx, *xs, axis):
        ctx.axis = axis
        ctx.bounds = np.cumsum([x.shape[axis] for x in xs])[:-1].tolist()
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, g):
        return tuple(np.split(g, ctx.bounds, axis=ctx.axis))


class Stack(Function):
    """y = the x_k stacked along a new axis;  dL/dx_k = g[..., k, ...]."""

    @staticmethod
    def forward(ctx, *xs, axis):
        ctx.axis = axis
        return np.stack(xs, axis=axis)

    @staticmethod
    def backward(ctx, g):
        return tuple(np.moveaxis(g, ctx.axis, 0))


class Split(Function):
    """(y_1, ..., y_n) = pieces of x along an axis (views; ``unbind`` drops the axis).

    Backward writes every output's gradient into ONE zero buffer of x's shape, so splitting a length-T
    sequence into T steps costs O(T) in backward, not the O(T^2) of T separate ``getitem``s.
    """

    view = True

    @staticmethod
    def forward(ctx, x, *, slices):
        ctx.shape, ctx.dtype, ctx.slices = x.shape, x.dtype, slices
        return tuple(x[s] for s in slices)

    @staticmethod
    def backward(ctx, grads):
        gx = np.zeros(ctx.shape, ctx.dtype)
        for s, g in zip(ctx.slices, grads):
            if g is not None:
                gx[s] = g
        return gx


def _resolve_shape(size: int, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """``shape`` with its one ``-1`` filled in, or None if ``size`` elements cannot take it."""
    free = [i for i, s in enumerate(shape) if s == -1]
    if len(free) > 1 or any(s < -1 for s in shape):
        return None
    known = math.prod(s for s in shape if s != -1)
    if free:
        if known == 0 or size % known:
            return None
        return (*shape[:free[0]], size // known, *shape[free[0] + 1:])
    return shape if known == size else None


def reshape(x: Tensor, shape: Sequence[int] | int) -> Tensor:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    new = _resolve_shape(x.size, shape)
    if new is None:
        raise ShapeError(f"reshape: cannot reshape {describe(x)} into {shape}")
    if new == x.shape:
        return x
    return Reshape.apply(x, shape=new)


def transpose(x: Tensor, axes: Sequence[int] | None = None) -> Tensor:
    if axes is not None:
        if any(not -x.ndim <= int(a) < x.ndim for a in axes):
            raise ShapeError(f"transpose: axes {tuple(axes)} are out of range for {describe(x)}")
        axes = tuple(int(a) % x.ndim for a in axes)
        if sorted(axes) != list(range(x.ndim)):
            raise ShapeError(f"transpose: axes {axes} are not a permutation for {describe(x)}")
    return Transpose.apply(x, axes=axes)


def permute(x: Tensor, *axes: int) -> Tensor:
    return transpose(x, axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else axes)


def broadcast_to(x: Tensor, shape: Sequence[int]) -> Tensor:
    """``x`` repeated (as a view) along its size-1 and new leading axes; ``-1`` keeps an axis's size."""
    shape = tuple(int(s) for s in shape)
    lead = len(shape) - x.ndim
    if any(s == -1 for s in shape[:lead]):
        raise ShapeError(f"broadcast_to: -1 is only allowed for existing axes; cannot expand "
                         f"{describe(x)} to {shape}")
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    try:
        np.broadcast_shapes(x.shape, shape)
        if np.broadcast_shapes(x.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ShapeError(f"broadcast_to: cannot broadcast {describe(x)} to {shape}") from None
    if shape == x.shape:
        return x
    return BroadcastTo.apply(x, shape=shape)


def expand_dims(x: Tensor, axis: int | Sequence[int]) -> Tensor:
    """New axes of size 1 at ``axis`` (an int or a tuple, positions in the result, as NumPy's;
    ``Tensor.unsqueeze(dim)``)."""
    if type(axis) is int and -x.ndim - 1 <= axis <= x.ndim:  # one axis (unsqueeze): the shape directly
        a = axis % (x.ndim + 1)
        return Reshape.apply(x, shape=(*x.shape[:a], 1, *x.shape[a:]))
    n = x.ndim + (1 if isinstance(axis, (int, np.integer)) else len(tuple(axis)))
    try:
        new = set(normalize_axis(axis, n, "expand_dims"))
    except ShapeError as exc:  # the tensor is described only on error (its dtype's name costs ~8 us)
        raise ShapeError(str(exc).replace("expand_dims", f"expand_dims of {describe(x)}", 1)) from None
    rest = iter(x.shape)
    return Reshape.apply(x, shape=tuple(1 if i in new else next(rest) for i in range(n)))


def squeeze(x: Tensor, dim: int | tuple[int, ...] | None = None, *,
            axis: int | tuple[int, ...] | None = None) -> Tensor:
    axis = dim_arg("squeeze", dim, axis)
    axes = normalize_axis(axis, x.ndim, "squeeze")
    if axis is not None and any(x.shape[a] != 1 for a in axes):
        raise ShapeError(f"squeeze: axis {axis} of {describe(x)} does not have size 1")
    shape = tuple(s for i, s in enumerate(x.shape) if not (i in axes and s == 1))
    return reshape(x, shape)


def index_tuple(idx: Any) -> tuple:
    """An index as NumPy takes it: Tensors and lists inside become arrays."""
    idx = idx if isinstance(idx, tuple) else (idx,)
    return tuple(i.data if isinstance(i, Tensor) else np.asarray(i) if isinstance(i, list) else i
                 for i in idx)


def getitem(x: Tensor, idx: Any) -> Tensor:
    """``x[idx]``: basic (ints, slices, None, ...) and integer/bool-array indexing, as in NumPy."""
    idx = index_tuple(idx)
    try:
        return GetItem.apply(x, idx=idx)
    except IndexError as exc:
        raise IndexError(f"getitem: {exc} (tensor {describe(x)})") from None


def _check_same(op: str, xs: Sequence[Tensor], axis: int | None) -> None:
    ref = xs[0]
    for t in xs[1:]:
        a, b = list(ref.shape), list(t.shape)
        if axis is not None and len(a) == len(b):
            a[axis] = b[axis] = -1
        if a != b:
            raise ShapeError(f"{op}: shapes differ{'' if axis is None else ' off axis ' + str(axis)}: "
                             + ", ".join(f"{s.shape} [{s.dtype}]" for s in xs))


def _lift_all(xs: Sequence[Any]) -> list[Tensor]:
    like = next((t for t in xs if isinstance(t, Tensor)), None)
    return [lift(t, like) for t in xs]


def concatenate(xs: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (``cat(xs, dim)`` is the same with PyTorch's name)."""
    xs = _lift_all(xs)
    if not xs:
        raise ValueError("concatenate: need at least one tensor")
    axis = normalize_axis(axis, xs[0].ndim, "concatenate")[0]
    _check_same("concatenate", xs, axis)
    return Concatenate.apply(*xs, axis=axis)


def cat(tensors: Sequence[Any], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """PyTorch's name of ``concatenate``."""
    return concatenate(tensors, dim if axis is None else axis)


def stack(xs: Sequence[Any], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join tensors along a new axis ``dim``."""
    axis = dim if axis is None else axis
    xs = _lift_all(xs)
    if not xs:
        raise ValueError("stack: need at least one tensor")
    _check_same("stack", xs, None)
    axis = normalize_axis(axis, xs[0].ndim + 1, "stack")[0]
    return Stack.apply(*xs, axis=axis)


def _pieces(x: Tensor, axis: int, bounds: Sequence[tuple[int, int]]) -> tuple[Tensor, ...]:
    pre = (slice(None),) * axis
    return Split.apply(x, slices=tuple((*pre, slice(a, b)) for a, b in bounds))


def split(x: Tensor, split_size_or_sections: int | Sequence[int], dim: int = 0, *,
          axis: int | None = None) -> tuple[Tensor, ...]:
    """PyTorch's ``split``: an int s gives pieces of size s (the last one smaller if s does not divide
    the axis), a list gives the size of every piece (they must add up to the axis). One op with many
    outputs. (NumPy's ``np.split(x, n)`` means n pieces: that is ``chunk``.)"""
    d = normalize_axis(dim if axis is None else axis, x.ndim, "split")[0]
    n = x.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size} (tensor {describe(x)})")
        sizes = [min(size, n - a) for a in range(0, n, size)] or [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise ShapeError(f"split: sizes {sizes} do not add up to {n}, the size of dim {d} of "
                             f"{describe(x)}")
    edges = list(itertools.accumulate(sizes, initial=0))
    return _pieces(x, d, list(itertools.pairwise(edges)))


def chunk(x: Tensor, chunks: int, dim: int = 0, *, axis: int | None = None) -> tuple[Tensor, ...]:
    """PyTorch's ``chunk``: pieces of size ceil(n / chunks), the last one possibly smaller."""
    axis = normalize_axis(dim if axis is None else axis, x.ndim, "chunk")[0]
    n = x.shape[axis]
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    size = max(-(-n // chunks), 1)
    return _pieces(x, axis, [(a, min(a + size, n)) for a in range(0, n, size)])


def unbind(x: Tensor, dim: int = 0, *, axis: int | None = None) -> tuple[Tensor, ...]:
    """The slices of ``x`` along ``dim`` with that axis removed (one op, one gradient buffer)."""
    axis = normalize_axis(dim if axis is None else axis, x.ndim, "unbind")[0]
    pre = (slice(None),) * axis
    return Split.apply(x, slices=tuple((*pre, i) for i in range(x.shape[axis])))


def narrow(x: Tensor, dim: int, start: int, length: int) -> Tensor:
    """``length`` entries of ``x`` from ``start`` along ``dim`` (a view), as ``torch.narrow``."""
    d = normalize_axis(dim, x.ndim, "narrow")[0]
    n = x.shape[d]
    start = start + n if start < 0 else start
    if not (0 <= start <= n and 0 <= length <= n - start):
        raise ShapeError(f"narrow: start {start} and length {length} do not fit dim {d} of {describe(x)}")
    return getitem(x, (slice(None),) * d + (slice(start, start + length),))


def repeat(x: Tensor, *sizes: int) -> Tensor:
    """PyTorch's ``repeat``: ``x`` tiled ``sizes[k]`` times along each dim (extra leading sizes add
    dims). As a broadcast of ``x`` against interleaved size-1 axes, so the gradient sums the tiles."""
    sizes = tuple(sizes[0]) if len(sizes) == 1 and not isinstance(sizes[0], (int, np.integer)) else sizes
    if len(sizes) < x.ndim or any(int(r) < 0 for r in sizes):
        raise ShapeError(f"repeat: needs at least {x.ndim} non-negative sizes for {describe(x)}, got {sizes}")
    shape = (1,) * (len(sizes) - x.ndim) + x.shape
    inter = tuple(v for s in shape for v in (1, s))
    wide = tuple(v for r, s in zip(sizes, shape) for v in (int(r), s))
    tiled = broadcast_to(reshape(x, inter), wide)
    return reshape(tiled, tuple(int(r) * s for r, s in zip(sizes, shape)))
