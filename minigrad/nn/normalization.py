"""Layer normalisation: ``layer_norm`` and the ``LayerNorm`` module (PyTorch's semantics and names).

Over the last ``len(normalized_shape)`` axes (D entries), with the biased variance as in PyTorch:

    mu = mean(x),   var = mean((x - mu)^2),   y = (x - mu) / sqrt(var + eps) * weight + bias

written from the engine's ops, so its gradient comes from the graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import dtypes
from ..ops.broadcast import ShapeError, describe
from ..tensor import Tensor
from . import _args as A
from .module import Module
from .parameter import Parameter

__all__ = ["LayerNorm", "layer_norm"]


def _shape(normalized_shape: int | Sequence[int], fn: str) -> tuple[int, ...]:
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else normalized_shape
    shape = tuple(int(d) for d in shape)
    if not shape or any(d <= 0 for d in shape):
        raise ValueError(f"{fn}: normalized_shape must be a positive int or a non-empty tuple of them, "
                         f"got {normalized_shape!r}")
    return shape


def layer_norm(input: Tensor, normalized_shape: int | Sequence[int],
               weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """(x - mu) / sqrt(var + eps) over the trailing ``normalized_shape`` axes, then ``* weight + bias``
    (each of shape ``normalized_shape``, optional)."""
    fn = "layer_norm"
    x = A.float_input(input, fn)
    shape = _shape(normalized_shape, fn)
    k = len(shape)
    if x.shape[x.ndim - k:] != shape or x.ndim < k:
        raise ShapeError(f"{fn}: input {describe(x)} must end in normalized_shape {shape}")
    if eps < 0:
        raise ValueError(f"{fn}: eps must be >= 0, got {eps}")
    axes = tuple(range(x.ndim - k, x.ndim))
    d = x - x.mean(axis=axes, keepdims=True)
    var = (d * d).mean(axis=axes, keepdims=True)
    y = d / (var + float(eps)).sqrt()
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != shape:
            raise ShapeError(f"{fn}: {name} has shape {p.shape}, expected normalized_shape {shape}")
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


class LayerNorm(Module):
    """Normalises each sample over its trailing ``normalized_shape`` axes (``layer_norm``); with
    ``elementwise_affine`` it learns ``weight`` (ones) and ``bias`` (zeros, unless ``bias=False``) of
    shape ``normalized_shape``, else both are None."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, device: Any = None,
                 dtype: dtypes.DTypeLike = "float32") -> None:
        super().__init__()
        dtypes.check_device(device, "LayerNorm")
        self.normalized_shape = _shape(normalized_shape, "LayerNorm")
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        dt = dtypes.resolve(dtype)
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dt))
            self.bias = Parameter(np.zeros(self.normalized_shape, dt)) if bias else None
        else:
            self.weight = self.bias = None

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
