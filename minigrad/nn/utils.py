"""Gradient clipping with PyTorch's semantics: ``clip_grad_norm_`` and ``clip_grad_value_``."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "grad_norm"]


def _params(parameters: Tensor | Iterable[Tensor], fn: str) -> list[Tensor]:
    ps = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in ps:
        if not isinstance(p, Tensor):
            raise TypeError(f"{fn}: expected Tensors/Parameters, got {type(p).__name__}")
    return ps


def grad_norm(parameters: Tensor | Iterable[Tensor], norm_type: float = 2.0) -> float:
    """The ``norm_type``-norm of all gradients taken together (as one long vector), in float64:
    (sum_i ||g_i||_p^p)^(1/p), or max_i |g_i| for p = inf. 0.0 when no parameter has a gradient."""
    grads = [p.grad for p in _params(parameters, "grad_norm") if p.grad is not None]
    p = float(norm_type)
    if not grads:
        return 0.0
    if p <= 0 and not math.isinf(p):
        raise ValueError(f"grad_norm: norm_type must be > 0 or inf, got {norm_type}")
    if math.isinf(p):
        return float(max(np.max(np.abs(g), initial=0.0) for g in grads))
    norms = np.array([np.linalg.norm(np.asarray(g, np.float64).ravel(), p) for g in grads])
    return float(np.linalg.norm(norms, p))


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = True) -> float:
    """Scale all gradients by min(1, max_norm / (total + 1e-6)), where total is ``grad_norm`` over all
    of them (``norm_type`` 2, 1, ..., or ``float('inf')``). Returns total (before clipping).

    If total is NaN or inf: ``RuntimeError`` when ``error_if_nonfinite`` (nothing is changed), else the
    gradients are scaled anyway (by NaN or 0, as PyTorch does)."""
    ps = [p for p in _params(parameters, "clip_grad_norm_") if p.grad is not None]
    total = grad_norm(ps, norm_type)
    if not math.isfinite(total) and error_if_nonfinite:
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
                           f"{total}, so they cannot be clipped; pass error_if_nonfinite=False to scale "
                           "them anyway")
    with np.errstate(invalid="ignore", divide="ignore"):
        coef = float(max_norm) / (total + 1e-6)
    coef = min(coef, 1.0) if not math.isnan(coef) else coef
    if coef != 1.0:
        for p in ps:
            with np.errstate(invalid="ignore", over="ignore"):
                p.grad = (p.grad * np.asarray(coef, p.grad.dtype)).astype(p.grad.dtype, copy=False)
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient entry into [-clip_value, clip_value] (NaN stays NaN)."""
    c = float(clip_value)
    if c < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for p in _params(parameters, "clip_grad_value_"):
        if p.grad is not None:
            p.grad = np.clip(p.grad, -c, c).astype(p.grad.dtype, copy=False)
