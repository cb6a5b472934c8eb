"""Argument checks shared by the functional layers and losses (one place for each rule)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from ..ops.broadcast import ShapeError, describe, lift
from ..tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")


def as_tensor(x: Any, fn: str, what: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (np.ndarray, np.generic, list, tuple, int, float)):
        return Tensor(x)
    raise TypeError(f"{fn}: {what} must be a Tensor or array, got {type(x).__name__}")


def check_reduction(fn: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def reduce(x: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    return x


def float_input(x: Any, fn: str, what: str = "input") -> Tensor:
    x = as_tensor(x, fn, what)
    if not dtypes.is_float(x.dtype):
        raise TypeError(f"{fn}: {what} must be float32 or float64, got {x.dtype}")
    return x


def match_dtype(y: Any, x: Tensor, fn: str, what: str = "target") -> Tensor:
    """``y`` as a Tensor of ``x``'s float dtype (a constant target is cast; a differentiable one must
    already match)."""
    y = lift(y, x)
    if y.dtype != x.dtype:
        if y.requires_grad:
            raise TypeError(f"{fn}: input is {x.dtype} but {what} is {y.dtype} (and requires grad); "
                            "cast one of them")
        y = Tensor(y.data.astype(x.dtype))
    return y


def same_shape(fn: str, x: Tensor, y: Tensor, what: str = "target") -> None:
    if x.shape != y.shape:
        raise ShapeError(f"{fn}: input {describe(x)} and {what} {describe(y)} must have the same shape")


def broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


def check_indices(fn: str, idx: np.ndarray, n: int, what: str, ignore: int | None = None) -> None:
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{fn}: {what} must be an integer array, got dtype {idx.dtype}")
    valid = idx if ignore is None else idx[idx != ignore]
    if valid.size and (valid.min() < 0 or valid.max() >= n):
        bad = valid[(valid < 0) | (valid >= n)][0]
        raise IndexError(f"{fn}: {what} contains {int(bad)}, outside [0, {n})"
                         + (f" (ignore_index={ignore})" if ignore is not None else ""))


def indices(x: Any, fn: str, what: str) -> np.ndarray:
    arr = x.data if isinstance(x, Tensor) else np.asarray(x)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iu":
        raise TypeError(f"{fn}: {what} must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def pick_dim(fn: str, dim: int | None, axis: int | None, default: int | None = -1) -> int | None:
    """PyTorch's ``dim=`` or NumPy's ``axis=`` (either, not two different ones)."""
    if dim is not None and axis is not None and dim != axis:
        raise TypeError(f"{fn}: got dim={dim} and axis={axis}; pass one of them")
    chosen = dim if dim is not None else axis
    return default if chosen is None else int(chosen)

